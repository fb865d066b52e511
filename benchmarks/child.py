"""Child processes of the memsafe benchmarks; prints one JSON line.

    child.py memory KIND N BUILD_DIR        memory per live secret
    child.py scale KIND LIMIT SECONDS BUILD_DIR
                                            live secrets until failure
    child.py concurrency THREADS REPS SECONDS
                                            read windows/s (this interpreter)
    child.py concurrency_engines THREADS REPS SECONDS
                                            read windows/s, sealed and guarded
    child.py engine_scale STORAGE N         N live 32-byte secrets of one
                                            engine: locked, mapped, maps

KIND: memsafe, memsafe_off (lock policy 'off'), sodium, floor, bytes.
BUILD_DIR holds the _benchc extension (for sodium and floor).
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

PAGE = os.sysconf("SC_PAGESIZE")


def snapshot() -> dict[str, int]:
    """VmSize, VmRSS, VmLck (kB) and the number of mappings."""
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmSize", "VmRSS", "VmLck"):
                out[name] = int(rest.split()[0])
    with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
        out["maps"] = sum(1 for _ in f)
    return out


def load_c(build_dir: str) -> Any:
    """The _benchc extension built by run.py."""
    sys.path.insert(0, build_dir)
    return importlib.import_module("_benchc")


def memory(kind: str, n: int, build_dir: str) -> dict[str, Any]:
    """Allocate n live secrets of one kind; per-secret deltas."""
    keep: list[Any] = [None] * n
    C = None
    make: Callable[[int], Any] = bytes
    if kind.startswith("memsafe"):
        import memsafe

        if kind == "memsafe_off":
            memsafe.set_lock_policy("off")
        memsafe.SecretBytes.random(32).close()  # warm up
        make = memsafe.SecretBytes.random
    elif kind != "bytes":
        C = load_c(build_dir)
        C.have_sodium()  # sodium_init outside the measurement
    before = snapshot()
    if C is not None:
        made, err = C.hold(1 if kind == "sodium" else 0, 32, n)
        if made != n:
            raise OSError(abs(err), os.strerror(abs(err)))
    else:
        for i in range(n):
            keep[i] = make(32)
    after = snapshot()
    kb_per_page = PAGE / 1024
    return {
        "pages": (after["VmSize"] - before["VmSize"]) / kb_per_page / n,
        "locked_kb": (after["VmLck"] - before["VmLck"]) / n,
        "maps": (after["maps"] - before["maps"]) / n,
        "rss_kb": (after["VmRSS"] - before["VmRSS"]) / n,
    }


def read_int(path: str) -> int | None:
    """An integer from a /proc file, or None."""
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def scale(kind: str, limit: int, seconds: float, build_dir: str) -> dict[str, Any]:
    """Allocate live 32-byte secrets until something fails."""
    keep: list[Any] = []
    deadline = time.monotonic() + seconds
    error = "none"
    err_no: int | None = None
    lock_error = False
    C = None
    if kind.startswith("memsafe"):
        import memsafe

        if kind == "memsafe_off":
            memsafe.set_lock_policy("off")
    else:
        C = load_c(build_dir)
        C.have_sodium()
    start = snapshot()
    checkpoint: dict[str, int] | None = None
    made = 0
    step = 256
    try:
        while made < limit and time.monotonic() < deadline:
            if C is not None:
                got, e = C.hold(1 if kind == "sodium" else 0, 32, step)
                made += got
                if e < 0:
                    err_no = -e
                    error = (
                        f"sodium_mprotect_noaccess failed: [Errno {-e}] "
                        f"{os.strerror(-e)} (libsodium had returned the "
                        "memory anyway)"
                    )
                    break
                if e:
                    err_no = e
                    error = f"OSError: [Errno {e}] {os.strerror(e)}"
                    break
            else:
                for _ in range(step):
                    keep.append(memsafe.SecretBytes.random(32))
                made = len(keep)
            if checkpoint is None:
                checkpoint = snapshot()
    except MemoryError as e:
        error = f"MemoryError: {e}"
        err_no = errno.ENOMEM
        made = len(keep) if C is None else made
    except OSError as e:
        error = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        err_no = e.errno
        lock_error = type(e).__name__ == "LockError"
        made = len(keep) if C is None else made
    end = snapshot()
    max_map = read_int("/proc/sys/vm/max_map_count")
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    cp = checkpoint or end
    n_cp = min(made, step) or 1
    maps_per = (cp["maps"] - start["maps"]) / n_cp
    lock_per_kb = (cp["VmLck"] - start["VmLck"]) / n_cp
    if error == "none":
        why = f"none (stopped at the cap: {limit} secrets or {seconds:g} s)"
    elif lock_error:
        why = "RLIMIT_MEMLOCK"
    elif max_map is not None and end["maps"] >= max_map - 8:
        why = "vm.max_map_count"
    elif err_no in (errno.ENOMEM, errno.EAGAIN):
        why = "memory"
    else:
        why = "other"
    predicted = None
    if why == "vm.max_map_count" and max_map and maps_per > 0:
        predicted = (max_map - start["maps"]) / maps_per
    elif why == "RLIMIT_MEMLOCK" and soft != resource.RLIM_INFINITY and lock_per_kb:
        predicted = (soft / 1024 - start["VmLck"]) / lock_per_kb
    return {
        "made": made,
        "error": error,
        "errno": err_no,
        "limit": why,
        "predicted": predicted,
        "maps_per_secret": maps_per,
        "locked_kb_per_secret": lock_per_kb,
        "maps_at_end": end["maps"],
        "vm_max_map_count": max_map,
        "vmlck_kb_at_end": end["VmLck"],
        "locked_kb_total": end["VmLck"] - start["VmLck"],
        "rlimit_memlock": [
            None if soft == resource.RLIM_INFINITY else soft,
            None if hard == resource.RLIM_INFINITY else hard,
        ],
        "uid": os.geteuid(),
    }


def engine_scale(storage: str, n: int) -> dict[str, Any]:
    """n live 32-byte secrets of one storage engine under the strict lock
    policy: made, all locked, what they cost per secret."""
    import gc

    import memsafe
    from memsafe import _memsafe

    memsafe.set_lock_policy("strict")
    value = os.urandom(32)
    memsafe.SecretBytes(value, storage=storage).close()  # key, first arenas
    gc.collect()
    gc.disable()  # a million objects: no collections in the middle
    before, stats0 = snapshot(), _memsafe._stats()
    keep: list[Any] = []
    error = "none"
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        for _ in range(n):
            keep.append(memsafe.SecretBytes(value, storage=storage))
    except (OSError, MemoryError) as e:
        error = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    after, stats1 = snapshot(), _memsafe._stats()
    made = len(keep)
    per = max(made, 1)
    sample = keep[:: max(1, made // 1000)]
    intact = all(k.read(lambda v: bytes(v) == value) for k in sample)
    out = {
        "storage": storage,
        "asked": n,
        "made": made,
        "error": error,
        "all_locked": all(k.locked for k in keep),
        "sample_intact": intact,
        "create_cpu_s": cpu,
        "create_wall_s": wall,
        # VmLck is the whole process's locked memory (the engine's key and
        # window arena included) over the count, as the goal is stated.
        "locked_bytes_per_secret": after["VmLck"] * 1024 / per,
        "locked_delta_bytes_per_secret": (after["VmLck"] - before["VmLck"])
        * 1024
        / per,
        # The engine's own mappings (_stats: data pages of every mapping
        # memsafe made, guard pages not counted) over the count.
        "engine_mapped_bytes_per_secret": (
            stats1["mapped_bytes"] - stats0["mapped_bytes"]
        )
        / per,
        # The address space and resident memory the process grew by,
        # memsafe's Python objects and the list holding them included.
        "vmsize_bytes_per_secret": (after["VmSize"] - before["VmSize"]) * 1024 / per,
        "vmrss_bytes_per_secret": (after["VmRSS"] - before["VmRSS"]) * 1024 / per,
        "python_object_bytes": sys.getsizeof(keep[0]) if keep else 0,
        "maps_total": after["maps"],
        "maps_delta": after["maps"] - before["maps"],
        "engine_mappings": stats1["mappings"],
        "vmlck_kb": after["VmLck"],
        "stats": {k: v for k, v in stats1.items() if isinstance(v, int)},
        "rlimit_memlock": [
            None if v == resource.RLIM_INFINITY else v
            for v in resource.getrlimit(resource.RLIMIT_MEMLOCK)
        ],
    }
    t0 = time.perf_counter()
    for k in keep:
        k.close()
    out["close_wall_s"] = time.perf_counter() - t0
    out["slots_after_close"] = _memsafe._stats().get("cipher_slots")
    return out


def concurrency(threads: list[int], reps: int, seconds: float) -> dict[str, Any]:
    """Read windows/s for each thread count, in this interpreter."""
    import suites

    import memsafe

    values = suites.concurrency_values(memsafe, threads, reps, seconds)
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return {
        "label": suites.interpreter_label(),
        "gil_enabled": True if is_enabled is None else bool(is_enabled()),
        "python": sys.version.split()[0],
        "values": {str(k): v for k, v in values.items()},
    }


def concurrency_engines(
    threads: list[int], reps: int, seconds: float
) -> dict[str, Any]:
    """Read windows/s for sealed and guarded secrets, in this interpreter."""
    import suites

    import memsafe

    values, shared = suites.engine_concurrency_values(memsafe, threads, reps, seconds)
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return {
        "label": suites.interpreter_label(),
        "gil_enabled": True if is_enabled is None else bool(is_enabled()),
        "python": sys.version.split()[0],
        "values": {
            kind: {str(k): v for k, v in d.items()} for kind, d in values.items()
        },
        "arenas_shared": shared,
    }


def main(argv: list[str]) -> int:
    """Dispatch on the first argument; print the answer as JSON."""
    mode = argv[0]
    if mode == "memory":
        out = memory(argv[1], int(argv[2]), argv[3])
    elif mode == "scale":
        out = scale(argv[1], int(argv[2]), float(argv[3]), argv[4])
    elif mode == "concurrency":
        threads = [int(x) for x in argv[1].split(",")]
        out = concurrency(threads, int(argv[2]), float(argv[3]))
    elif mode == "concurrency_engines":
        threads = [int(x) for x in argv[1].split(",")]
        out = concurrency_engines(threads, int(argv[2]), float(argv[3]))
    elif mode == "engine_scale":
        out = engine_scale(argv[1], int(argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
