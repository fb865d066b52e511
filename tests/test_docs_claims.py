"""The docs' checkable claims: benchmark figures, URLs, code fences, links.

- Every figure README.md and docs/benchmarks.md quote in prose (a time in
  ns/us/ms, a ratio "N.NNx", a throughput "N MiB/s", a rate "N windows/s",
  "N system calls", "N secrets") must be one the committed benchmark
  results contain (the results block of docs/benchmarks.md, which must be
  what benchmarks/run.py renders from docs/benchmarks.json), numerically
  equal; a target ("<= 0.5x", "target 0.97") must be one the results name.
  Sections marked `<!-- figures: profile -->` quote profiler runs
  (benchmarks/profile_window.py), not the results, and are skipped.
- No URL is claimed as published unless the project really owns it: the
  package's Project-URLs point at this project's pages or are absent.
- Every fenced code block in README.md and docs/ names its language.
- Every relative Markdown link in README.md and docs/ points at a file that
  exists (the built site's links are checked by scripts/docs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BENCH_MD = DOCS / "benchmarks.md"
BENCH_JSON = DOCS / "benchmarks.json"
RUN = ROOT / "benchmarks" / "run.py"

pytestmark = [
    pytest.mark.storage("any"),
    pytest.mark.skipif(not BENCH_MD.is_file(), reason="no docs/ here"),
]

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PROFILE = "<!-- figures: profile -->"
# Any "<!-- figures: ... -->" marks a section whose figures come from a run
# of their own (a profiler, or a benchmark script of their own), named in
# the section.
FIGURES_MARK = "<!-- figures:"

NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
UNITS = {
    "ns": ("time", 1.0),
    "us": ("time", 1e3),
    "µs": ("time", 1e3),
    "ms": ("time", 1e6),
    "x": ("ratio", 1.0),
    "MiB/s": ("MiB/s", 1.0),
    "windows/s": ("windows/s", 1.0),
    "system calls": ("syscalls", 1.0),
    "syscalls": ("syscalls", 1.0),
    "secrets": ("secrets", 1.0),
}
UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
# A figure, or a range of two ("2.3-2.6x", "3.88..4.72 us"), then its unit.
FIGURE = re.compile(
    rf"(?<![\w.])(?P<a>{NUM})(?:\s*(?:-|\u2013|\.\.)\s*(?P<b>{NUM}))?"
    rf"(?P<space>\s?)(?P<unit>{UNIT_RE})(?![\w])"
)
TARGET = re.compile(rf"target\s*(?:<=|>=|:)?\s*(?P<v>{NUM})", re.I)


def value(text: str) -> float:
    return float(text.replace(",", ""))


def same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


def results_block(md: str) -> str:
    assert BEGIN in md and END in md, "docs/benchmarks.md lost its results block"
    block = md.split(BEGIN, 1)[1].split(END, 1)[0]
    block = block.strip().removesuffix("```")
    return block.removeprefix("```text").removeprefix("```").strip("\n")


def without_results_and_profiles(md: str) -> str:
    """The prose: no results block, no section marked as profiler figures."""
    head, rest = md.split(BEGIN, 1)
    md = head + rest.split(END, 1)[1]
    out = []
    skipping = False
    for line in md.splitlines():
        if line.startswith("#"):
            skipping = False
        if line.strip().startswith(FIGURES_MARK):
            skipping = True
        if not skipping:
            out.append(line)
    return "\n".join(out)


def figures(text: str) -> Iterator[tuple[str, str, float, bool]]:
    """(quoted text, kind, value, is_target) of every figure in text."""
    for m in FIGURE.finditer(text):
        unit = m.group("unit")
        if unit == "x" and m.group("space"):
            continue  # "2 x 3", not a ratio
        kind, scale = UNITS[unit]
        before = text[max(0, m.start() - 14) : m.start()].lower()
        target = kind == "ratio" and bool(re.search(r"(<=|>=|target:?)\s*$", before))
        for part in ("a", "b"):
            if m.group(part) is not None:
                yield m.group(0), kind, value(m.group(part)) * scale, target


def known_figures(block: str) -> dict[str, list[float]]:
    """Every figure the results contain, by kind (min..max ends included)."""
    known: dict[str, list[float]] = {k: [] for k, _ in UNITS.values()}
    known["target"] = [value(m.group("v")) for m in TARGET.finditer(block)]
    for _, kind, v, _ in figures(block):
        known[kind].append(v)
    # Ratios print as "3.97x [3.82..4.70]": the bracketed ends are ratios too.
    for m in re.finditer(rf"\[({NUM})\.\.({NUM})\]", block):
        known["ratio"] += [value(m.group(1)), value(m.group(2))]
    # "memsafe.alloc   9: mmap ...": system calls per operation.
    for m in re.finditer(r"^\s+[\w.]+\s+(\d+)(?::|$)", block, re.M):
        known["syscalls"].append(value(m.group(1)))
    known["syscalls"].append(0.0)  # "sealed.window   0"
    return known


def unknown_figures(prose: str, known: dict[str, list[float]]) -> list[str]:
    bad = []
    for quoted, kind, v, target in figures(prose):
        pool = known["target"] if target else known[kind]
        if not any(same(v, k) for k in pool):
            bad.append(f"{quoted!r} ({'target' if target else kind} {v:g})")
    return bad


def test_results_block_is_the_committed_json() -> None:
    """The block is what run.py renders from docs/benchmarks.json."""
    if not RUN.is_file() or not BENCH_JSON.is_file():
        pytest.skip("no benchmarks/run.py or docs/benchmarks.json here")
    sys.path.insert(0, str(RUN.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_run_docs", RUN)
        assert spec and spec.loader
        run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(run)
        rendered = run.table(json.loads(BENCH_JSON.read_text()))
    finally:
        sys.path.remove(str(RUN.parent))
    assert rendered == results_block(BENCH_MD.read_text())


@pytest.mark.parametrize("doc", ["README.md", "docs/benchmarks.md"])
def test_quoted_figures_are_in_the_results(doc: str) -> None:
    md = BENCH_MD.read_text()
    known = known_figures(results_block(md))
    text = (ROOT / doc).read_text()
    prose = (
        without_results_and_profiles(text) if doc.endswith("benchmarks.md") else text
    )
    bad = unknown_figures(prose, known)
    assert not bad, (
        f"{doc} quotes figures the committed results (docs/benchmarks.md's "
        f"results block) do not contain: {bad}"
    )


def test_the_figure_check_catches_a_stale_figure() -> None:
    """The check itself can fail: figures not in the results are found,
    ranges and targets included; figures that are in them pass."""
    block = results_block(BENCH_MD.read_text())
    known = known_figures(block)
    assert known["time"] and known["ratio"] and known["MiB/s"]
    stale = (
        "the two mprotect calls cost about 1.4 us; 2.33-2.66x the loop; "
        "about 390 MiB/s; 7 system calls per window; target 0.33x; "
        "123,457 windows/s; 31,337 secrets"
    )
    bad = unknown_figures(stale, known)
    assert len(bad) == 8, bad
    first_time = next(f for f in figures(block) if f[1] == "time")
    first_ratio = next(f for f in figures(block) if f[1] == "ratio")
    good = f"about {first_time[0]}, {first_ratio[0]} the floor"
    assert unknown_figures(good, known) == []


def test_profile_sections_are_marked_and_say_so() -> None:
    """A skipped section says where its figures come from."""
    md = BENCH_MD.read_text()
    for part in md.split(PROFILE)[1:]:
        section = part.split("\n#", 1)[0]
        assert "profile_window.py" in section, section[:200]
    for part in md.split(FIGURES_MARK)[1:]:
        section = part.split("\n#", 1)[0]
        assert re.search(r"benchmarks/\w+\.py", section), section[:200]


# ---- URLs ------------------------------------------------------------------


def test_no_unpublished_site_is_claimed() -> None:
    text = (ROOT / "README.md").read_text()
    assert "readthedocs.io" not in text
    assert "published at" not in text


def test_project_urls_are_this_projects() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    urls = re.search(r"^\[project\.urls\]\n(.*?)(?:^\[|\Z)", pyproject, re.M | re.S)
    if urls is None:
        return  # omitted: nothing claimed
    for line in urls.group(1).splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            url = line.split("=", 1)[1].strip().strip('"')
            pytest.fail(f"Project-URL {url!r}: this project publishes no pages")


def test_getpass_claim_states_the_no_terminal_exception() -> None:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"no Python object\s+ever holds the secret[^.]*\.", text)
    if m is not None:
        assert "terminal" in m.group(0) or "sys.stdin" in m.group(0), m.group(0)


# ---- code fences and links -------------------------------------------------


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def bare_fences(text: str) -> list[int]:
    """Line numbers of opening ``` fences without a language."""
    bad = []
    inside: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(`{3,}|~{3,})(.*)$", line)
        if not m:
            continue
        fence, info = m.group(1), m.group(2).strip()
        if inside is None:
            inside = fence
            if not info:
                bad.append(n)
        elif fence.startswith(inside) and not info:
            inside = None
    return bad


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_every_code_block_names_its_language(path: Path) -> None:
    bad = bare_fences(path.read_text())
    assert not bad, f"{path.name}: ``` without a language at lines {bad}"


def test_the_fence_check_catches_a_bare_fence() -> None:
    assert bare_fences("```\nx\n```\n") == [1]
    assert bare_fences("```python\nx\n```\n````{eval-rst}\n```\n````\n") == []


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text()
    bad = []
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        target = m.group(1)
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            bad.append(target)
    assert not bad, f"{path.name}: links to missing files {bad}"


# ---- the built site: its link checker and where it goes ---------------------

CHECKER = ROOT / "scripts" / "check-site-links"


def run_checker(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), str(site)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(not CHECKER.is_file(), reason="no scripts/ here")
def test_site_link_checker_finds_broken_links_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "x.css").write_text("")
    (tmp_path / "index.html").write_text(
        '<html><head><link rel="stylesheet" href="_static/x.css"></head><body>'
        '<h1 id="top">t</h1><a href="#top">ok</a> <a href="sub/page.html#s1">ok</a>'
        ' <a href="https://example.invalid/x">external</a> <a href="mailto:a@b">m</a>'
        ' <a href="sub/">folder</a></body></html>'
    )
    (tmp_path / "sub" / "index.html").write_text("<p>x</p>")
    (tmp_path / "sub" / "page.html").write_text(
        '<section id="s1"></section><a href="../index.html#top">back</a>'
        '<img src="../_static/x.css">'
    )
    good = run_checker(tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 broken" in good.stdout

    (tmp_path / "sub" / "bad.html").write_text(
        '<a href="../index.html#nowhere">a</a> <a href="missing.html">b</a>'
        ' <img src="../_static/none.png"> <a href="#also-nowhere">c</a>'
    )
    bad = run_checker(tmp_path)
    assert bad.returncode == 1
    lines = [x for x in bad.stdout.splitlines() if x.startswith("broken link:")]
    assert len(lines) == 4, bad.stdout
    assert any("no id 'nowhere'" in x for x in lines)
    assert any("missing.html (no such file)" in x for x in lines)


@pytest.mark.skipif(not (ROOT / "scripts" / "docs").is_file(), reason="no scripts/")
def test_docs_script_keeps_the_html_in_a_documented_ignored_folder() -> None:
    script = (ROOT / "scripts" / "docs").read_text()
    assert "out=${DOCS_OUT:-$root/docs/_build/html}" in script
    assert "check-site-links" in script and "-W" in script
    assert "docs/_build/" in (ROOT / ".gitignore").read_text().splitlines()
    readme = (ROOT / "README.md").read_text()
    assert "docs/_build/html" in readme and "DOCS_OUT" in readme


def test_the_site_has_an_installation_page() -> None:
    install = DOCS / "install.md"
    assert install.is_file()
    text = install.read_text()
    for needed in (
        "wheel",
        "C11 compiler",
        "Python.h",
        "python3-dev",
        "python -m memsafe",
    ):
        assert needed in text, needed
    assert "\ninstall\n" in (DOCS / "index.md").read_text()  # in the toctree


def test_wide_tables_wrap() -> None:
    css = DOCS / "_static" / "memsafe.css"
    assert css.is_file()
    assert "overflow-wrap" in css.read_text()
    conf = (DOCS / "conf.py").read_text()
    assert 'html_css_files = ["memsafe.css"]' in conf


# ---- references to tests and documents --------------------------------------


def test_cited_tests_exist() -> None:
    """`test_x.py::test_name` cited in README.md or docs/ is a real test."""
    missing = []
    for path in markdown_files():
        for m in re.finditer(r"(test_\w+\.py)::(test_\w+)", path.read_text()):
            file, name = m.groups()
            found = [p for p in (ROOT / "tests").rglob(file) if p.is_file()]
            if not any(re.search(rf"def {name}\b", p.read_text()) for p in found):
                missing.append(f"{path.name}: {m.group(0)}")
    assert not missing, missing


def test_no_reference_to_documents_outside_the_repository() -> None:
    for path in markdown_files():
        text = path.read_text()
        assert "design document" not in text, path.name


@pytest.mark.skipif(
    not (ROOT / "scripts" / "docs").is_file() or shutil.which("bash") is None,
    reason="needs scripts/docs and bash",
)
def test_docs_script_never_empties_a_folder_it_did_not_build(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("x")
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docs")],
        env={**os.environ, "DOCS_OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    assert "holds no previous build" in r.stdout
    assert keep.read_text() == "x"
