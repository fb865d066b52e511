"""The measurements of the memsafe benchmarks (see docs/benchmarks.md).

Every timed figure is taken in interleaved repetitions: each repetition runs
one batch of every variant of a section, in an order that rotates from one
repetition to the next, and each ratio is computed within one repetition
(measured batch / baseline batch of the same repetition), so slow phases of a
shared machine hit both sides.  Medians, minima and maxima are over the
repetitions.

This module needs memsafe and, for the C baselines, the _benchc extension
that run.py builds; it imports neither at module level so that child.py can
use the thread benchmark under another interpreter.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

SECRET_LEN = 32
BIG_LEN = 64 * 1024 * 1024
HERE = Path(__file__).resolve().parent
CHILD = HERE / "child.py"

# ---- statistics --------------------------------------------------------


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median, minimum and maximum."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


@dataclass
class Row:
    """One line of the results table."""

    key: str
    label: str
    unit: str
    values: list[float]
    baseline: str | None = None  # key of the row the ratio is taken against
    ratios: list[float] | None = None  # per repetition
    ratio_kind: str = "time"  # "time": measured/baseline; "rate": inverse
    # {"op": "<=", "value": 1.8}: on the ratio; with "on": "value", on the
    # median value itself (rows without a baseline)
    target: dict[str, Any] | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "values": self.values,
            **stats(self.values),
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline
            out["ratio_kind"] = self.ratio_kind
        if self.ratios:
            out["ratio"] = {**stats(self.ratios), "values": self.ratios}
        if self.target is not None:
            out["target"] = dict(self.target)
            if self.ratios:
                out["target"]["met"] = target_met(
                    statistics.median(self.ratios), self.target
                )
            elif self.target.get("on") == "value":
                out["target"]["met"] = target_met(
                    statistics.median(self.values), self.target
                )
        if self.note:
            out["note"] = self.note
        return out


def target_met(value: float, target: dict[str, Any]) -> bool:
    """Whether value satisfies {"op": "<=" | ">=", "value": x}."""
    if target["op"] == "<=":
        return bool(value <= target["value"])
    return bool(value >= target["value"])


@dataclass
class Section:
    """A numbered part of the benchmark."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, key: str) -> Row:
        """The row with this key."""
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "title": self.title,
            "rows": [r.as_dict() for r in self.rows],
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
        }


# ---- interleaved timing ------------------------------------------------

# Single-threaded figures are CPU time of the measuring thread (user +
# system), in Python and in C alike (CLOCK_THREAD_CPUTIME_ID): on a shared
# machine, wall time also counts the slices other processes run in, which
# hit short batches unevenly.  The thread benchmark uses wall time.
cpu_ns = time.thread_time_ns

Batch = Callable[[int], float]  # run n iterations, return ns per iteration


def calibrate(batch: Batch, seconds: float, start: int = 200) -> int:
    """Iterations that make one batch last about `seconds`."""
    n = start
    while True:
        t0 = time.perf_counter()
        batch(n)
        dt = time.perf_counter() - t0
        if dt >= 0.02 or n >= 10_000_000:
            break
        n *= 4
    return max(start, int(n * seconds / max(dt, 1e-9)))


def interleave(
    batches: dict[str, tuple[Batch, int]], reps: int
) -> dict[str, list[float]]:
    """Run every batch once per repetition, in a rotating order."""
    names = list(batches)
    out: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            fn, n = batches[name]
            out[name].append(fn(n))
    return out


def per_rep_ratios(
    values: list[float], base: list[float], kind: str = "time"
) -> list[float]:
    """measured/baseline per repetition (kind 'rate': baseline/measured)."""
    if kind == "rate":
        return [b / v for v, b in zip(values, base, strict=True)]
    return [v / b for v, b in zip(values, base, strict=True)]


# ---- 1. window latency -------------------------------------------------


def bench_window(
    C: ModuleType, memsafe: ModuleType, reps: int, batch_s: float
) -> Section:
    """Open+close a read window on a 32-byte secret and hash it."""
    sha = hashlib.sha256
    C.ref_setup(SECRET_LEN)
    key = memsafe.SecretBytes.random(SECRET_LEN)
    plain = os.urandom(SECRET_LEN)

    def hash_view(view: Any) -> bytes:
        return sha(view).digest()

    def floor(n: int) -> float:
        return float(C.floor_window(SECRET_LEN, n, False))

    def ref_closure(n: int) -> float:
        ref = C.ref_window
        t0 = cpu_ns()
        for _ in range(n):
            ref(hash_view)
        return (cpu_ns() - t0) / n

    def ref_with(n: int) -> float:
        ctx = C.ref_ctx
        t0 = cpu_ns()
        for _ in range(n):
            with ctx() as view:
                sha(view).digest()
        return (cpu_ns() - t0) / n

    def ms_closure(n: int) -> float:
        read = key.read
        t0 = cpu_ns()
        for _ in range(n):
            read(hash_view)
        return (cpu_ns() - t0) / n

    def ms_with(n: int) -> float:
        k = key
        t0 = cpu_ns()
        for _ in range(n):
            with k.read() as view:
                sha(view).digest()
        return (cpu_ns() - t0) / n

    def plain_hash(n: int) -> float:
        b = plain
        t0 = cpu_ns()
        for _ in range(n):
            sha(b).digest()
        return (cpu_ns() - t0) / n

    fns: dict[str, Batch] = {
        "floor": floor,
        "ref_closure": ref_closure,
        "ref_with": ref_with,
        "memsafe_with": ms_with,
        "memsafe_closure": ms_closure,
        "plain_hash": plain_hash,
    }
    batches = {name: (fn, calibrate(fn, batch_s)) for name, fn in fns.items()}
    res = interleave(batches, reps)
    key.close()

    base = res["floor"]
    target = {"op": "<=", "value": 1.8}
    labels = {
        "floor": "C floor: mprotect(R)+mprotect(NONE), tight loop",
        "ref_closure": "ref: C mprotect, Python fn(view)->sha256, mprotect",
        "ref_with": "ref: with <C ctx: mprotect in/out> as v: sha256(v)",
        "memsafe_with": "memsafe: with key.read() as v: sha256(v)",
        "memsafe_closure": "memsafe: key.read(fn), fn = sha256(v)",
        "plain_hash": "plain: sha256(bytes) (no protection)",
    }
    sec = Section("window", "1. Window latency (32-byte secret + SHA-256)")
    for name in fns:
        sec.rows.append(
            Row(
                name,
                labels[name],
                "ns",
                res[name],
                baseline=None if name == "floor" else "floor",
                ratios=None if name == "floor" else per_rep_ratios(res[name], base),
                target=target if name.startswith("memsafe") else None,
            )
        )
    own_with = [
        a - b for a, b in zip(res["memsafe_with"], res["ref_with"], strict=True)
    ]
    own_clo = [
        a - b for a, b in zip(res["memsafe_closure"], res["ref_closure"], strict=True)
    ]
    sec.extra["library_share_ns"] = {
        "with": stats(own_with),
        "closure": stats(own_clo),
    }
    sec.extra["iterations_per_batch"] = {k: v[1] for k, v in batches.items()}
    sec.notes.append(
        "memsafe's own share of a window = memsafe row - ref row of the same "
        f"form: with {statistics.median(own_with):.0f} ns, closure "
        f"{statistics.median(own_clo):.0f} ns per window "
        f"({statistics.median(own_with) / statistics.median(base):.2f}x / "
        f"{statistics.median(own_clo) / statistics.median(base):.2f}x of "
        "the floor)."
    )
    return sec


# ---- 2. allocation -----------------------------------------------------


def bench_alloc(
    C: ModuleType, memsafe: ModuleType, reps: int, batch_s: float
) -> Section:
    """Create+close a 32-byte SecretBytes.random."""

    def floor(n: int) -> float:
        r = float(C.floor_alloc(SECRET_LEN, n))
        if r < 0:
            raise OSError("C allocation floor failed (mlock limit?)")
        return r

    def sodium(n: int) -> float:
        return float(C.sodium_alloc(SECRET_LEN, n))

    def ms(n: int) -> float:
        rnd = memsafe.SecretBytes.random
        t0 = cpu_ns()
        for _ in range(n):
            rnd(SECRET_LEN).close()
        return (cpu_ns() - t0) / n

    def plain(n: int) -> float:
        t0 = cpu_ns()
        for _ in range(n):
            bytes(SECRET_LEN)
        return (cpu_ns() - t0) / n

    fns: dict[str, Batch] = {"floor": floor, "memsafe": ms}
    have_sodium = bool(C.have_sodium())
    if have_sodium:
        fns["sodium"] = sodium
    fns["bytes"] = plain
    batches = {name: (fn, calibrate(fn, batch_s, 50)) for name, fn in fns.items()}
    res = interleave(batches, reps)
    base = res["floor"]
    labels = {
        "floor": "C floor: memsafe's 12 syscalls (+4 KiB wipe)",
        "memsafe": "memsafe: SecretBytes.random(32).close()",
        "sodium": "libsodium C loop: sodium_malloc..sodium_free",
        "bytes": "plain: bytes(32)",
    }
    sec = Section("alloc", "2. Allocation (create + close, 32 bytes)")
    for name in fns:
        sec.rows.append(
            Row(
                name,
                labels[name],
                "ns",
                res[name],
                baseline=None if name == "floor" else "floor",
                ratios=None if name == "floor" else per_rep_ratios(res[name], base),
                target={"op": "<=", "value": 1.3} if name == "memsafe" else None,
            )
        )
    if have_sodium:
        vs = per_rep_ratios(res["memsafe"], res["sodium"])
        sec.rows.append(
            Row(
                "memsafe_vs_sodium",
                "memsafe / libsodium (same repetitions)",
                "ns",
                res["memsafe"],
                baseline="sodium",
                ratios=vs,
                target={"op": "<=", "value": 1.0},
            )
        )
    else:
        sec.notes.append(
            "libsodium row skipped: libsodium-dev is not installed (Debian: "
            "apt-get install -y libsodium-dev)"
        )
    sec.extra["iterations_per_batch"] = {k: v[1] for k, v in batches.items()}
    return sec


# ---- 3. throughput -----------------------------------------------------


def bench_throughput(
    C: ModuleType, memsafe: ModuleType, reps: int, size: int
) -> Section:
    """SHA-256 of a big secret through a view vs plain bytes + mprotects."""
    sha = hashlib.sha256
    sec = Section("throughput", f"3. Throughput (SHA-256 over {size >> 20} MiB)")
    big: Any = None
    locked = True
    try:
        big = memsafe.SecretBytes.random(size)
        C.big_setup(size, True)
    except OSError as e:  # LockError, or the C floor's mlock
        # Without CAP_IPC_LOCK the default limit is too small for 64 MiB:
        # measure both sides unlocked.
        if big is not None:
            big.close()
        previous = memsafe.get_lock_policy()
        memsafe.set_lock_policy("off")
        big = memsafe.SecretBytes.random(size)
        memsafe.set_lock_policy(previous)
        C.big_setup(size, False)
        locked = False
        sec.notes.append(
            f"measured unlocked on both sides: locking {size >> 20} MiB "
            f"failed ({type(e).__name__}, errno {e.errno}: RLIMIT_MEMLOCK "
            "too small and no CAP_IPC_LOCK)"
        )
    plain = os.urandom(size)

    def ms(n: int) -> float:
        t0 = cpu_ns()
        for _ in range(n):
            with big.read() as view:
                sha(view).digest()
        return (cpu_ns() - t0) / n

    def plain_hash(n: int) -> float:
        t0 = cpu_ns()
        for _ in range(n):
            sha(plain).digest()
        return (cpu_ns() - t0) / n

    def mprotects(n: int) -> float:
        return float(C.big_mprotect_pair(n))

    def hash_view(view: Any) -> bytes:
        return sha(view).digest()

    def ref(n: int) -> float:
        t0 = cpu_ns()
        for _ in range(n):
            C.big_window(hash_view)
        return (cpu_ns() - t0) / n

    batches: dict[str, tuple[Batch, int]] = {
        "memsafe": (ms, 1),
        "plain": (plain_hash, 1),
        "mprotect": (mprotects, 20),
        "ref": (ref, 1),
    }
    ms(1)  # fault in / warm up
    plain_hash(1)
    ref(1)
    res = interleave(batches, reps)
    big.close()
    C.big_teardown()
    floor = [p + m for p, m in zip(res["plain"], res["mprotect"], strict=True)]
    mib = size / (1 << 20)

    def rate(ns: list[float]) -> list[float]:
        return [mib / (t / 1e9) for t in ns]

    sec.rows += [
        Row(
            "floor",
            f"floor: sha256(bytes) + C mprotect pair ({size >> 20} MiB)",
            "MiB/s",
            rate(floor),
        ),
        Row(
            "memsafe",
            "memsafe: with big.read() as v: sha256(v)",
            "MiB/s",
            rate(res["memsafe"]),
            baseline="floor",
            ratios=per_rep_ratios(res["memsafe"], floor, "rate"),
            ratio_kind="rate",
            target={"op": ">=", "value": 0.97},
        ),
        Row(
            "ref",
            "ref: C mprotect, sha256(C region view), mprotect",
            "MiB/s",
            rate(res["ref"]),
            baseline="floor",
            ratios=per_rep_ratios(res["ref"], floor, "rate"),
            ratio_kind="rate",
        ),
        Row("plain", "plain: sha256(bytes) alone", "MiB/s", rate(res["plain"])),
        Row(
            "mprotect_pair",
            f"C: mprotect(R)+mprotect(NONE) of {size >> 20} MiB"
            + (", locked" if locked else ", unlocked"),
            "us",
            [t / 1000 for t in res["mprotect"]],
        ),
    ]
    sec.notes.append(
        "ratio = throughput of memsafe / throughput of the floor (higher is "
        "better; 1.0 = zero-copy with no overhead beyond the two mprotects)"
    )
    return sec


# ---- 4./5. memory and scale (child processes) --------------------------


def run_child(
    python: str,
    args: list[str],
    *,
    drop_lock: int | None = None,
    timeout: float = 240,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run child.py with args; return its JSON answer."""
    preexec = drop_ipc_lock(drop_lock) if drop_lock is not None else None
    child_env = dict(os.environ)
    child_env.pop("MEMSAFE_LOCK_POLICY", None)
    if env:
        child_env.update(env)
    proc = subprocess.run(
        [python, str(CHILD), *args],
        capture_output=True,
        timeout=timeout,
        preexec_fn=preexec,
        env=child_env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"child {args} failed ({proc.returncode}): "
            f"{proc.stderr.decode(errors='replace')[-2000:]}"
        )
    answer: dict[str, Any] = json.loads(proc.stdout.decode().splitlines()[-1])
    return answer


CAP_IPC_LOCK = 14
PR_CAPBSET_DROP = 24


def drop_ipc_lock(limit: int) -> Callable[[], None]:
    """preexec_fn: drop CAP_IPC_LOCK, set RLIMIT_MEMLOCK (soft=hard)=limit.

    The same method as tests/helpers.py drop_ipc_lock.
    """

    def drop() -> None:
        import ctypes
        import resource

        hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
        value = limit
        if hard != resource.RLIM_INFINITY and hard < limit:
            value = hard  # not root: cannot raise the hard limit

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0)

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            ]

        header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (Data * 2)()
        if libc.capget(ctypes.byref(header), data) == 0:
            mask = ~(1 << CAP_IPC_LOCK) & 0xFFFFFFFF
            data[0].effective &= mask
            data[0].permitted &= mask
            data[0].inheritable &= mask
            libc.capset(ctypes.byref(header), data)
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (value, value))

    return drop


MEM_KINDS = {
    "memsafe": "memsafe",
    "sodium": "libsodium",
    "bytes": "bytes(32)",
}

SCALE_KINDS = {
    "memsafe": "memsafe",
    "memsafe_off": "memsafe, policy off",
    "sodium": "libsodium",
}


PAGE = os.sysconf("SC_PAGESIZE")


def can_lock(nbytes: int) -> bool:
    """Whether this process may lock nbytes (root, or a big enough hard
    RLIMIT_MEMLOCK: memsafe raises the soft limit to the hard one)."""
    import resource

    if os.geteuid() == 0:
        return True
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    return hard == resource.RLIM_INFINITY or hard >= nbytes


def bench_memory(
    python: str,
    build_dir: Path,
    have_sodium: bool,
    counts: Sequence[int],
    reps: int,
) -> Section:
    """Pages, locked kB, mappings and RSS per live 32-byte secret."""
    sec = Section("memory", "4. Memory per live 32-byte secret")
    kinds = ["memsafe", "sodium", "bytes"] if have_sodium else ["memsafe", "bytes"]
    metrics = [
        ("pages", "mapped pages", "pages"),
        ("locked_kb", "locked (VmLck)", "kB"),
        ("maps", "maps lines", "maps"),
        ("rss_kb", "resident (VmRSS)", "kB"),
    ]
    raw: dict[str, dict[int, list[dict[str, float]]]] = {
        k: {n: [] for n in counts} for k in kinds
    }
    unlocked = [n for n in counts if not can_lock(n * PAGE + (1 << 20))]
    for _ in range(reps):
        for n in counts:
            for kind in kinds:
                # Without room to lock n pages, measure memsafe unlocked
                # (lock policy 'off') rather than fail.
                off = kind == "memsafe" and n in unlocked
                child_kind = "memsafe_off" if off else kind
                raw[kind][n].append(
                    run_child(python, ["memory", child_kind, str(n), str(build_dir)])
                )
    for n in unlocked:
        sec.notes.append(
            f"{n} secrets: measured with the lock policy 'off' (RLIMIT_MEMLOCK "
            f"below {n * PAGE >> 20} MiB and no CAP_IPC_LOCK), so nothing is "
            "locked; libsodium ignores failed mlock calls and goes on unlocked"
        )
    for n in counts:
        for metric, mlabel, unit in metrics:
            base_vals = [r[metric] for r in raw["sodium"][n]] if have_sodium else None
            for kind in kinds:
                if kind == "bytes" and metric != "rss_kb":
                    continue  # 0 by construction
                vals = [r[metric] for r in raw[kind][n]]
                row = Row(
                    f"{kind}_{metric}_{n}",
                    f"{n:>5} live, {mlabel}: {MEM_KINDS[kind]}",
                    unit,
                    vals,
                )
                if kind == "memsafe" and base_vals and min(base_vals) > 0:
                    row.baseline = f"sodium_{metric}_{n}"
                    row.ratios = per_rep_ratios(vals, base_vals)
                sec.rows.append(row)
    sec.notes.append(
        "per-secret figures are deltas of /proc/self/status and "
        "/proc/self/maps around the allocation of N secrets, divided by N; "
        "ratio = memsafe / libsodium"
    )
    return sec


def bench_scale(
    python: str,
    build_dir: Path,
    have_sodium: bool,
    limit: int,
    max_seconds: float,
) -> Section:
    """How many live 32-byte secrets fit, and which limit stops it."""
    sec = Section("scale", "5. Scale: live 32-byte secrets until failure")
    is_root = os.geteuid() == 0
    cases: list[tuple[str, int | None]] = [
        ("root, CAP_IPC_LOCK" if is_root else "this user", None),
        ("no CAP_IPC_LOCK, memlock 8 MiB", 8 * 1024 * 1024),
    ]
    results: list[dict[str, Any]] = []
    for case, drop in cases:
        kinds = ["memsafe"]
        if drop is not None:
            kinds.append("memsafe_off")
        if have_sodium:
            kinds.append("sodium")
        for kind in kinds:
            ans = run_child(
                python,
                ["scale", kind, str(limit), str(max_seconds), str(build_dir)],
                drop_lock=drop,
                timeout=max_seconds + 120,
            )
            ans["case"] = case
            ans["kind"] = kind
            results.append(ans)
            locked_mib = ans["locked_kb_total"] / 1024
            row = Row(
                f"{kind}_{'dropped' if drop else 'root'}",
                f"{case}: {SCALE_KINDS[kind]}",
                "secrets",
                [float(ans["made"])],
                note=f"limit: {ans['limit']}; {locked_mib:.1f} MiB locked; "
                f"error: {ans['error'][:150]}",
            )
            if ans.get("predicted"):
                row.baseline = "predicted"
                row.ratios = [ans["made"] / ans["predicted"]]
            sec.rows.append(row)
    sec.extra["runs"] = results
    sec.notes.append(
        "ratio = secrets reached / secrets predicted from the limit that "
        "stopped it (vm.max_map_count / mappings per secret, or "
        "RLIMIT_MEMLOCK / locked bytes per secret)"
    )
    return sec


# ---- 6. concurrency ----------------------------------------------------


def windows_per_second(secret: Any, nthreads: int, duration: float) -> float:
    """Read windows per second from nthreads threads on one secret, or, if
    secret is a list, thread i on secret[i % len(secret)]."""
    sha = hashlib.sha256
    stop = threading.Event()
    counts = [0] * nthreads
    errors: list[BaseException] = []
    barrier = threading.Barrier(nthreads + 1)

    def worker(i: int) -> None:
        n = 0
        own = secret[i % len(secret)] if isinstance(secret, list) else secret
        read = own.read
        try:
            barrier.wait()
            while not stop.is_set():
                for _ in range(32):
                    with read() as view:
                        sha(view).digest()
                n += 32
        except BaseException as e:  # reported below
            errors.append(e)
        counts[i] = n

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(counts) / dt


def concurrency_values(
    memsafe: ModuleType, threads: Sequence[int], reps: int, duration: float
) -> dict[int, list[float]]:
    """Interleaved repetitions of windows_per_second for each thread count."""
    secret = memsafe.SecretBytes.random(SECRET_LEN)
    out: dict[int, list[float]] = {n: [] for n in threads}
    order = list(threads)
    gc.collect()
    for rep in range(reps):
        k = rep % len(order)
        for n in order[k:] + order[:k]:
            out[n].append(windows_per_second(secret, n, duration))
    secret.close()
    return out


def concurrency_section(
    label: str, key: str, values: dict[int, list[float]]
) -> list[Row]:
    """Rows for one interpreter: windows/s, ratio to one thread."""
    rows = []
    base = values[min(values)]
    for n, vals in values.items():
        rows.append(
            Row(
                f"{key}_{n}",
                f"{label}: {n} thread{'s' if n > 1 else ''}",
                "windows/s",
                vals,
                baseline=None if n == min(values) else f"{key}_{min(values)}",
                # values are rates already: ratio = rate / rate of 1 thread
                ratios=None if n == min(values) else per_rep_ratios(vals, base),
                ratio_kind="rate",
            )
        )
    return rows


def ft_cache_python() -> Path:
    """Where scripts/build-ft-python leaves its free-threaded interpreter."""
    cache = os.environ.get("MEMSAFE_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memsafe"
    )
    return Path(cache) / "python-ft-3.13" / "bin" / "python3.13t"


def find_free_threaded() -> str | None:
    """A free-threaded Python: MEMSAFE_FT_PYTHON, python3.13t on PATH, or
    the one scripts/build-ft-python built."""
    import shutil

    env = os.environ.get("MEMSAFE_FT_PYTHON")
    if env:
        return env
    found = shutil.which("python3.13t")
    if found:
        return found
    cached = ft_cache_python()
    return str(cached) if os.access(cached, os.X_OK) else None


def interpreter_label() -> str:
    """e.g. 'CPython 3.11.7 (GIL)'."""
    gil = "GIL"
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_enabled is not None and not is_enabled():
        gil = "free-threaded"
    v = sys.version_info
    return f"CPython {v.major}.{v.minor}.{v.micro} ({gil})"


# ---- 7.-10. the sealed engine ------------------------------------------
#
# Side by side with the guarded engine and the C floors, in the same
# interleaved repetitions: every ratio of a sealed figure is taken against
# the guarded (or floor) batch of the same repetition.

SEALED_TARGETS = {
    "window_vs_guarded": 0.5,  # sealed window <= 0.5x the guarded one
    "window_vs_floor": 1.0,  # ... and at or below the C mprotect pair
    "create_vs_guarded": 0.1,  # sealed create+close <= 0.1x guarded
    "locked_bytes": 96,  # VmLck / live secrets
    "maps_1m": 2000,  # /proc/self/maps lines with 1,000,000 live
}


def bench_sealed(
    C: ModuleType, memsafe: ModuleType, reps: int, batch_s: float
) -> Section:
    """Read window + SHA-256, and create + close, of a 32-byte secret in
    each engine, next to the C floors of section 1 and 2."""
    sha = hashlib.sha256
    make = memsafe.SecretBytes
    keys = {
        e: memsafe.SecretBytes.random(SECRET_LEN, storage=e)
        for e in ("guarded", "sealed")
    }
    value = os.urandom(SECRET_LEN)
    plain = os.urandom(SECRET_LEN)
    # The sealed engine's key and first arenas exist from here on.
    make(value, storage="sealed").close()

    def hash_view(view: Any) -> bytes:
        return sha(view).digest()

    def floor_window(n: int) -> float:
        return float(C.floor_window(SECRET_LEN, n, False))

    def floor_alloc(n: int) -> float:
        r = float(C.floor_alloc(SECRET_LEN, n))
        if r < 0:
            raise OSError("C allocation floor failed (mlock limit?)")
        return r

    def with_form(engine: str) -> Batch:
        def run(n: int) -> float:
            k = keys[engine]
            t0 = cpu_ns()
            for _ in range(n):
                with k.read() as view:
                    sha(view).digest()
            return (cpu_ns() - t0) / n

        return run

    def closure_form(engine: str) -> Batch:
        def run(n: int) -> float:
            read = keys[engine].read
            t0 = cpu_ns()
            for _ in range(n):
                read(hash_view)
            return (cpu_ns() - t0) / n

        return run

    def from_bytes(engine: str) -> Batch:
        def run(n: int) -> float:
            v = value
            t0 = cpu_ns()
            for _ in range(n):
                make(v, storage=engine).close()
            return (cpu_ns() - t0) / n

        return run

    def from_random(engine: str) -> Batch:
        def run(n: int) -> float:
            rnd = make.random
            t0 = cpu_ns()
            for _ in range(n):
                rnd(SECRET_LEN, storage=engine).close()
            return (cpu_ns() - t0) / n

        return run

    def plain_hash(n: int) -> float:
        b = plain
        t0 = cpu_ns()
        for _ in range(n):
            sha(b).digest()
        return (cpu_ns() - t0) / n

    fns: dict[str, Batch] = {
        "floor_window": floor_window,
        "guarded_with": with_form("guarded"),
        "guarded_closure": closure_form("guarded"),
        "sealed_with": with_form("sealed"),
        "sealed_closure": closure_form("sealed"),
        "plain_hash": plain_hash,
        "floor_alloc": floor_alloc,
        "guarded_bytes": from_bytes("guarded"),
        "guarded_random": from_random("guarded"),
        "sealed_bytes": from_bytes("sealed"),
        "sealed_random": from_random("sealed"),
    }
    batches = {name: (fn, calibrate(fn, batch_s, 50)) for name, fn in fns.items()}
    res = interleave(batches, reps)
    for k in keys.values():
        k.close()

    sec = Section(
        "sealed",
        "7. Sealed engine: window and create + close (32 bytes), vs guarded "
        "and the C floors",
    )

    def row(
        key: str,
        label: str,
        base: str | None,
        target: float | None = None,
        values: str | None = None,
    ) -> None:
        vals = res[values or key]
        sec.rows.append(
            Row(
                key,
                label,
                "ns",
                vals,
                baseline=base,
                ratios=per_rep_ratios(vals, res[base]) if base else None,
                target={"op": "<=", "value": target} if target else None,
            )
        )

    row("floor_window", "C floor: mprotect(R)+mprotect(NONE), tight loop", None)
    row("guarded_with", "guarded: with key.read() as v: sha256(v)", "floor_window")
    row("guarded_closure", "guarded: key.read(fn), fn = sha256(v)", "floor_window")
    row(
        "sealed_with",
        "sealed: with key.read() as v: sha256(v)",
        "floor_window",
        SEALED_TARGETS["window_vs_floor"],
    )
    row(
        "sealed_closure",
        "sealed: key.read(fn), fn = sha256(v)",
        "floor_window",
        SEALED_TARGETS["window_vs_floor"],
    )
    row(
        "sealed_with_vs_guarded",
        "sealed / guarded, with-form (same repetitions)",
        "guarded_with",
        SEALED_TARGETS["window_vs_guarded"],
        values="sealed_with",
    )
    row(
        "sealed_closure_vs_guarded",
        "sealed / guarded, closure form (same repetitions)",
        "guarded_closure",
        SEALED_TARGETS["window_vs_guarded"],
        values="sealed_closure",
    )
    row("plain_hash", "plain: sha256(bytes) (no protection)", "floor_window")
    for form in ("with", "closure"):
        # The window's own cost: the sealed row minus hashing a plain bytes,
        # per repetition, as a multiple of the floor.
        res[f"sealed_{form}_share"] = [
            a - b for a, b in zip(res[f"sealed_{form}"], res["plain_hash"], strict=True)
        ]
        row(
            f"sealed_{form}_share",
            f"sealed {form}-form's own share (row - plain sha256)",
            "floor_window",
        )
    row("floor_alloc", "C floor: section 2's 12 syscalls (+4 KiB wipe)", None)
    row("guarded_bytes", "guarded: SecretBytes(b).close()", "floor_alloc")
    row("guarded_random", "guarded: SecretBytes.random(32).close()", "floor_alloc")
    row(
        "sealed_bytes",
        'sealed: SecretBytes(b, storage="sealed").close()',
        "guarded_bytes",
        SEALED_TARGETS["create_vs_guarded"],
    )
    row(
        "sealed_random",
        'sealed: SecretBytes.random(32, storage="sealed").close()',
        "guarded_random",
        SEALED_TARGETS["create_vs_guarded"],
    )
    sec.extra["iterations_per_batch"] = {k: v[1] for k, v in batches.items()}
    sec.notes.append(
        "a sealed window makes no system call; its own share (decryption, "
        "key rebuild, plaintext slot, Window object, view, scrub) is the "
        "sealed row minus hashing a plain bytes.  The sealed create rows are "
        "ratios to the guarded row of the same constructor; random() makes "
        "one getrandom call for the secret's bytes, SecretBytes(b) none"
    )
    return sec


def bench_sealed_throughput(memsafe: ModuleType, reps: int, size: int) -> Section:
    """SHA-256 over a big secret of each engine through a read window."""
    sha = hashlib.sha256
    sec = Section(
        "sealed_throughput",
        f"8. Sealed engine: throughput (SHA-256 over {size >> 20} MiB)",
    )
    big: dict[str, Any] = {}
    try:
        for e in ("guarded", "sealed"):
            big[e] = memsafe.SecretBytes.random(size, storage=e)
    except OSError as e:  # LockError: see bench_throughput
        for k in big.values():
            k.close()
        previous = memsafe.get_lock_policy()
        memsafe.set_lock_policy("off")
        big = {
            e: memsafe.SecretBytes.random(size, storage=e)
            for e in ("guarded", "sealed")
        }
        memsafe.set_lock_policy(previous)
        sec.notes.append(
            f"measured unlocked: locking {size >> 20} MiB failed "
            f"({type(e).__name__}, errno {e.errno})"
        )
    plain = os.urandom(size)

    def hashed(engine: str) -> Batch:
        def run(n: int) -> float:
            k = big[engine]
            t0 = cpu_ns()
            for _ in range(n):
                with k.read() as view:
                    sha(view).digest()
            return (cpu_ns() - t0) / n

        return run

    def open_only(n: int) -> float:
        k = big["sealed"]
        t0 = cpu_ns()
        for _ in range(n):
            with k.read():
                pass
        return (cpu_ns() - t0) / n

    def plain_hash(n: int) -> float:
        t0 = cpu_ns()
        for _ in range(n):
            sha(plain).digest()
        return (cpu_ns() - t0) / n

    batches: dict[str, tuple[Batch, int]] = {
        "plain": (plain_hash, 1),
        "guarded": (hashed("guarded"), 1),
        "sealed": (hashed("sealed"), 1),
        "sealed_open": (open_only, 1),
    }
    for fn, n in batches.values():
        fn(n)  # fault in / warm up
    res = interleave(batches, reps)
    for k in big.values():
        k.close()
    mib = size / (1 << 20)

    def rate(ns: list[float]) -> list[float]:
        return [mib / (t / 1e9) for t in ns]

    def rrow(key: str, label: str, base: str | None, values: str | None = None) -> Row:
        vals = res[values or key]
        return Row(
            key,
            label,
            "MiB/s",
            rate(vals),
            baseline=base,
            ratios=per_rep_ratios(vals, res[base], "rate") if base else None,
            ratio_kind="rate",
        )

    sec.rows += [
        rrow("plain", "plain: sha256(bytes)", None),
        rrow("guarded", "guarded: with big.read() as v: sha256(v)", "plain"),
        rrow("sealed", "sealed: with big.read() as v: sha256(v)", "guarded"),
        rrow(
            "sealed_vs_plain",
            "sealed / plain bytes (same repetitions)",
            "plain",
            values="sealed",
        ),
        rrow("sealed_open", "sealed: with big.read(): pass (open + close)", None),
    ]
    sec.notes.append(
        "ratio = throughput / baseline throughput (higher is better).  A "
        "sealed window on a secret this big decrypts all of it into a "
        "plaintext mapping of its own (larger than the biggest slot class: "
        "mmap, mlock, madvise on open, wipe and munmap on close); the "
        "'open + close' row is that part alone"
    )
    return sec


SCALE_METRICS = {  # metric -> the child's per-secret figure it compares
    "locked": "locked_bytes_per_secret",
    "mapped": "engine_mapped_bytes_per_secret",
    "vmsize": "vmsize_bytes_per_secret",
}


def scale_rows(
    key: str, label: str, ans: dict[str, Any], guarded: dict[str, Any] | None
) -> list[Row]:
    """The rows of one scale case; ratios against the guarded case."""
    sealed = ans["storage"] == "sealed"
    rows: list[Row] = []

    def add(metric: str, mlabel: str, unit: str, value: float, **kw: Any) -> None:
        r = Row(f"{key}_{metric}", f"{label}: {mlabel}", unit, [float(value)], **kw)
        if guarded is not None and metric in SCALE_METRICS:
            gval = guarded[SCALE_METRICS[metric]]
            if gval > 0:
                r.baseline = f"guarded_{metric}"
                r.ratios = [value / gval]
        rows.append(r)

    add(
        "made",
        "made",
        "secrets",
        ans["made"],
        note=f"all locked: {ans['all_locked']}; sample read back intact: "
        f"{ans['sample_intact']}; error: {ans['error'][:150]}",
    )
    add(
        "locked",
        "locked, VmLck / N",
        "B",
        ans["locked_bytes_per_secret"],
        target={"op": "<=", "value": SEALED_TARGETS["locked_bytes"], "on": "value"}
        if sealed
        else None,
    )
    add(
        "mapped",
        "memsafe's mappings (data pages) / N",
        "B",
        ans["engine_mapped_bytes_per_secret"],
    )
    add(
        "vmsize",
        "VmSize growth / N (Python objects incl.)",
        "B",
        ans["vmsize_bytes_per_secret"],
    )
    add(
        "maps",
        "/proc/self/maps lines, whole process",
        "maps",
        ans["maps_total"],
        target={"op": "<=", "value": SEALED_TARGETS["maps_1m"], "on": "value"}
        if sealed and ans["asked"] >= 1_000_000
        else None,
        note=f"{ans['maps_delta']:,} added by the secrets; memsafe's own "
        f"mappings: {ans['engine_mappings']:,}",
    )
    add(
        "create",
        "create, CPU time per secret",
        "ns",
        ans["create_cpu_s"] / max(ans["made"], 1) * 1e9,
    )
    return rows


def bench_engine_scale(python: str, quick: bool) -> Section:
    """Many live 32-byte secrets per engine: locked and mapped bytes per
    secret and /proc/self/maps lines, each case in a fresh child."""
    sec = Section(
        "sealed_scale",
        "9. Sealed engine: scale (live 32-byte secrets, strict lock policy)",
    )
    is_root = os.geteuid() == 0
    big = 100_000 if quick else 1_000_000
    cases: list[tuple[str, str, str, int, int | None]] = []
    if can_lock(10_000 * PAGE + (1 << 20)):
        cases.append(("guarded", "guarded 10,000, root", "guarded", 10_000, None))
    else:
        sec.notes.append("guarded case skipped: cannot lock 10,000 pages here")
    if is_root:
        cases.append(("sealed_root", f"sealed {big:,}, root", "sealed", big, None))
    else:
        sec.notes.append(f"sealed {big:,} case skipped: needs root (CAP_IPC_LOCK)")
    cases.append(
        ("sealed_8m", "sealed 100,000, memlock 8 MiB", "sealed", 100_000, 8 << 20)
    )
    runs: dict[str, dict[str, Any]] = {}
    for key, label, storage, n, drop in cases:
        if drop is not None and not is_root and not can_lock(drop):
            sec.notes.append(f"{label}: skipped (hard RLIMIT_MEMLOCK below 8 MiB)")
            continue
        ans = run_child(
            python, ["engine_scale", storage, str(n)], drop_lock=drop, timeout=600
        )
        ans["case"] = label
        runs[key] = ans
        sec.rows += scale_rows(
            key, label, ans, runs.get("guarded") if key != "guarded" else None
        )
    sec.extra["runs"] = runs
    sec.notes.append(
        "locked = the process's VmLck (the sealed engine's key and window "
        "arena included) / N; memsafe's mappings = the data pages of every "
        "mapping memsafe made (memsafe._memsafe._stats()['mapped_bytes'], "
        "guard pages not counted) / N; VmSize growth also counts each "
        "secret's Python object and its list slot (the garbage collector "
        "is off while they are made).  Guarded: 3 pages of address space "
        "(1 data + 2 guard), 1 locked page and 2 maps lines per secret.  "
        "ratio = sealed / guarded"
    )
    return sec


ENGINE_KINDS = {
    "sealed_own": "sealed, one secret per thread (shared arenas)",
    "sealed_one": "sealed, one secret for all threads",
    "guarded_own": "guarded, one secret per thread",
}


def engine_concurrency_values(
    memsafe: ModuleType, threads: Sequence[int], reps: int, duration: float
) -> tuple[dict[str, dict[int, list[float]]], bool]:
    """Windows/s for each kind of ENGINE_KINDS and thread count, in
    interleaved repetitions; also whether the sealed secrets of the
    per-thread kind share their cipher arena."""
    most = max(threads)
    own = {
        e: [memsafe.SecretBytes.random(SECRET_LEN, storage=e) for _ in range(most)]
        for e in ("sealed", "guarded")
    }
    one = memsafe.SecretBytes.random(SECRET_LEN, storage="sealed")
    shared = len({k._region_info()["arena"] for k in own["sealed"]}) == 1
    target: dict[str, Any] = {
        "sealed_own": own["sealed"],
        "sealed_one": one,
        "guarded_own": own["guarded"],
    }
    out: dict[str, dict[int, list[float]]] = {
        kind: {n: [] for n in threads} for kind in ENGINE_KINDS
    }
    order = [(kind, n) for kind in ENGINE_KINDS for n in threads]
    gc.collect()
    for rep in range(reps):
        k = rep % len(order)
        for kind, n in order[k:] + order[:k]:
            out[kind][n].append(windows_per_second(target[kind], n, duration))
    for keys in own.values():
        for key in keys:
            key.close()
    one.close()
    return out, shared


def engine_concurrency_rows(
    label: str, prefix: str, values: dict[str, dict[int, list[float]]]
) -> list[Row]:
    """Rows for one interpreter: windows/s per kind and thread count (ratio
    to one thread of the same kind), then sealed / guarded per count."""
    rows = []
    for kind, kind_label in ENGINE_KINDS.items():
        per = values[kind]
        first = min(per)
        for n, vals in per.items():
            rows.append(
                Row(
                    f"{prefix}_{kind}_{n}",
                    f"{label}, {kind_label}: {n} thread{'s' if n > 1 else ''}",
                    "windows/s",
                    vals,
                    baseline=None if n == first else f"{prefix}_{kind}_{first}",
                    ratios=None if n == first else per_rep_ratios(vals, per[first]),
                    ratio_kind="rate",
                )
            )
    for n, vals in values["sealed_own"].items():
        rows.append(
            Row(
                f"{prefix}_sealed_vs_guarded_{n}",
                f"{label}: sealed / guarded, {n} thread{'s' if n > 1 else ''} "
                "(one secret each)",
                "windows/s",
                vals,
                baseline=f"{prefix}_guarded_own_{n}",
                ratios=per_rep_ratios(vals, values["guarded_own"][n]),
                ratio_kind="rate",
            )
        )
    return rows
