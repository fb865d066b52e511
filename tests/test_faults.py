"""Fault injection: every OS call of the page layer can fail, one at a time.

Needs an extension built with ``-DMEMSAFE_FAULT_INJECTION`` (scripts/coverage
and scripts/sanitize build one); skipped otherwise.  The switch lets the
environment variable MEMSAFE_FAULT="OP:N:ERRNO" make the N-th call of an OS
call fail (see the comment in src/core/platform_posix.c); calls are counted from
the moment the variable takes its value, so a child sets up its secrets
first and only then arms the fault.

Each case runs in a child process.  The parent hands the child a random
plaintext through a pipe (read straight into a bytearray, so the child's
heap holds exactly one copy, which the child wipes before it is inspected).
After the failure the parent checks, from the kernel's view of the paused
child:

- the child got a clean Python exception (or success) and did not crash;
- an OSError carries the injected errno;
- a secret that is still usable still holds exactly its content;
- the data pages of every secret involved are no-access (``---p`` in
  /proc/PID/maps) or gone -- except that a failed munmap may leave wiped
  (all-zero) pages behind;
- no readable mapping of the child contains any part of the plaintext
  (read through /proc/PID/mem);
- once everything is closed, no no-access reservation was leaked.

The sweeps fail the N-th call of one OS call for N = 1, 2, ... until the
operation no longer makes that call, so every call site on the path is hit.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import SANITIZED, child_env, linux_only, not_sanitized

from memsafe import _kernel

pytestmark = linux_only

PAGE = os.sysconf("SC_PAGESIZE") if hasattr(os, "sysconf") else 4096
# Three data pages (the secret plus its canary), five with the guards.
SECRET_LEN = 2 * PAGE + 100
MAX_CALLS = 40  # a sweep that fires more often than this is a runaway
# MEMSAFE_FAULT_SWEEP_MAX=N fails only the first N calls of each OS call per
# scenario (scripts/sanitize: ASan makes every child slow; the coverage
# stage and the plain suite sweep every call).
SWEEP_MAX = int(os.environ.get("MEMSAFE_FAULT_SWEEP_MAX", "0") or 0)
SCAN_SKIP_BYTES = 1 << 30  # sanitizer shadow memory: never holds data
FAULT_LINE = b"memsafe: fault injected: "

# ---- the child ---------------------------------------------------------

PRELUDE = r"""
import gc, json, os, sys, warnings
import memsafe

PAGE = os.sysconf("SC_PAGESIZE")
SECRET = bytearray(int(sys.argv[1]))
_mv = memoryview(SECRET)
_got = 0
while _got < len(SECRET):
    _n = os.readv(0, [_mv[_got:]])
    if _n == 0:
        raise SystemExit("plaintext ended early")
    _got += _n
_mv.release()
del _mv, _got, _n
TAIL = b"\x01" * PAGE      # what the extend scenario appends
# The reference copy, itself kept no-access (guarded whatever the engine
# under test, so that a sealed scenario makes the engine's key and arenas
# itself, with the fault armed).
REF = memsafe.MemSafe(SECRET, storage="guarded")
REGIONS = []               # [data, data_len] of every secret involved
OUTCOME = {"kind": "not run"}
STATE = "none"
SUBJECT = None             # the secret to inspect after the fault
EXPECT = [(REF,)]          # contents (in pieces) SUBJECT may hold; None:
                           # unknown (random), only readability is checked


def track(s):
    try:
        info = s._region_info()
    except ValueError:     # destroyed or closed: nothing left to look at
        return s
    if info["storage"] != "guarded":
        return s           # sealed: the arena holds ciphertext; the scan
                           # of readable memory is what checks it
    if [info["data"], info["data_len"]] not in REGIONS:
        REGIONS.append([info["data"], info["data_len"]])
    return s


def arm(spec):
    os.environ["MEMSAFE_FAULT"] = spec


def disarm():
    os.environ.pop("MEMSAFE_FAULT", None)


def pool_counts():
    # The sealed engine's lasting state - its arenas and the two halves of
    # each key - is made once and kept: not a leak.
    st = memsafe._memsafe._stats()
    keys = sum(1 for a in st["key_halves"] + st["key_halves_secretmem"] if a)
    arenas = st["cipher_arenas"] + st["window_arenas"] + keys
    return {"arenas": arenas,
            "slots": st["cipher_slots"] + st["window_slots"],
            "other": st["mappings"] - arenas}


def noaccess_mappings():
    n = 0
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if parts[1].startswith("---") and len(parts) == 5:
                n += 1
    return n


def attempt(fn):
    global OUTCOME
    try:
        fn()
    except BaseException as e:
        OUTCOME = {
            "kind": type(e).__name__,
            "bases": [c.__name__ for c in type(e).__mro__],
            "errno": getattr(e, "errno", None),
            "msg": str(e),
        }
    else:
        OUTCOME = {"kind": "ok"}


def matches(s, parts):
    # Compare through windows, piece by piece: no copy of the plaintext is
    # made on the heap.
    if len(s) != sum(len(p) for p in parts):
        return False
    with s.read() as v:
        pos = 0
        for p in parts:
            piece = v[pos:pos + len(p)]
            if isinstance(p, memsafe.Secret):
                same = p == piece
            else:
                same = piece == memoryview(p)
            piece.release()
            if not same:
                return False
            pos += len(p)
    return True


def state_of(s):
    try:
        if s.closed:
            return "closed"
        if EXPECT is None:
            return "intact" if s.read(len) == len(s) else "CORRUPT"
        for parts in EXPECT:
            if matches(s, parts):
                return "intact"
        return "CORRUPT"
    except ValueError:
        return "unusable"


def pause():
    # Wipe our own copy (REF keeps one, no-access), then let the parent
    # inspect us exactly as the failed operation left us.
    SECRET[:] = bytes(len(SECRET))
    if SUBJECT is not None:
        track(SUBJECT)
    msg = {"outcome": OUTCOME, "regions": REGIONS}
    sys.stdout.write("REPORT " + json.dumps(msg) + "\n")
    sys.stdout.flush()
    if os.read(0, 1) != b"g":
        raise SystemExit("parent went away")
"""

# The generic body: setup, arm, action, disarm, inspect, pause, clean up.
BODY = r"""
gc.collect()
NOACCESS_BEFORE = noaccess_mappings()
POOL_BEFORE = pool_counts()
{setup}
arm({spec!r})
attempt(action)
disarm()
pause()
if SUBJECT is not None:
    STATE = state_of(SUBJECT)
print("STATE " + json.dumps(STATE), flush=True)
try:
    if SUBJECT is not None:
        SUBJECT.close()
except BaseException as e:
    print("close after the fault failed:", repr(e), file=sys.stderr)
    raise
SUBJECT = None
{teardown}
gc.collect()
POOL_AFTER = pool_counts()
print("DONE " + json.dumps({{"noaccess_leak":
      noaccess_mappings() - NOACCESS_BEFORE,
      **{{k + "_delta": POOL_AFTER[k] - POOL_BEFORE[k] for k in POOL_AFTER}}}}),
      flush=True)
"""


@dataclass(frozen=True)
class Scenario:
    """An operation to fail: setup code, then `action` runs with the fault."""

    name: str
    setup: str
    ops: tuple[str, ...]  # OS calls the operation is known to make (guarded)
    teardown: str = ""
    plaintext_known: bool = True  # False: the secret is random bytes
    # The same for a sealed secret (SECRET_LEN is beyond the largest slot
    # class, so it gets arenas of its own: those are made and released
    # here).  None: the scenario is for the guarded engine only.
    sealed_ops: tuple[str, ...] | None = None
    engines: tuple[str, ...] = ("guarded", "sealed")

    def ops_for(self, engine: str) -> tuple[str, ...]:
        if engine not in self.engines:
            return ()
        if engine == "sealed":
            return self.sealed_ops if self.sealed_ops is not None else ()
        return self.ops


# What making and releasing a sealed arena of its own costs (SECRET_LEN is
# beyond the largest slot class).
ARENA_OPS = ("mmap", "mprotect", "madvise", "mlock", "munlock", "munmap")

SCENARIOS = [
    Scenario(
        "allocate",
        """
        def action():
            global SUBJECT
            SUBJECT = memsafe.MemSafe(SECRET)
        """,
        ("mmap", "mprotect", "madvise", "mlock", "getrandom"),
        # Sealed straight from the source: its arena is made, no plaintext
        # mapping is, so nothing is unlocked or unmapped.
        sealed_ops=("mmap", "mprotect", "madvise", "mlock", "getrandom"),
    ),
    Scenario(
        "copy",
        """
        SRC = track(memsafe.SecretBytes(SECRET))
        def action():
            global SUBJECT
            import copy
            SUBJECT = copy.copy(SRC)
        """,
        ("mmap", "mprotect", "madvise", "mlock", "getrandom"),
        teardown="SRC.close()",
        sealed_ops=ARENA_OPS,
    ),
    Scenario(
        "random",
        """
        def action():
            global SUBJECT, EXPECT
            EXPECT = None
            SUBJECT = memsafe.SecretBytes.random(len(SECRET))
        """,
        ("mmap", "mprotect", "madvise", "mlock", "getrandom"),
        plaintext_known=False,
        sealed_ops=(*ARENA_OPS, "getrandom"),
    ),
    Scenario(
        "read_window",
        """
        SUBJECT = track(memsafe.MemSafe(SECRET))
        def action():
            with SUBJECT.read() as v:
                assert len(v) == len(SECRET)
        """,
        ("mprotect",),
        sealed_ops=ARENA_OPS,
    ),
    Scenario(
        "write_window",
        """
        SUBJECT = track(memsafe.MemSafe(SECRET))
        def action():
            with SUBJECT.write() as v:
                v[0] = v[0]
        """,
        ("mprotect",),
        sealed_ops=ARENA_OPS,
    ),
    Scenario(
        "nested_read_windows",
        """
        SUBJECT = track(memsafe.MemSafe(SECRET))
        def action():
            with SUBJECT.read():
                with SUBJECT.read() as v:
                    assert len(v) == len(SECRET)
        """,
        ("mprotect",),
        sealed_ops=ARENA_OPS,
    ),
    Scenario(
        "closure_read",
        """
        SUBJECT = track(memsafe.SecretBytes(SECRET))
        def action():
            assert SUBJECT.read(len) == len(SECRET)
        """,
        ("mprotect",),
        sealed_ops=ARENA_OPS,
    ),
    Scenario(
        "compare",
        """
        SUBJECT = track(memsafe.SecretBytes(SECRET))
        def action():
            assert SUBJECT == SECRET
        """,
        ("mprotect",),
        sealed_ops=ARENA_OPS,
    ),
    Scenario(
        "leaked_view_released",
        """
        SUBJECT = track(memsafe.MemSafe(SECRET))
        w = SUBJECT.read()
        LEAK = w.__enter__()[:]
        try:
            w.__exit__(None, None, None)
        except BufferError:
            pass
        else:
            raise AssertionError("closing with a live view must raise")
        def action():
            LEAK.release()
        """,
        ("mprotect",),
        sealed_ops=("munlock", "munmap"),
    ),
    Scenario(
        "extend",
        """
        SUBJECT = track(memsafe.MemSafe(SECRET))
        EXPECT.append((REF, TAIL))
        def action():
            SUBJECT.extend(TAIL)
        """,
        ("mmap", "mprotect", "madvise", "mlock", "munlock", "munmap", "getrandom"),
        sealed_ops=ARENA_OPS,
    ),
    Scenario(
        "close",
        """
        SUBJECT = track(memsafe.MemSafe(SECRET))
        def action():
            SUBJECT.close()
        """,
        ("mprotect", "munlock", "munmap"),
        sealed_ops=("munlock", "munmap"),
    ),
    Scenario(
        "dealloc",
        """
        VICTIM = track(memsafe.SecretBytes(SECRET))
        def action():
            global VICTIM
            VICTIM = None
            gc.collect()
        """,
        ("mprotect", "munlock", "munmap"),
        sealed_ops=("munlock", "munmap"),
    ),
    Scenario(
        "from_fd_to_eof",
        """
        def action():
            global SUBJECT
            r, w = os.pipe()
            try:
                os.write(w, SECRET)
                os.close(w)
                w = -1
                SUBJECT = memsafe.SecretBytes.from_fd(r)
            finally:
                os.close(r)
                if w >= 0:
                    os.close(w)
        """,
        (
            "read",
            "mmap",
            "mprotect",
            "madvise",
            "mlock",
            "munlock",
            "munmap",
            "getrandom",
        ),
        sealed_ops=("read", *ARENA_OPS, "getrandom"),
    ),
    Scenario(
        "from_fd_exact",
        """
        def action():
            global SUBJECT
            r, w = os.pipe()
            try:
                os.write(w, SECRET)
                SUBJECT = memsafe.SecretBytes.from_fd(r, len(SECRET))
            finally:
                os.close(r)
                os.close(w)
        """,
        ("read", "mmap", "mprotect", "madvise", "mlock", "getrandom"),
        sealed_ops=("read", *ARENA_OPS, "getrandom"),
    ),
]

# The sealed engine's pooled arenas (small secrets share them): the first
# arenas of a size class, and a new arena once the class's arenas are full.
SCENARIOS += [
    Scenario(
        "sealed_first_small",
        """
        SMALL = memsafe.MemSafe(memoryview(SECRET)[:40], storage="guarded")
        EXPECT = [(SMALL,)]
        def action():
            global SUBJECT
            SUBJECT = memsafe.SecretBytes(SMALL, storage="sealed")
        """,
        (),
        teardown="SMALL.close()",
        sealed_ops=("mmap", "mprotect", "madvise", "mlock", "getrandom"),
        engines=("sealed",),
    ),
    Scenario(
        "sealed_arena_grow",
        """
        SMALL = memsafe.MemSafe(memoryview(SECRET)[:40], storage="sealed")
        EXPECT = [(SMALL,)]
        FILL = [memsafe.SecretBytes(SMALL, storage="sealed")]
        def action():
            global SUBJECT
            start = memsafe._memsafe._stats()["cipher_arenas"]
            while memsafe._memsafe._stats()["cipher_arenas"] == start:
                FILL.append(memsafe.SecretBytes(SMALL, storage="sealed"))
            SUBJECT = FILL.pop()
        """,
        (),
        teardown="for f in FILL: f.close()\nSMALL.close()",
        sealed_ops=("mmap", "mprotect", "madvise", "mlock"),
        engines=("sealed",),
    ),
]

# The errno each OS call fails with in the sweeps: one it can really return.
SWEEP_ERRNO = {
    "mmap": "ENOMEM",
    "mprotect": "ENOMEM",
    "madvise": "ENOMEM",
    "mlock": "ENOMEM",
    "munlock": "ENOMEM",
    "munmap": "ENOMEM",
    "getrandom": "ENOSYS",
    "read": "EIO",
}
ERRNO = {
    name: getattr(errno, name)
    for name in (
        "ENOMEM",
        "ENOSYS",
        "EIO",
        "EINVAL",
        "EPERM",
        "EINTR",
        "EMFILE",
        "ENXIO",
        "EAGAIN",
    )
}


@dataclass
class ChildResult:
    """What a paused child reported, what the parent saw, how it ended."""

    report: dict[str, Any]
    leaks: list[str]  # plaintext found in readable memory
    bad_pages: list[str]  # data pages left accessible
    done: dict[str, Any]
    returncode: int
    stderr: bytes

    def fired(self) -> int:
        """How many faults the child reported injecting."""
        return self.stderr.count(FAULT_LINE)

    def describe(self) -> str:
        return (
            f"report={self.report}\nleaks={self.leaks}\n"
            f"bad_pages={self.bad_pages}\ndone={self.done}\n"
            f"rc={self.returncode}\nstderr:\n"
            f"{self.stderr.decode(errors='replace')[-3000:]}"
        )


# ---- the parent: looking at the paused child ----------------------------


def read_maps(pid: int) -> list[tuple[int, int, str, str]]:
    """(start, end, perms, path) of every mapping of pid."""
    return [(m.start, m.end, m.perms, m.path) for m in _kernel.maps(pid)]


def read_mem(pid: int, addr: int, n: int) -> bytes:
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
        f.seek(addr)
        return f.read(n)


def needles(plaintext: bytes) -> list[bytes]:
    """32-byte pieces spread over the plaintext: any one found is a leak."""
    step = max(1, (len(plaintext) - 32) // 7)
    return [plaintext[i : i + 32] for i in range(0, len(plaintext) - 31, step)]


def scan_for_plaintext(pid: int, plaintext: bytes) -> list[str]:
    """Every readable mapping of pid that holds a piece of plaintext."""
    found = []
    pieces = needles(plaintext)
    chunk = 8 << 20
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, perms, path in read_maps(pid):
            if perms[0] != "r" or end - start > SCAN_SKIP_BYTES:
                continue
            if path in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            pos = start
            while pos < end:
                n = min(chunk + 31, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except OSError as e:
                    found.append(f"unreadable {start:x}-{end:x} {perms} {path}: {e}")
                    break
                for p in pieces:
                    hit = data.find(p)
                    if hit >= 0:
                        found.append(
                            f"plaintext at {pos + hit:x} in "
                            f"{start:x}-{end:x} {perms} {path}"
                        )
                        break
                pos += chunk
    return found


def check_pages(pid: int, regions: list[list[int]], zero_ok: bool) -> list[str]:
    """Data pages that are still accessible (and, if zero_ok, not zero)."""
    bad = []
    maps = read_maps(pid)
    for data, length in regions:
        for addr in range(data, data + length, PAGE):
            for start, end, perms, path in maps:
                if start <= addr < end:
                    if perms.startswith("---"):
                        break
                    if zero_ok and read_mem(pid, addr, PAGE) == bytes(PAGE):
                        break
                    bad.append(f"{addr:x}: {perms} {path}")
                    break
    return bad


def run_case(scenario: Scenario, spec: str, engine: str = "guarded") -> ChildResult:
    """Run scenario with MEMSAFE_FAULT=spec in a child (secrets stored by
    engine); inspect it paused."""
    plaintext = os.urandom(SECRET_LEN)
    body = BODY.format(
        setup=textwrap.dedent(scenario.setup), spec=spec, teardown=scenario.teardown
    )
    code = PRELUDE + body
    env = child_env({"MEMSAFE_STORAGE": engine})
    env.pop("MEMSAFE_FAULT", None)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(SECRET_LEN)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        report: dict[str, Any] = {}
        leaks: list[str] = []
        bad: list[str] = []
        done: dict[str, Any] = {}
        try:
            proc.stdin.write(plaintext)
            proc.stdin.flush()
            for raw in proc.stdout:
                line = raw.decode(errors="replace")
                if line.startswith("REPORT "):
                    report = json.loads(line[7:])
                    zero_ok = "munmap" in spec
                    bad = check_pages(proc.pid, report["regions"], zero_ok)
                    if scenario.plaintext_known:
                        leaks = scan_for_plaintext(proc.pid, plaintext)
                    proc.stdin.write(b"g")
                    proc.stdin.flush()
                elif line.startswith("STATE "):
                    report["state"] = json.loads(line[6:])
                elif line.startswith("DONE "):
                    done = json.loads(line[5:])
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdin.close()
            proc.stdout.close()
        err.seek(0)
        stderr = err.read()
    return ChildResult(report, leaks, bad, done, proc.returncode, stderr)


def assert_failed_safely(r: ChildResult, spec: str, op: str) -> None:
    """The checks every injected single fault must pass."""
    what = f"MEMSAFE_FAULT={spec}\n{r.describe()}"
    assert r.returncode == 0, "child did not survive the fault\n" + what
    assert r.report, "child never reached the inspection point\n" + what
    out = r.report["outcome"]
    assert out["kind"] != "not run", what
    if out["kind"] != "ok":
        assert (
            out["kind"] in ("MemoryError", "ValueError") or "OSError" in out["bases"]
        ), "not a clean exception\n" + what
        if "OSError" in out["bases"]:
            assert out["errno"] == ERRNO[spec.rsplit(":", 1)[1]], what
    assert r.report.get("state") not in (None, "CORRUPT"), (
        "secret content changed\n" + what
    )
    assert not r.bad_pages, "data pages left accessible\n" + what
    assert not r.leaks, "plaintext readable in the child\n" + what
    # Pool arenas (sealed) are kept for later secrets by design: each new
    # one may add up to two no-access lines (its guard pages).  Its slots
    # and every other registered mapping must all be given back.
    assert r.done.get("slots_delta") == 0, "leaked sealed slot\n" + what
    assert r.done.get("other_delta") == 0, "leaked secret mapping\n" + what
    if not SANITIZED and op != "munmap":
        allowed = 2 * max(0, r.done.get("arenas_delta", 0))
        assert r.done.get("noaccess_leak", 0) <= allowed, "leaked reservation\n" + what
        if allowed == 0:
            assert r.done.get("noaccess_leak") == 0, "leaked reservation\n" + what


# ---- is fault injection compiled in? -------------------------------------


def fault_injection_built() -> bool:
    """True if this build has the MEMSAFE_FAULT switch (probed in a child)."""
    probe = textwrap.dedent("""
        import memsafe
        from memsafe import _memsafe
        flag = _memsafe._features().get("fault_injection")
        if flag is not None:
            print("FLAG", bool(flag))
        else:
            try:
                memsafe.MemSafe(1)
            except MemoryError:
                print("FLAG True")
            else:
                print("FLAG False")
    """)
    env = child_env({"MEMSAFE_FAULT": "mmap:1:ENOMEM"})
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return b"FLAG True" in proc.stdout


@pytest.fixture(scope="module", autouse=True)
def needs_fault_injection() -> Iterator[None]:
    if not fault_injection_built():
        pytest.skip(
            "extension built without -DMEMSAFE_FAULT_INJECTION "
            "(scripts/coverage and scripts/sanitize build it)"
        )
    yield


# ---- the sweeps ------------------------------------------------------------

SWEEPS = [
    (engine, s, op)
    for engine in ("guarded", "sealed")
    for s in SCENARIOS
    for op in s.ops_for(engine)
]


@pytest.mark.storage("any")  # each case names its engine
@pytest.mark.parametrize(
    ("engine", "scenario", "op"),
    SWEEPS,
    ids=[f"{e}-{s.name}-{op}" for e, s, op in SWEEPS],
)
def test_single_os_call_failure_fails_closed(
    engine: str, scenario: Scenario, op: str
) -> None:
    """Fail the 1st, 2nd, ... call of op during the scenario, one per child."""
    errno_name = SWEEP_ERRNO[op]
    n = 0
    while True:
        n += 1
        assert n <= MAX_CALLS, f"{op} called more than {MAX_CALLS} times"
        spec = f"{op}:{n}:{errno_name}"
        r = run_case(scenario, spec, engine)
        if r.fired() == 0:
            assert r.returncode == 0, r.describe()
            assert r.report["outcome"]["kind"] == "ok", r.describe()
            break
        assert r.fired() == 1, r.describe()
        assert_failed_safely(r, spec, op)
        if SWEEP_MAX and n >= SWEEP_MAX:
            break
    assert n > 1, f"{scenario.name} never called {op}: update its ops list"


def test_baseline_without_faults_keeps_content() -> None:
    """The harness itself: no fault, intact secret, nothing leaked."""
    r = run_case(SCENARIOS[3], "mmap:1000:ENOMEM")
    assert r.fired() == 0
    assert_failed_safely(r, "mmap:1000:ENOMEM", "mmap")
    assert r.report["outcome"]["kind"] == "ok"
    assert r.report["state"] == "intact"
    assert r.report["regions"], r.describe()


def test_harness_detects_readable_plaintext() -> None:
    """The harness can fail: an open window makes the plaintext visible."""
    leaky = Scenario(
        "left_open",
        """
        SUBJECT = track(memsafe.MemSafe(SECRET))
        W = SUBJECT.read()
        def action():
            W.__enter__()
        """,
        ("mprotect",),
        teardown="",
    )
    r = run_case(leaky, "mmap:1000:ENOMEM")
    assert r.bad_pages and r.leaks, r.describe()


# ---- targeted cases: what the error paths are for --------------------------


def child(
    code: str, spec: str | None = None, prelude: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run prelude + dedented code in a fresh interpreter with the fault."""
    env = child_env()
    env.pop("MEMSAFE_FAULT", None)
    if spec is not None:
        env["MEMSAFE_FAULT"] = spec
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        timeout=timeout,
    )


def child_json(code: str, spec: str | None = None, prelude: str = "") -> dict[str, Any]:
    """Run a child that prints one JSON line last; return it (+ stderr)."""
    proc = child(code, spec, prelude)
    assert proc.returncode == 0, proc.stderr.decode()
    last = proc.stdout.decode().strip().splitlines()[-1]
    out: dict[str, Any] = json.loads(last)
    out["_stderr"] = proc.stderr.decode()
    return out


KERNEL_VIEW = """
import json, os, sys, warnings
import memsafe
from memsafe import _kernel
def where(s):
    # A guarded secret's data pages, or a sealed secret's cipher arena.
    i = s._region_info()
    return i["data"] if i["storage"] == "guarded" else i["arena"]
def flags(s):
    m = _kernel.mapping_at(where(s))
    return sorted(m.vmflags), m.perms
"""

# What the pages holding a secret look like at rest: no-access (guarded),
# or an arena of ciphertext that is always readable (sealed).
AT_REST = {"guarded": "---p", "sealed": "rw-p"}


def test_mlock_failure_strict_raises_lock_error() -> None:
    out = child_json(
        """
        os.environ["MEMSAFE_FAULT"] = "mlock:1+:ENOMEM"
        try:
            memsafe.MemSafe(b"x" * 40)
        except memsafe.LockError as e:
            r = {"errno": e.errno, "msg": str(e),
                 "oserror": isinstance(e, OSError)}
        del os.environ["MEMSAFE_FAULT"]
        r["after"] = memsafe.MemSafe(8).locked
        print(json.dumps(r))
    """,
        prelude=KERNEL_VIEW,
    )
    assert out["errno"] == ERRNO["ENOMEM"] and out["oserror"]
    assert "mlock failed" in out["msg"] and "RLIMIT_MEMLOCK" in out["msg"]
    assert out["after"] is True


def test_mlock_failure_retried_after_raising_soft_limit() -> None:
    out = child_json(
        """
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 30
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard, hard))
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard // 2, hard))
        os.environ["MEMSAFE_FAULT"] = "mlock:1:ENOMEM"
        m = memsafe.MemSafe(b"x" * 40)
        del os.environ["MEMSAFE_FAULT"]
        print(json.dumps({"locked": m.locked, "flags": flags(m)[0],
            "soft": resource.getrlimit(resource.RLIMIT_MEMLOCK)[0],
            "hard": hard}))
    """,
        prelude=KERNEL_VIEW,
    )
    assert out["_stderr"].count("fault injected: mlock call 1") == 1
    assert out["locked"] is True
    assert out["soft"] == out["hard"]  # raised to the hard limit
    if not SANITIZED:  # ASan turns mlock into a no-op
        assert "lo" in out["flags"]


@pytest.mark.parametrize(
    "spec",
    [
        "mlock:1:ENOMEM,setrlimit:1:EPERM",
        "mlock:1:ENOMEM,getrlimit:1+:EPERM",
    ],
)
def test_mlock_failure_when_limit_cannot_be_raised(spec: str) -> None:
    out = child_json(
        """
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 30
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard, hard))
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard // 2, hard))
        try:
            memsafe.MemSafe(b"x" * 40)
            r = {"raised": None}
        except memsafe.LockError as e:
            r = {"raised": e.errno, "msg": str(e)}
        print(json.dumps(r))
    """,
        spec,
        prelude=KERNEL_VIEW,
    )
    assert out["raised"] == ERRNO["ENOMEM"], out
    if "getrlimit" in spec:
        assert "unlimited or unknown" in out["msg"]


def test_mlock_failure_warn_policy_goes_on_unlocked(storage: str) -> None:
    out = child_json(
        """
        memsafe.set_lock_policy("warn")
        os.environ["MEMSAFE_FAULT"] = "mlock:1+:EAGAIN"
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = memsafe.MemSafe(b"x" * 40)
        del os.environ["MEMSAFE_FAULT"]
        f, perms = flags(m)
        with m.read() as v:
            ok = bytes(v) == b"x" * 40
        print(json.dumps({"locked": m.locked, "flags": f, "perms": perms,
            "warnings": [c.category.__name__ for c in w], "ok": ok}))
    """,
        prelude=KERNEL_VIEW,
    )
    assert out["warnings"] == ["LockWarning"]
    assert out["locked"] is False
    assert "lo" not in out["flags"] and {"dd", "wf"} <= set(out["flags"])
    assert out["perms"] == AT_REST[storage] and out["ok"]


@not_sanitized
def test_wipeonfork_unsupported_falls_back_to_dontfork(storage: str) -> None:
    """Kernels before 4.14 (MADV_WIPEONFORK fails with EINVAL): the pages
    are not inherited at all (MADV_DONTFORK).  The child then re-reserves
    them no-access, so a view carried over from a window open in the
    parent faults there - never a dangling pointer into whatever the child
    maps at that address later."""
    out = child_json(
        """
        import signal
        os.environ["MEMSAFE_FAULT"] = "madvise(MADV_WIPEONFORK):1+:EINVAL"
        m = memsafe.MemSafe(b"y" * 40)
        del os.environ["MEMSAFE_FAULT"]
        f, perms = flags(m)
        w = m.read()
        view = w.__enter__()
        addr = where(m)
        pid = os.fork()
        if pid == 0:
            mapping = _kernel.mapping_at(addr)
            if mapping is None or mapping.perms != "---p" or "dc" in mapping.vmflags:
                os._exit(3)  # not re-reserved no-access
            junk = [bytearray(1 << 16) for _ in range(64)]  # try to reuse it
            bytes(view)   # must fault
            os._exit(4)
        _, status = os.waitpid(pid, 0)
        w.__exit__(None, None, None)
        print(json.dumps({"flags": f, "perms": perms,
                          "child_signal": os.WTERMSIG(status)
                          if os.WIFSIGNALED(status) else None,
                          "child_exit": os.WEXITSTATUS(status)
                          if os.WIFEXITED(status) else None,
                          "parent": m.read(bytes).decode()}))
    """,
        prelude=KERNEL_VIEW,
    )
    assert "dc" in out["flags"] and "wf" not in out["flags"]
    assert out["perms"] == AT_REST[storage]
    assert out["child_signal"] == 11, out
    assert out["parent"] == "y" * 40


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("madvise(MADV_NOHUGEPAGE):1:EINVAL", True),  # no THP in the kernel
        ("madvise(MADV_NOHUGEPAGE):1:EAGAIN", False),
        ("madvise(MADV_WIPEONFORK):1:EINVAL,madvise(MADV_DONTFORK):1:EAGAIN", False),
        ("madvise(MADV_DONTDUMP):1:EINVAL", False),
        ("getrandom:1:EINTR", True),  # interrupted: retried
    ],
)
def test_allocation_error_semantics(spec: str, ok: bool) -> None:
    out = child_json(
        """
        try:
            m = memsafe.MemSafe(b"z" * 40)
            r = {"ok": True, "flags": flags(m)[0]}
        except OSError as e:
            r = {"ok": False, "errno": e.errno, "msg": str(e)}
        print(json.dumps(r))
    """,
        spec,
        prelude=KERNEL_VIEW,
    )
    assert out["_stderr"].count("fault injected") == spec.count(",") + 1
    assert out["ok"] is ok, out
    if not ok:
        assert out["errno"] == ERRNO[spec.rsplit(":", 1)[1]]
        assert spec.rsplit(":", 2)[0].split(",")[-1] in out["msg"]


def test_read_interrupted_is_retried() -> None:
    out = child_json("""
        import json, os, memsafe
        r, w = os.pipe()
        os.write(w, b"0123456789")
        os.close(w)
        os.environ["MEMSAFE_FAULT"] = "read:1:EINTR"
        s = memsafe.SecretBytes.from_fd(r)
        print(json.dumps({"ok": s == b"0123456789"}))
    """)
    assert out["ok"]
    assert "read call 1: EINTR" in out["_stderr"]


@pytest.mark.parametrize("spec", ["sysconf:1:EINVAL", "pthread_atfork:1:ENOMEM"])
def test_init_failure_is_a_clean_import_error(spec: str) -> None:
    proc = child("import memsafe", spec)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "OSError" in err and spec.split(":")[0] in err and "failed" in err


def test_secretmem_probe_failure_is_reported_as_not_offered() -> None:
    out = child_json(
        """
        import json
        from memsafe import _memsafe
        print(json.dumps(_memsafe._features()))
    """,
        "memfd_secret:1:ENOSYS",
    )
    assert out["secretmem_offered"] is False
    assert "memfd_secret call 1" in out["_stderr"]


def test_lock_limit_unknown_in_features() -> None:
    out = child_json(
        """
        import json
        from memsafe import _memsafe
        print(json.dumps(_memsafe._features()))
    """,
        "getrlimit:1:EPERM",
    )
    assert out["lock_limit_soft"] == -1 and out["lock_limit_hard"] == -1


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("mprotect:x:ENOMEM", "bad call number"),
        ("mprotect:0:ENOMEM", "bad call number"),
        ("mprotect:1", "expected OP:N:ERRNO"),
        (":1:ENOMEM", "expected OP:N:ERRNO"),
        ("mprotect:1:EWHATEVER", "unknown errno"),
        ("mprotect:1:0", "unknown errno"),
        (",".join(["mprotect:1:EIO"] * 9), "too many entries"),
        ("mprotect:1:EIO," + "x" * 600, "value too long"),
    ],
)
def test_malformed_spec_ends_the_process(spec: str, why: str) -> None:
    """A typo in MEMSAFE_FAULT must not pass silently as "no fault"."""
    proc = child("import memsafe; memsafe.MemSafe(1)", spec)
    assert proc.returncode == 125, proc.stderr.decode()
    assert b"MEMSAFE_FAULT: " + why.encode() in proc.stderr


def test_numeric_errno_and_several_rules() -> None:
    out = child_json(
        """
        import json, memsafe
        try:
            memsafe.MemSafe(1)
            r = {"errno": None}
        except OSError as e:
            r = {"errno": e.errno}
        print(json.dumps(r))
    """,
        "munmap:5:EIO,mprotect:1:13",
    )
    assert out["errno"] == errno.EACCES
    assert "mprotect call 1: EACCES" in out["_stderr"]


# ---- the remaining reachable paths of the page and region layers ----------


def test_window_open_across_fork_then_closed_in_child() -> None:
    """A fork child closes an inherited secret inside an inherited window,
    then leaves the window: nothing is touched, nothing aborts.  The child
    exits normally, so its coverage counts (fork hook, orphan free)."""
    out = child_json("""
        import json, os, sys, memsafe
        m = memsafe.MemSafe(b"inherited")
        w = m.read()
        w.__enter__()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                m.close()
                assert m.closed
                w.__exit__(None, None, None)
            except BaseException as e:
                print(repr(e), file=sys.stderr)
                code = 1
            sys.stdout.flush()
            sys.exit(code)
        _, status = os.waitpid(pid, 0)
        w.__exit__(None, None, None)
        with m.read() as v:
            ok = bytes(v) == b"inherited"
        print(json.dumps({"child": os.waitstatus_to_exitcode(status),
                          "parent_ok": ok}))
    """)
    assert out["child"] == 0, out["_stderr"]
    assert out["parent_ok"]


def test_unlimited_lock_limit_is_reported_as_minus_one() -> None:
    out = child_json("""
        import json, resource
        inf = resource.RLIM_INFINITY
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (inf, inf))
        except (ValueError, OSError):  # no CAP_SYS_RESOURCE here
            print(json.dumps({"skip": True}))
            raise SystemExit(0)
        from memsafe import _memsafe
        print(json.dumps(_memsafe._features()))
    """)
    if out.get("skip"):
        pytest.skip("cannot raise the hard RLIMIT_MEMLOCK to unlimited")
    assert out["lock_limit_soft"] == -1 and out["lock_limit_hard"] == -1


def test_writable_export_refused_in_read_window() -> None:
    import memsafe

    m = memsafe.MemSafe(b"abc")
    r, w = os.pipe()
    try:
        os.write(w, b"xyz")
        # os.readv asks for a writable buffer: the secret itself refuses
        # (it exports none), and so does a read window.
        with m.read(), pytest.raises(BufferError, match="view"):
            os.readv(r, [m])
        window = m.read()
        with window, pytest.raises(BufferError, match="write window"):
            os.readv(r, [window])  # a writable export from a read window
    finally:
        os.close(r)
        os.close(w)
    with m.read() as v:
        assert bytes(v) == b"abc"
    m.close()


def test_wipe_source_of_an_empty_buffer() -> None:
    import memsafe

    src = bytearray()
    m = memsafe.MemSafe(src, wipe_source=True)
    assert len(m) == 0 and src == bytearray()
    m.close()


# ---- the terminal: getpass with failing tty calls ----------------------------

GETPASS = """
import json, sys, memsafe
try:
    s = memsafe.SecretStr.getpass("pw: ")
    r = {"ok": s.reveal() == "hunter2"}
except BaseException as e:
    r = {"ok": False, "kind": type(e).__name__,
         "errno": getattr(e, "errno", None)}
print("RESULT " + json.dumps(r), flush=True)
"""


def run_on_pty(spec: str, type_it: bool = True) -> tuple[dict[str, Any], bytes]:
    """Run GETPASS with a pty as its controlling terminal and type the
    password once echo is off (or the no-tty warning shows); with type_it
    False, type nothing (the child fails before it reads)."""
    import pty
    import select
    import termios

    env = child_env({"MEMSAFE_FAULT": spec})
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        try:
            os.execve(sys.executable, [sys.executable, "-c", GETPASS], env)
        finally:
            os._exit(127)
    out = b""
    sent = not type_it
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not sent:
                try:
                    echo = termios.tcgetattr(master)[3] & termios.ECHO
                except termios.error:
                    echo = 1
                if not echo or b"GetPassWarning" in out:
                    os.write(master, b"hunter2\n")
                    sent = True
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    found = re.findall(rb"RESULT (\{.*?\})", out)
    assert found, out
    result: dict[str, Any] = json.loads(found[-1])
    return result, out


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("tcsetattr:1:EINTR", True),  # echo off interrupted: retried
        ("tcsetattr:2:EINTR", True),  # restore interrupted: retried
        ("write:1:EIO", True),  # the prompt could not be shown
        ("write:1:EINTR", True),  # prompt interrupted: retried
        ("tcgetattr:1:EIO", False),
        ("tcsetattr:1:EIO", False),
        ("tcsetattr:2:EIO", False),  # echo could not be restored
        ("open(/dev/tty):1:EMFILE", False),
        ("read:1:EIO", False),
    ],
)
def test_getpass_tty_failures(spec: str, ok: bool) -> None:
    # The password is typed while echo is off; the tty reader waits (poll)
    # until input is there, so even an injected read failure happens with
    # the keystrokes pending, which the restore (TCSAFLUSH) discards unseen.
    result, screen = run_on_pty(spec)
    assert result["ok"] is ok, (result, screen)
    assert b"hunter2" not in screen  # never echoed, whatever failed
    assert b"fault injected: " + spec.split(":")[0].encode() in screen
    if not ok:
        assert result["errno"] == ERRNO[spec.rsplit(":", 1)[1]], result


def test_getpass_tty_unavailable_falls_back_to_stdin() -> None:
    result, screen = run_on_pty("open(/dev/tty):1:ENXIO")
    assert result["ok"] is True, (result, screen)
    assert b"GetPassWarning" in screen


@pytest.mark.storage("guarded")  # the sealed engine's windows make no call
def test_reprotect_failure_is_reported_by_the_call_that_caused_it() -> None:
    """An internal window (==, reveal(), copy(), compare_digest) whose
    closing mprotect fails destroys the secret (fail closed) and the very
    call that closed it raises OSError - not the secret's next use."""
    out = child_json(
        """
        import copy
        # (call, which mprotect closes the internal window on k)
        calls = {
            "eq": (lambda k: k == b"x" * 40, 2),
            "reveal": (lambda k: k.reveal(), 2),
            "compare_digest": (lambda k: memsafe.compare_digest(k, b"x" * 40), 2),
            # open k, make the copy's pages, seal the copy, then close k
            "copy": (lambda k: copy.copy(k), 4),
        }
        r = {}
        for name, (call, nth) in calls.items():
            k = memsafe.SecretBytes(b"x" * 40)
            os.environ["MEMSAFE_FAULT"] = f"mprotect:{nth}:ENOMEM"
            try:
                call(k)
                r[name] = "no error"
            except OSError as e:
                r[name] = e.errno
            del os.environ["MEMSAFE_FAULT"]
            try:
                k.read(bytes)
                r[name + "-after"] = "usable"
            except ValueError as e:
                r[name + "-after"] = "destroyed" in str(e)
        print(json.dumps(r))
    """,
        prelude=KERNEL_VIEW,
    )
    for name in ("eq", "reveal", "copy", "compare_digest"):
        assert out[name] == ERRNO["ENOMEM"], out
        assert out[name + "-after"] is True, out
