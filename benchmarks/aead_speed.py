#!/usr/bin/env python3
"""ChaCha20-Poly1305 throughput: memsafe's C core against cryptography.

    python3 benchmarks/aead_speed.py [--budget SECONDS] [--cc CC]

In one run on one machine:

1. builds benchmarks/aead_speed.c against src/core/chacha20poly1305.c
   with the C compiler (default: cc) at the optimisation level this
   Python's extensions are built with (sysconfig OPT, e.g. -O3), and runs
   it: seal and open of 32 B, 1 KiB and 64 MiB, straight from C;
2. times cryptography's ChaCha20Poly1305 (OpenSSL's assembly) encrypt and
   decrypt on the same sizes from Python, and memsafe's own AEAD through
   its test hooks (_chacha20poly1305_seal/_open) the same way, so that
   the two Python rows pay the same call overhead.

All figures are MiB/s of message, measured in processor time
(time.process_time, C clock()) so that other work on a shared machine
does not count.  Needs memsafe importable (pip install -e .) and, for its
rows, cryptography.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SIZES = [32, 1024, 64 << 20]
AD = b"\x42" * 16
KEY = bytes(range(1, 33))
NONCE = bytes(12)


def opt_flags() -> list[str]:
    """The -O level (and nothing else) of this Python's extension builds."""
    opt = sysconfig.get_config_var("OPT") or "-O2"
    levels = [f for f in shlex.split(opt) if re.fullmatch(r"-O[0-3s]", f)]
    return levels[-1:] or ["-O2"]


def run_c(cc: str, budget: float) -> dict[tuple[str, int], float]:
    platform = "platform_win.c" if os.name == "nt" else "platform_posix.c"
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "aead_speed"
        cmd = [
            cc,
            "-std=c11",
            *opt_flags(),
            f"-I{REPO / 'src' / 'core'}",
            str(HERE / "aead_speed.c"),
            str(REPO / "src" / "core" / "chacha20poly1305.c"),
            str(REPO / "src" / "core" / platform),
            "-o",
            str(exe),
        ]
        print("+", " ".join(cmd[:3]), "...")
        subprocess.run(cmd, check=True)
        out = subprocess.run(
            [str(exe), str(budget)], check=True, capture_output=True, text=True
        ).stdout
    results = {}
    for line in out.splitlines():
        m = re.match(r"(seal|open) (\d+) B: ([\d.]+) MiB/s", line)
        if m:
            results[(m.group(1), int(m.group(2)))] = float(m.group(3))
    return results


def rate(fn: Callable[[], object], size: int, budget: float) -> float:
    """MiB/s of fn() over about `budget` seconds of processor time."""
    calls, batch = 0, 1
    t0 = time.process_time()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        spent = time.process_time() - t0
        if spent >= budget:
            return size * calls / spent / (1 << 20)
        if spent < budget / 10:
            batch *= 2


def run_python(budget: float) -> dict[str, dict[tuple[str, int], float]]:
    rows: dict[str, dict[tuple[str, int], float]] = {}
    try:
        from memsafe import _memsafe
    except ImportError:
        print("memsafe not importable: no hook rows (pip install -e .)")
    else:
        seal = _memsafe._chacha20poly1305_seal
        open_ = _memsafe._chacha20poly1305_open
        hooks = rows.setdefault("memsafe core via hooks (Python)", {})
        for size in SIZES:
            pt = b"\x17" * size
            ct = seal(KEY, NONCE, AD, pt)
            hooks[("seal", size)] = rate(
                lambda pt=pt: seal(KEY, NONCE, AD, pt), size, budget
            )
            hooks[("open", size)] = rate(
                lambda ct=ct: open_(KEY, NONCE, AD, ct), size, budget
            )
    try:
        import cryptography
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    except ImportError:
        print("cryptography not installed: no cryptography rows")
    else:
        aead = ChaCha20Poly1305(KEY)
        name = f"cryptography {cryptography.__version__} (Python)"
        ref = rows.setdefault(name, {})
        for size in SIZES:
            pt = b"\x17" * size
            ct = aead.encrypt(NONCE, pt, AD)
            ref[("seal", size)] = rate(
                lambda pt=pt: aead.encrypt(NONCE, pt, AD), size, budget
            )
            ref[("open", size)] = rate(
                lambda ct=ct: aead.decrypt(NONCE, ct, AD), size, budget
            )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.5, help="seconds per case")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    args = ap.parse_args()

    rows: dict[str, dict[tuple[str, int], float]] = {}
    rows[f"memsafe core, C ({args.cc} {' '.join(opt_flags())})"] = run_c(
        args.cc, args.budget
    )
    rows.update(run_python(args.budget))

    cols = [(op, size) for size in SIZES for op in ("seal", "open")]

    def label(size: int) -> str:
        return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size} B"

    header = [f"{op} {label(size)}" for op, size in cols]
    width = max(len(name) for name in rows)
    print()
    print("MiB/s".ljust(width), *(h.rjust(12) for h in header))
    for name, res in rows.items():
        cells = [f"{res[c]:.1f}" if c in res else "-" for c in cols]
        print(name.ljust(width), *(c.rjust(12) for c in cells))
    print(f"({sys.implementation.name} {sys.version.split()[0]}, processor time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
