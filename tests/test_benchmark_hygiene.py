"""A benchmark run leaves the checkout clean; only --update-docs touches docs/.

Works on a throw-away git repository holding a copy of this checkout's
tracked files (as they are in the work tree), so nothing here can dirty the
real checkout.  Fast: one --quick run of a single section, and the writers
called with a tiny fake result set.  Skipped outside a git checkout (the
test-matrix, sanitizer and wheel runs test a copy without .git).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import LINUX, not_sanitized

ROOT = Path(__file__).resolve().parents[1]
RUN = Path("benchmarks") / "run.py"

pytestmark = [
    pytest.mark.storage("any"),
    pytest.mark.skipif(
        not (ROOT / RUN).is_file()
        or not (ROOT / ".git").exists()
        or shutil.which("git") is None,
        reason="needs a git checkout with benchmarks/ and git",
    ),
]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=memsafe tests",
            "-c",
            "user.email=tests@memsafe.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def changed(repo: Path) -> list[str]:
    """git status --porcelain, one path per line (untracked files included)."""
    return [line[3:] for line in git(repo, "status", "--porcelain").splitlines()]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A fresh git repository with the tracked files of this checkout."""
    repo = tmp_path / "repo"
    repo.mkdir()
    tracked = git(ROOT, "ls-files", "-z").split("\0")
    for name in filter(None, tracked):
        src = ROOT / name
        if src.is_file():  # deleted but not yet committed: skip
            dst = repo / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "copy")
    assert changed(repo) == []
    return repo


@pytest.fixture
def run(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The copy's benchmarks/run.py as a module (its REPO is the copy)."""
    monkeypatch.syspath_prepend(str(checkout / "benchmarks"))
    saved = {m: sys.modules.pop(m) for m in ("chart", "suites") if m in sys.modules}
    spec = importlib.util.spec_from_file_location("bench_run", checkout / RUN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    for m in ("chart", "suites"):
        sys.modules.pop(m, None)
    sys.modules.update(saved)


def fake_result() -> dict[str, Any]:
    """The smallest document the table, the JSON and the chart accept."""
    return {
        "schema": 1,
        "command": "python3 benchmarks/run.py",
        "machine": {"cpu_model": "test cpu", "cpus": 1, "kernel": "0"},
        "python": {"label": "CPython (test)"},
        "git": {"revision": "0" * 40, "dirty": False},
        "settings": {"reps": 1, "quick": False},
        "sections": [],
        "notes": ["fake result written by tests/test_benchmark_hygiene.py"],
        "elapsed_s": 0.0,
    }


@not_sanitized
@pytest.mark.skipif(not LINUX, reason="the benchmarks read /proc")
@pytest.mark.skipif(
    shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None
    and shutil.which("cc") is None,
    reason="needs a C compiler for the benchmark's C baselines",
)
def test_a_run_leaves_the_checkout_clean(checkout: Path) -> None:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("MEMSAFE_LOCK_POLICY", None)
    r = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--no-venv",
            "--no-install",
            "--quick",
            "--only",
            "alloc",
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2. Allocation" in r.stdout
    results = checkout / "benchmarks" / "results"
    assert (results / "benchmarks.json").is_file()
    assert "2. Allocation" in (results / "benchmarks.txt").read_text()
    assert changed(checkout) == []


def test_only_update_docs_rewrites_docs(checkout: Path, run: ModuleType) -> None:
    doc = fake_result()
    text = run.table(doc)

    run.publish(doc, text, run.parse_args([]))
    assert (checkout / "benchmarks" / "results" / "benchmarks.json").is_file()
    assert changed(checkout) == []

    out = checkout.parent / "elsewhere"
    run.publish(doc, text, run.parse_args(["--out-dir", str(out)]))
    assert (out / "benchmarks.txt").read_text() == text + "\n"
    assert changed(checkout) == []

    run.publish(doc, text, run.parse_args(["--update-docs"]))
    docs = set(changed(checkout))
    assert {"docs/benchmarks.json", "docs/benchmarks.md"} <= docs
    assert docs <= {"docs/benchmarks.json", "docs/benchmarks.md", "docs/benchmarks.png"}
    assert "fake result" in (checkout / "docs" / "benchmarks.json").read_text()
    assert text in (checkout / "docs" / "benchmarks.md").read_text()


def test_quick_runs_are_not_published(run: ModuleType) -> None:
    with pytest.raises(SystemExit):
        run.parse_args(["--quick", "--update-docs"])
