#!/usr/bin/env python3
"""Run the memsafe benchmarks: print a table, write JSON and a PNG chart.

    python3 benchmarks/run.py                 # full run (2-3 minutes)
    python3 benchmarks/run.py --quick         # smoke run (a few seconds)
    python3 benchmarks/run.py --update-docs   # full run, then publish it in docs/

By default the first run creates benchmarks/.venv with this interpreter,
installs memsafe from this checkout and matplotlib into it (again whenever
the C or Python sources change), and re-runs itself there.  --no-venv uses
the current interpreter as it is (memsafe must be importable; without
matplotlib the PNG is skipped).  The C baselines are built with the system C
compiler; libsodium-dev is installed with apt-get when missing and running
as root (--no-install: never install; the libsodium rows are then skipped).

Results: benchmarks.json, benchmarks.png and benchmarks.txt (the table) in
benchmarks/results/ (ignored by git; --out-dir DIR elsewhere), so a run leaves
the checkout as it was.  Only --update-docs rewrites the tracked
docs/benchmarks.json, docs/benchmarks.png and the results block of
docs/benchmarks.md.  See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv"
RESULTS = HERE / "results"
DOCS = REPO / "docs"
VENV_MARK = "MEMSAFE_BENCH_IN_VENV"

# ---- bootstrap ---------------------------------------------------------


def source_digest() -> str:
    """Hash of what an installed memsafe is built from."""
    h = hashlib.sha256()
    files = sorted((REPO / "src").rglob("*.[ch]")) + sorted(
        (REPO / "src" / "memsafe").glob("*.py*")
    )
    for p in [*files, REPO / "setup.py", REPO / "pyproject.toml"]:
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def venv_python(venv: Path) -> Path:
    """The interpreter of a venv."""
    return venv / ("Scripts" if os.name == "nt" else "bin") / "python"


def ensure_venv(venv: Path, base_python: str, extras: list[str]) -> Path:
    """Create venv if needed; (re)install memsafe when its sources changed."""
    py = venv_python(venv)
    if not py.exists():
        print(f"bench: creating {venv.relative_to(REPO)} ...", flush=True)
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    stamp = venv / "memsafe-source.sha256"
    digest = source_digest()
    if not stamp.exists() or stamp.read_text().strip() != digest:
        print(
            "bench: installing memsafe from this checkout"
            f"{' and ' + ', '.join(extras) if extras else ''} into "
            f"{venv.relative_to(REPO)} ...",
            flush=True,
        )
        subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "-q",
                "--upgrade",
                "--force-reinstall",
                "--no-deps",
                str(REPO),
            ],
            check=True,
        )
        if extras:
            subprocess.run([str(py), "-m", "pip", "install", "-q", *extras], check=True)
        stamp.write_text(digest + "\n")
    return py


def bootstrap(args: argparse.Namespace) -> None:
    """Re-run inside benchmarks/.venv unless told not to."""
    if args.no_venv or os.environ.get(VENV_MARK) == "1":
        return
    try:
        py = ensure_venv(VENV, sys.executable, ["matplotlib"])
    except subprocess.CalledProcessError as e:
        raise SystemExit(
            f"bench: setting up {VENV.relative_to(REPO)} failed ({e}); on "
            "Debian install python3-venv, or run with --no-venv in an "
            "environment that has memsafe (and matplotlib for the chart)"
        ) from e
    env = dict(os.environ, **{VENV_MARK: "1"})
    os.execve(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]], env)


# ---- system facts ------------------------------------------------------


def sh(cmd: list[str], cwd: Path | None = None) -> str | None:
    """Output of a command, or None."""
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """CPU model name (Linux /proc/cpuinfo, else platform)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hypervisor() -> str | None:
    """Virtualization, if any is visible."""
    virt = sh(["systemd-detect-virt"])
    if virt and virt != "none":
        return virt
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            if " hypervisor" in f.read():
                return "yes (cpuinfo hypervisor flag)"
    except OSError:
        pass
    return None


def read_text(path: str) -> str | None:
    """A small /proc or /sys file, stripped."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """What the JSON records about the machine."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    vulns = {}
    vdir = Path("/sys/devices/system/cpu/vulnerabilities")
    for name in ("meltdown", "spectre_v2", "retbleed"):
        v = read_text(str(vdir / name))
        if v:
            vulns[name] = v
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "os": platform.system(),
        "virtualization": hypervisor(),
        "page_size": os.sysconf("SC_PAGESIZE"),
        "vm_max_map_count": int(read_text("/proc/sys/vm/max_map_count") or 0) or None,
        "rlimit_memlock": [
            None if soft == resource.RLIM_INFINITY else soft,
            None if hard == resource.RLIM_INFINITY else hard,
        ],
        "euid": os.geteuid(),
        "cpu_vulnerabilities": vulns,
        "load_average_at_start": list(os.getloadavg()),
    }


def git_info() -> dict[str, Any]:
    """Revision and whether the tree has uncommitted changes."""
    rev = sh(["git", "rev-parse", "HEAD"], cwd=REPO)
    status = sh(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO)
    return {"revision": rev, "dirty": bool(status) if status is not None else None}


# ---- building the C baselines -----------------------------------------


def have_sodium_headers(cc: list[str]) -> bool:
    """Whether <sodium.h> and -lsodium work."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.c"
        src.write_text("#include <sodium.h>\nint main(void){return sodium_init()<0;}\n")
        r = subprocess.run(
            [*cc, str(src), "-lsodium", "-o", str(Path(d) / "t")],
            capture_output=True,
            check=False,
        )
        return r.returncode == 0


def apt_install(package: str) -> bool:
    """apt-get install -y package (root only); True on success."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print(f"bench: apt-get install -y {package} ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", package]
    if subprocess.run(cmd, capture_output=True, env=env, check=False).returncode == 0:
        return True
    subprocess.run(
        ["apt-get", "update", "-q"], capture_output=True, env=env, check=False
    )
    return (
        subprocess.run(cmd, capture_output=True, env=env, check=False).returncode == 0
    )


def build_c(build_dir: Path, install: bool) -> tuple[ModuleType, list[str]]:
    """Build and import _benchc; returns it and notes for the report."""
    notes: list[str] = []
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc") or ["cc"]
    if shutil.which(cc[0]) is None:
        cc = ["cc"]
    sodium = have_sodium_headers(cc)
    if not sodium and install and apt_install("libsodium-dev"):
        sodium = have_sodium_headers(cc)
    if not sodium:
        notes.append(
            "libsodium rows skipped: libsodium-dev not installed and not "
            "installable here (apt-get install -y libsodium-dev)"
        )
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out = build_dir / f"_benchc{suffix}"
    cmd = [
        *cc,
        "-O2",
        "-shared",
        "-fPIC",
        "-Wall",
        "-Wextra",
        "-std=gnu11",
        f"-I{include}",
        f"-I{HERE}",
        str(HERE / "benchc.c"),
        "-o",
        str(out),
    ]
    if sodium:
        cmd[1:1] = ["-DHAVE_SODIUM"]
        cmd.append("-lsodium")
    subprocess.run(cmd, check=True)
    sys.path.insert(0, str(build_dir))
    return importlib.import_module("_benchc"), notes


# ---- syscall check (strace) -------------------------------------------

TRACE_SET = "trace=memory,mlock,munlock,getrandom,madvise,write"
TRACE_CODE = r"""
import hashlib, os, sys
sys.path.insert(0, sys.argv[1])
import _benchc as C
import memsafe
def mark(s): os.write(2, b"@@" + s.encode() + b"\n")
k = memsafe.SecretBytes.random(32)
with k.read() as v: hashlib.sha256(v).digest()
k.read(lambda v: hashlib.sha256(v).digest())
k.close()
C.demo("alloc"); C.demo("window"); C.demo("close")
sodium = C.have_sodium()
if sodium:
    C.demo("sodium_alloc"); C.demo("sodium_window"); C.demo("sodium_close")
mark("memsafe.alloc"); k = memsafe.SecretBytes.random(32)
mark("memsafe.window")
with k.read() as v: hashlib.sha256(v).digest()
mark("memsafe.window_closure"); k.read(lambda v: hashlib.sha256(v).digest())
mark("memsafe.close"); k.close()
mark("floor.alloc"); C.demo("alloc")
mark("floor.window"); C.demo("window")
mark("floor.close"); C.demo("close")
if sodium:
    mark("sodium.alloc"); C.demo("sodium_alloc")
    mark("sodium.window"); C.demo("sodium_window")
    mark("sodium.close"); C.demo("sodium_close")
mark("end")
"""


def normalize_call(line: str) -> str:
    """A strace line without addresses and random bytes."""
    line = re.sub(r"^(\[pid\s+\d+\]|\d+)\s+", "", line.strip())
    line = re.sub(r'getrandom\("(?:[^"\\]|\\.)*"(\.\.\.)?', "getrandom(BUF", line)
    line = re.sub(r"0x[0-9a-f]+", "ADDR", line)
    return line


def syscall_check(build_dir: Path) -> dict[str, Any]:
    """The syscalls of one allocation, window and close: memsafe vs floors."""
    if shutil.which("strace") is None:
        return {"skipped": "strace not installed (apt-get install -y strace)"}
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "trace"
        r = subprocess.run(
            [
                "strace",
                "-f",
                "-qq",
                "-e",
                TRACE_SET,
                "-o",
                str(out),
                sys.executable,
                "-c",
                TRACE_CODE,
                str(build_dir),
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if r.returncode != 0 or not out.exists():
            return {
                "skipped": "strace failed: " + r.stderr.decode(errors="replace")[-300:]
            }
        lines = out.read_text(errors="replace").splitlines()
    seqs: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines:
        m = re.search(r'write\(2, "@@([\w.]+)\\n"', line)
        if m:
            current = m.group(1)
            seqs.setdefault(current, [])
            continue
        if current is None or current == "end" or "resumed>" in line:
            continue
        call = normalize_call(line)
        if call.startswith("write("):
            continue
        seqs[current].append(call)
    seqs.pop("end", None)

    def names(seq: list[str]) -> list[str]:
        return [s.split("(", 1)[0] for s in seq]

    match = {}
    for op in ("alloc", "window", "close"):
        a, b = seqs.get(f"memsafe.{op}", []), seqs.get(f"floor.{op}", [])
        match[op] = a == b
    match["window_closure"] = seqs.get("memsafe.window_closure") == seqs.get(
        "floor.window"
    )
    return {
        "sequences": seqs,
        "counts": {k: len(v) for k, v in seqs.items()},
        "names": {k: names(v) for k, v in seqs.items()},
        "floor_mirrors_memsafe": match,
    }


# Every system call (no -e filter) of N operations of each kind, both
# engines, once the arenas and the key exist: per-operation counts.
COUNT_OPS = 1000
STRACE_ALL = ["strace", "-f", "-qq", "-o"]
COUNT_CODE = r"""
import hashlib, os, sys
import memsafe
n = int(sys.argv[1])
sha = hashlib.sha256
def mark(s): os.write(2, b"@@" + s.encode() + b"\n")
def fn(v): return sha(v).digest()
b = os.urandom(32)
SB = memsafe.SecretBytes
for e in ("guarded", "sealed"):
    k = SB.random(32, storage=e)
    m = memsafe.MemSafe(32, storage=e)
    for _ in range(3):  # warm up: the key, the arenas, the code paths
        with k.read() as v: sha(v).digest()
        k.read(fn)
        with m.write() as v: v[0] = 1
        SB(b, storage=e).close()
        SB.random(32, storage=e).close()
    mark(e + ".window")
    for _ in range(n):
        with k.read() as v: sha(v).digest()
    mark(e + ".window_closure")
    for _ in range(n):
        k.read(fn)
    mark(e + ".write_window")
    for _ in range(n):
        with m.write() as v: v[0] = 1
    mark(e + ".create_close")
    for _ in range(n):
        SB(b, storage=e).close()
    mark(e + ".random_close")
    for _ in range(n):
        SB.random(32, storage=e).close()
    mark("end")
    k.close(); m.close()
"""


def syscall_counts(n: int) -> dict[str, Any]:
    """All system calls of n operations of each kind per engine (strace
    without a filter, between marker writes): calls per operation."""
    if shutil.which("strace") is None:
        return {"skipped": "strace not installed (apt-get install -y strace)"}
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "trace"
        r = subprocess.run(
            [*STRACE_ALL, str(out), sys.executable, "-c", COUNT_CODE, str(n)],
            capture_output=True,
            check=False,
            timeout=300,
        )
        if r.returncode != 0 or not out.exists():
            return {
                "skipped": "strace failed: " + r.stderr.decode(errors="replace")[-300:]
            }
        lines = out.read_text(errors="replace").splitlines()
    calls: dict[str, dict[str, int]] = {}
    current: str | None = None
    for line in lines:
        m = re.search(r'write\(2, "@@([\w.]+)\\n"', line)
        if m:
            current = None if m.group(1) == "end" else m.group(1)
            if current is not None:
                calls.setdefault(current, {})
            continue
        if current is None or "resumed>" in line:
            continue
        name = normalize_call(line).split("(", 1)[0]
        calls[current][name] = calls[current].get(name, 0) + 1
    return {
        "operations": n,
        "calls": calls,
        "per_operation": {k: sum(v.values()) / n for k, v in calls.items()},
    }


# ---- table -------------------------------------------------------------


def fmt_value(v: float, unit: str) -> str:
    """A value with a sensible unit."""
    if unit == "ns":
        return f"{v / 1000:.2f} us" if v >= 1000 else f"{v:.0f} ns"
    if unit in ("MiB/s", "windows/s", "secrets"):
        return f"{v:,.0f} {unit}"
    if unit == "us":
        return f"{v:.1f} us"
    return f"{v:.2f} {unit}"


def fmt_range(lo: float, hi: float, unit: str) -> str:
    """min..max."""
    a, b = fmt_value(lo, unit), fmt_value(hi, unit)
    return f"{a.split()[0]}..{b}"


def table(doc: dict[str, Any]) -> str:
    """The printed table."""
    w_label, w_val, w_rng = 52, 16, 24
    lines = []
    m = doc["machine"]
    lines.append(
        f"memsafe benchmarks - {m['cpu_model']}, {m['cpus']} cpus, Linux "
        f"{m['kernel']}, {doc['python']['label']}, git "
        f"{(doc['git']['revision'] or '?')[:10]}"
        f"{' (dirty)' if doc['git']['dirty'] else ''}"
    )
    lines.append(
        f"median of {doc['settings']['reps']} interleaved repetitions "
        "[min..max]; ratio = time / baseline time (throughput and "
        "threads: rate / baseline rate)"
    )
    for sec in doc["sections"]:
        lines.append("")
        lines.append(sec["title"])
        lines.append(
            f"  {'measurement':<{w_label}} {'median':>{w_val}} "
            f"{'min..max':>{w_rng}}   ratio [min..max]"
        )
        for r in sec["rows"]:
            val = fmt_value(r["median"], r["unit"])
            rng = (
                fmt_range(r["min"], r["max"], r["unit"]) if len(r["values"]) > 1 else ""
            )
            ratio = ""
            if "ratio" in r:
                q = r["ratio"]
                ratio = f"{q['median']:.2f}x"
                if len(q["values"]) > 1:
                    ratio += f" [{q['min']:.2f}..{q['max']:.2f}]"
                ratio += f" vs {r['baseline']}"
            elif "baseline" not in r and (
                (
                    sec["key"] in ("window", "alloc", "throughput")
                    and r["key"] == "floor"
                )
                or (sec["key"] == "sealed" and r["key"].startswith("floor_"))
            ):
                ratio = "1.00x (baseline)"
            if "target" in r:
                t = r["target"]
                ok = "MET" if t.get("met") else "NOT MET"
                ratio += f"  target {t['op']} {t['value']}: {ok}"
            label = r["label"]
            if len(label) > w_label:
                label = label[: w_label - 1] + "~"
            lines.append(
                f"  {label:<{w_label}} {val:>{w_val}} {rng:>{w_rng}}   {ratio}"
            )
            if r.get("note"):
                lines.append(f"  {'':<{w_label}}   {r['note']}")
        for note in sec.get("notes", []):
            lines.append(f"  note: {note}")
    sc = doc.get("syscalls", {})
    lines.append("")
    if "skipped" in sc:
        lines.append(f"syscall check skipped: {sc['skipped']}")
    elif sc:
        lines.append("syscalls per operation (strace):")
        for k, names in sc["names"].items():
            lines.append(f"  {k:<24} {len(names):>2}: {' '.join(names)}")
        mm = sc["floor_mirrors_memsafe"]
        bad = [k for k, ok in mm.items() if not ok]
        lines.append(
            "  C floors make exactly memsafe's syscalls (names, flags, sizes)"
            if not bad
            else f"  WARNING: C floor differs from memsafe for: {', '.join(bad)}"
        )
    cc = doc.get("syscall_counts", {})
    if "skipped" in cc:
        lines.append(f"syscall count skipped: {cc['skipped']}")
    elif cc:
        lines.append(
            f"all syscalls per operation, once the arenas exist (strace, no "
            f"filter, {cc['operations']:,} of each):"
        )
        for k, per in cc["per_operation"].items():
            detail = ", ".join(
                f"{name} {count / cc['operations']:g}"
                for name, count in sorted(cc["calls"][k].items())
            )
            lines.append(f"  {k:<24} {per:>6g}{': ' + detail if detail else ''}")
    for note in doc.get("notes", []):
        lines.append(f"note: {note}")
    lines.append(f"total time: {doc['elapsed_s']:.0f} s")
    return "\n".join(lines)


# ---- main --------------------------------------------------------------


def command_line(argv: list[str]) -> str:
    """The command as recorded in the JSON (without --out-dir, whose value
    is a local path and does not change the results)."""
    kept: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out-dir":
            skip = True
        elif not a.startswith("--out-dir="):
            kept.append(a)
    return " ".join(["python3 benchmarks/run.py", *kept])


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="3 repetitions, short batches, small counts (a smoke run)",
    )
    p.add_argument("--reps", type=int, help="repetitions (default 11)")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=RESULTS,
        help="where to write benchmarks.json, .png and .txt "
        "(default benchmarks/results/, ignored by git)",
    )
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="also rewrite the tracked docs/benchmarks.json, "
        "docs/benchmarks.png and the results block of docs/benchmarks.md",
    )
    p.add_argument(
        "--no-venv", action="store_true", help="use this interpreter as it is"
    )
    p.add_argument(
        "--no-install", action="store_true", help="never apt-get install libsodium-dev"
    )
    p.add_argument(
        "--only",
        default="window,alloc,throughput,memory,scale,concurrency,sealed,"
        "sealed_throughput,sealed_scale,sealed_concurrency,syscalls",
        help="comma-separated subset of sections",
    )
    args = p.parse_args(argv)
    if args.update_docs and args.quick:
        p.error("--update-docs publishes a full run: drop --quick")
    return args


def main(argv: list[str]) -> int:
    """Run everything; print the table; write the results."""
    args = parse_args(argv)
    bootstrap(args)
    t_start = time.monotonic()
    try:
        import memsafe
    except ImportError:
        print(
            "bench: memsafe is not importable here; install it "
            "(pip install .) or run without --no-venv",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, str(HERE))
    import suites

    only = set(args.only.split(","))
    reps = args.reps or (3 if args.quick else 11)
    batch_s = 0.02 if args.quick else 0.1
    counts = [1000, 10000]

    build_dir = Path(tempfile.mkdtemp(prefix="memsafe-bench-"))
    try:
        C, notes = build_c(build_dir, install=not args.no_install)
        have_sodium = bool(C.have_sodium())
        doc: dict[str, Any] = {
            "schema": 1,
            "generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "command": command_line(argv),
            "machine": machine_info(),
            "python": {
                "version": platform.python_version(),
                "implementation": platform.python_implementation(),
                "label": suites.interpreter_label(),
            },
            "git": git_info(),
            "memsafe": {"version": memsafe.__version__},
            "libsodium": sh(["dpkg-query", "-W", "-f", "${Version}", "libsodium-dev"])
            if have_sodium
            else None,
            "settings": {"reps": reps, "quick": args.quick, "batch_seconds": batch_s},
            "sections": [],
            "notes": notes,
        }
        sections = doc["sections"]

        def step(name: str) -> None:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)

        if "syscalls" in only:
            step("syscall check (strace)")
            doc["syscalls"] = syscall_check(build_dir)
        if "window" in only:
            step("1/10 window latency")
            sections.append(suites.bench_window(C, memsafe, reps, batch_s).as_dict())
        if "alloc" in only:
            step("2/10 allocation")
            sections.append(suites.bench_alloc(C, memsafe, reps, batch_s).as_dict())
        if "throughput" in only:
            step("3/10 throughput")
            size = suites.BIG_LEN if not args.quick else suites.BIG_LEN // 8
            sections.append(
                suites.bench_throughput(C, memsafe, max(reps, 5), size).as_dict()
            )
        if "memory" in only:
            step("4/10 memory per secret")
            sections.append(
                suites.bench_memory(
                    sys.executable,
                    build_dir,
                    have_sodium,
                    counts,
                    1 if args.quick else 3,
                ).as_dict()
            )
        if "scale" in only:
            step("5/10 scale")
            sections.append(
                suites.bench_scale(
                    sys.executable,
                    build_dir,
                    have_sodium,
                    20_000 if args.quick else 200_000,
                    20 if args.quick else 60,
                ).as_dict()
            )
        if "concurrency" in only:
            step("6/10 concurrency")
            sections.append(
                concurrency(
                    suites,
                    memsafe,
                    reps,
                    0.1 if args.quick else 0.4,
                    install=not args.no_venv,
                )
            )
        if "sealed" in only:
            step("7/10 sealed: window and create + close")
            sections.append(suites.bench_sealed(C, memsafe, reps, batch_s).as_dict())
        if "sealed_throughput" in only:
            step("8/10 sealed: throughput")
            size = suites.BIG_LEN if not args.quick else suites.BIG_LEN // 8
            sections.append(
                suites.bench_sealed_throughput(memsafe, max(reps, 5), size).as_dict()
            )
        if "sealed_scale" in only:
            step("9/10 sealed: scale")
            sections.append(
                suites.bench_engine_scale(sys.executable, args.quick).as_dict()
            )
        if "sealed_concurrency" in only:
            step("10/10 sealed: concurrency")
            sections.append(
                sealed_concurrency(
                    suites,
                    memsafe,
                    reps,
                    0.1 if args.quick else 0.25,
                    install=not args.no_venv,
                )
            )
        if "syscalls" in only:
            step("syscall count (strace, both engines)")
            doc["syscall_counts"] = syscall_counts(100 if args.quick else COUNT_OPS)
        doc["elapsed_s"] = time.monotonic() - t_start
        text = table(doc)
        print(text)
        publish(doc, text, args)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return 0


def concurrency(
    suites: Any, memsafe: ModuleType, reps: int, seconds: float, install: bool
) -> dict[str, Any]:
    """Section 6, here and on a free-threaded Python if there is one."""
    threads = [1, 2, 4]
    sec = suites.Section("concurrency", "6. Concurrency: read windows/s on one secret")
    values = suites.concurrency_values(memsafe, threads, reps, seconds)
    sec.rows += suites.concurrency_section(suites.interpreter_label(), "here", values)
    ft = suites.find_free_threaded()
    if ft is None:
        sec.notes.append(
            "free-threaded rows skipped: MEMSAFE_FT_PYTHON not set, no "
            "python3.13t on PATH or from scripts/build-ft-python (run it "
            "to build one, about 4 minutes)"
        )
    else:
        try:
            py = str(ensure_venv(HERE / ".venv-ft", ft, [])) if install else ft
            ans = suites.run_child(
                py,
                ["concurrency", ",".join(map(str, threads)), str(reps), str(seconds)],
                env={"PYTHONPATH": str(HERE)},
            )
            vals = {int(k): v for k, v in ans["values"].items()}
            sec.rows += suites.concurrency_section(ans["label"], "ft", vals)
            if ans["gil_enabled"]:
                sec.notes.append(
                    f"{os.path.basename(ft)}: the GIL is enabled at run time "
                    "(the extension does not declare Py_MOD_GIL_NOT_USED, or the "
                    "interpreter is not free-threaded)"
                )
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            sec.notes.append(f"free-threaded run failed: {e}")
    sec.notes.append(
        "ratio = windows/s with N threads / windows/s with 1 thread.  Read "
        "windows on one secret are counted, not nested: a window opened "
        "while another thread's window is still open makes no mprotect "
        "call, so under the GIL a thread switched out inside its with-block "
        "keeps the pages readable and the other threads' windows cost no "
        "system call - hence ratios above 1 with a GIL"
    )
    return dict(sec.as_dict())


def sealed_concurrency(
    suites: Any, memsafe: ModuleType, reps: int, seconds: float, install: bool
) -> dict[str, Any]:
    """Section 10, here and on a free-threaded Python if there is one."""
    threads = [1, 2, 4]
    sec = suites.Section(
        "sealed_concurrency",
        "10. Sealed engine: concurrency, read windows/s (sealed and guarded)",
    )
    values, shared = suites.engine_concurrency_values(memsafe, threads, reps, seconds)
    sec.rows += suites.engine_concurrency_rows(
        suites.interpreter_label(), "here", values
    )
    sec.extra["arenas_shared"] = {"here": shared}
    ft = suites.find_free_threaded()
    if ft is None:
        sec.notes.append(
            "free-threaded rows skipped: no free-threaded Python found (see section 6)"
        )
    else:
        try:
            py = str(ensure_venv(HERE / ".venv-ft", ft, [])) if install else ft
            ans = suites.run_child(
                py,
                [
                    "concurrency_engines",
                    ",".join(map(str, threads)),
                    str(reps),
                    str(seconds),
                ],
                env={"PYTHONPATH": str(HERE)},
                timeout=600,
            )
            vals = {
                kind: {int(k): v for k, v in d.items()}
                for kind, d in ans["values"].items()
            }
            sec.rows += suites.engine_concurrency_rows(ans["label"], "ft", vals)
            sec.extra["arenas_shared"]["ft"] = ans["arenas_shared"]
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            sec.notes.append(f"free-threaded run failed: {e}")
    sec.notes.append(
        "ratio = windows/s with N threads / windows/s with 1 thread of the "
        "same kind; the last rows of each interpreter: sealed / guarded at "
        "the same thread count (one secret per thread).  The per-thread "
        "sealed secrets share one cipher arena and the window pool"
        + ("" if all(sec.extra["arenas_shared"].values()) else " (NOT in every run)")
        + "; a read window on one sealed secret shared by several threads "
        "decrypts once for all the windows open at the same time"
    )
    return dict(sec.as_dict())


def publish(doc: dict[str, Any], text: str, args: argparse.Namespace) -> None:
    """Write the results to args.out_dir; with --update-docs also to docs/."""
    png = write_results(doc, text, args.out_dir)
    if args.update_docs:
        update_docs(doc, text, DOCS, png)


def write_results(doc: dict[str, Any], text: str, out_dir: Path) -> Path | None:
    """benchmarks.json, benchmarks.txt and benchmarks.png in out_dir; returns
    the PNG's path, or None without matplotlib."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "benchmarks.txt").write_text(text + "\n")
    print(
        f"bench: wrote {out_dir / 'benchmarks.json'}, benchmarks.txt", file=sys.stderr
    )
    try:
        import chart
    except ImportError:
        print(
            "bench: matplotlib not installed: no PNG (pip install matplotlib)",
            file=sys.stderr,
        )
        return None
    png = out_dir / "benchmarks.png"
    chart.draw(doc, png)
    print(f"bench: wrote {png}", file=sys.stderr)
    return png


def update_docs(doc: dict[str, Any], text: str, docs: Path, png: Path | None) -> None:
    """The tracked copies: docs/benchmarks.json, docs/benchmarks.png (when a
    PNG was drawn) and the results block of docs/benchmarks.md."""
    (docs / "benchmarks.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"bench: updated {docs / 'benchmarks.json'}", file=sys.stderr)
    if png is not None:
        shutil.copyfile(png, docs / "benchmarks.png")
        print(f"bench: updated {docs / 'benchmarks.png'}", file=sys.stderr)
    md = docs / "benchmarks.md"
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if md.exists():
        s = md.read_text()
        if begin in s and end in s:
            head, rest = s.split(begin, 1)
            _, tail = rest.split(end, 1)
            block = f"{begin}\n```text\n{text}\n```\n{end}"
            md.write_text(head + block + tail)
            print(f"bench: updated the results block of {md}", file=sys.stderr)
            print(
                "bench: now update the figures quoted in its prose and in "
                "README.md: `python -m pytest tests/test_docs_claims.py` "
                "lists those the new results do not contain",
                file=sys.stderr,
            )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
