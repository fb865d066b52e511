#!/usr/bin/env python3
"""Where the time of a window goes: callgrind per operation, and the core's
parts in C.

    python3 benchmarks/profile_window.py callgrind [--storage sealed]
        [--form with|closure|create|plain] [--n 20000] [--no-inline]
    python3 benchmarks/profile_window.py parts

callgrind: runs N operations (a read window around hashlib.sha256 of a
32-byte secret, in the with-form or the closure form; or a create + close)
under valgrind --tool=callgrind, and again with none, and prints the
difference of the inclusive instruction counts per function divided by N:
the instructions one operation costs, function by function.  memsafe comes
from this interpreter's environment; --no-inline builds a private copy of
the checkout with -fno-inline first (static functions then show up on their
own instead of inside their callers; the totals grow a little).  Counts are
instructions, not time: `rep stosb` (glibc's memset of a few KiB, so the
scrub's stack burn) counts one per byte, which is far more than it costs.

parts: builds benchmarks/core_parts.c against src/core and runs it: the
ns (CPU time) of a whole window at the store interface and of each part of
a sealed one, with no Python around them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = r"""
import hashlib, sys
import memsafe
n, form, storage = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sha = hashlib.sha256
key = memsafe.SecretBytes.random(32, storage=storage)
value = bytes(range(32))
SB = memsafe.SecretBytes
def fn(v):
    return sha(v).digest()
def run(m):
    if form == "with":
        for _ in range(m):
            with key.read() as v:
                sha(v).digest()
    elif form == "closure":
        for _ in range(m):
            key.read(fn)
    elif form == "create":
        for _ in range(m):
            SB(value, storage=storage).close()
    else:
        for _ in range(m):
            sha(value).digest()
run(200)  # warm up: the key, the arenas, the code paths
run(n)
"""

LINE = re.compile(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*?)(?: \[.*\])?$")


def inclusive(path: Path) -> dict[str, int]:
    """function -> inclusive Ir, from callgrind_annotate's function table."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    costs: dict[str, int] = {}
    for s in out:
        if s.rstrip().endswith("PROGRAM TOTALS"):
            costs["TOTAL"] = int(s.split()[0].replace(",", ""))
    start = next(i for i, s in enumerate(out) if s.rstrip().endswith("file:function"))
    for s in out[start + 2 :]:
        if s.startswith("-----"):
            break
        m = LINE.match(s)
        if not m:
            continue
        name = re.sub(r"^.*/", "", m.group(2))
        costs[name] = max(costs.get(name, 0), int(m.group(1).replace(",", "")))
    return costs


def private_build(tmp: Path) -> Path:
    """A wheel of this checkout built with -fno-inline, unpacked: the
    directory to put first on PYTHONPATH."""
    env = dict(os.environ, MEMSAFE_EXTRA_CFLAGS="-fno-inline")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]
    subprocess.run([*pip, "-w", str(tmp / "wheel"), str(REPO)], check=True, env=env)
    site = tmp / "site"
    wheel = next((tmp / "wheel").glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "zipfile", "-e", str(wheel), str(site)], check=True
    )
    return site


def callgrind(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("profile: needs valgrind (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="memsafe-profile-") as d:
        tmp = Path(d)
        env = dict(os.environ)
        if args.no_inline:
            env["PYTHONPATH"] = str(private_build(tmp))
        costs = {}
        for n in (0, args.n):
            out = tmp / f"callgrind.{n}"
            tool = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            subprocess.run(
                [*tool, sys.executable, "-c", CHILD, str(n), args.form, args.storage],
                check=True,
                env=env,
                stderr=subprocess.DEVNULL,
            )
            costs[n] = inclusive(out)
    base, full = costs[0], costs[args.n]
    per = {k: (full.get(k, 0) - base.get(k, 0)) / args.n for k in full}
    total = per.pop("TOTAL", 0.0)
    print(
        f"{args.storage}, {args.form}: {total:,.0f} instructions per operation "
        f"(callgrind, {args.n:,} operations, inclusive counts per function)"
    )
    skip = ("main", "pythonrun.c", "PyEval_EvalCode", "libc", "(below main)", "???:0x")
    for name, ir in sorted(per.items(), key=lambda kv: -kv[1]):
        if ir < args.min or any(s in name for s in skip):
            continue
        print(f"  {ir:9,.0f}  {name}")
    return 0


def parts(_: argparse.Namespace) -> int:
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(cc[0]) is None:
        cc = ["cc"]
    core = REPO / "src" / "core"
    sources = sorted(p for p in core.glob("*.c") if p.name != "platform_win.c")
    # The optimisation flags the extension is built with (as setup.py does).
    opt = (sysconfig.get_config_var("OPT") or "-O2").split()
    with tempfile.TemporaryDirectory(prefix="memsafe-parts-") as d:
        exe = Path(d) / "core_parts"
        subprocess.run(
            [*cc, *opt, "-std=gnu11", f"-I{core}", str(HERE / "core_parts.c")]
            + [str(p) for p in sources]
            + ["-lpthread", "-o", str(exe)],
            check=True,
        )
        return subprocess.run([str(exe)], check=False).returncode


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("callgrind", help="instructions per operation, by function")
    c.add_argument("--storage", default="sealed", choices=["sealed", "guarded"])
    c.add_argument(
        "--form", default="with", choices=["with", "closure", "create", "plain"]
    )
    c.add_argument("--n", type=int, default=20_000, help="operations (20,000)")
    c.add_argument("--min", type=float, default=100, help="hide below this many")
    c.add_argument("--no-inline", action="store_true", help="build with -fno-inline")
    c.set_defaults(run=callgrind)
    sub.add_parser("parts", help="the core's parts in C, ns each").set_defaults(
        run=parts
    )
    args = p.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
