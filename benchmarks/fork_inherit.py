"""What fork="inherit" costs a fork child, per inherited secret.

    python3 benchmarks/fork_inherit.py [--max N] [--repeat R]

For each engine and each count N (1, 10, 100, 1,000, 10,000, 100,000 -
guarded stops at 10,000: three mappings a secret against vm.max_map_count),
a fresh interpreter makes N 32-byte secrets under each policy, then times
os.fork() until the child, which exits at once, has been reaped.  The
child's adoption (locking the pages again, re-sealing under its own key)
runs inside fork() in the child, before it can exit, so the difference
between the two policies, divided by N, is the cost per inherited secret.
The baseline is the same fork with the same secrets under the default
policy ("wipe"), measured in the same process.  Best of R forks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, os, sys, time, memsafe
    engine, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    memsafe.set_default_storage(engine)
    def fork_time():
        best = None
        for _ in range(repeat):
            t = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        return best
    out = {}
    for policy in ("wipe", "inherit"):
        keep = [memsafe.SecretBytes.random(32, fork=policy) for _ in range(n)]
        out[policy] = fork_time()
        for k in keep:
            k.close()
        del keep
    print(json.dumps(out))
    """
)


def measure(engine: str, n: int, repeat: int) -> dict[str, float]:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, engine, str(n), str(repeat)],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return dict(json.loads(r.stdout))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"{'engine':8} {'secrets':>8} {'wipe ms':>9} {'inherit ms':>11} "
          f"{'per secret us':>14}")
    for engine in ("guarded", "sealed"):
        n = 1
        while n <= args.max and not (engine == "guarded" and n > 10_000):
            t = measure(engine, n, args.repeat)
            per = (t["inherit"] - t["wipe"]) / n * 1e6
            print(f"{engine:8} {n:>8,} {t['wipe'] * 1e3:>9.2f} "
                  f"{t['inherit'] * 1e3:>11.2f} {per:>14.2f}")
            n *= 10


if __name__ == "__main__":
    main()
