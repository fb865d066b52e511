#!/usr/bin/env python3
"""Compare the hot paths of this checkout's memsafe with another build.

Made for the move to heap types and per-interpreter module state (the
subinterpreter support): it prints new/old ratios of the same statements,
timed in alternating child processes on the same machine, so that load on
the machine affects both sides alike.  Build the other side first, e.g.::

    old=$(mktemp -d); mkdir "$old/src"
    git archive OLD_COMMIT | tar -x -C "$old/src"
    pip install --no-deps --target "$old/site" "$old/src"
    python3 benchmarks/build_compare.py "$old/site"

The current interpreter must import this checkout's memsafe (an editable
install); the other build is put first on PYTHONPATH.  Each figure is the
best of ROUNDS child runs of timeit's best of 15 repeats: ratios, not
absolute times, are the result.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ROUNDS = 5

# name: (setup, statement)
CASES = {
    "random(32)+close guarded": (
        "memsafe.set_default_storage('guarded')",
        "k = SB.random(32); k.close()",
    ),
    "random(32)+close sealed": (
        "memsafe.set_default_storage('sealed')",
        "k = SB.random(32); k.close()",
    ),
    "SecretBytes(b, storage=)+close sealed": (
        "memsafe.set_default_storage('sealed')",
        "k = SB(b, storage='sealed'); k.close()",
    ),
    "read window guarded": (
        "memsafe.set_default_storage('guarded'); k = SB.random(32)",
        "with k.read() as v: pass",
    ),
    "read window sealed": (
        "memsafe.set_default_storage('sealed'); k = SB.random(32)",
        "with k.read() as v: pass",
    ),
    "k == bytes sealed": (
        "memsafe.set_default_storage('sealed'); k = SB.random(32)",
        "k == b",
    ),
    "subclass random(32)+close sealed": (
        "memsafe.set_default_storage('sealed')\nclass S(SB): pass",
        "k = S.random(32); k.close()",
    ),
}

CHILD = """
import timeit, memsafe
SB = memsafe.SecretBytes
b = bytes(32)
{setup}
t = timeit.Timer({stmt!r}, globals=globals())
n, _ = t.autorange()
print(min(t.repeat(15, n)) / n * 1e9)
"""


def time_ns(path: str | None, setup: str, stmt: str) -> float:
    """Nanoseconds per statement in a child (path: the other build)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if path:
        env["PYTHONPATH"] = path
    code = CHILD.format(setup=setup, stmt=stmt)
    out = subprocess.check_output([sys.executable, "-c", code], env=env)
    return float(out)


def main() -> None:
    """Print old and new times and their ratio for each case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old_site", help="folder holding the other build")
    old = parser.parse_args().old_site
    for name, (setup, stmt) in CASES.items():
        olds, news = [], []
        for _ in range(ROUNDS):
            olds.append(time_ns(old, setup, stmt))
            news.append(time_ns(None, setup, stmt))
        o, n = min(olds), min(news)
        print(f"{name:40s} old {o:8.0f} ns  new {n:8.0f} ns  new/old {n / o:.3f}")


if __name__ == "__main__":
    main()
