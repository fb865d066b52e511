"""Shared test helpers: child processes, platform checks, kernel view."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping

import pytest

LINUX = sys.platform.startswith("linux")
WINDOWS = sys.platform == "win32"

# Set by .ci/run for the ASan+UBSan and valgrind runs: some tests cannot
# work there (mlock is intercepted by ASan; deliberate segfaults are
# reported as errors by both tools).
SANITIZED = os.environ.get("MEMSAFE_SANITIZED") == "1"

linux_only = pytest.mark.skipif(not LINUX, reason="needs Linux /proc")
posix_only = pytest.mark.skipif(WINDOWS, reason="needs fork/POSIX")
not_sanitized = pytest.mark.skipif(
    SANITIZED,
    reason="sanitizer/valgrind run: intercepts mlock or reports "
    "the deliberate fault itself",
)

CAP_IPC_LOCK = 14
PR_CAPBSET_DROP = 24


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child Python running memsafe."""
    env = dict(os.environ)
    env.pop("MEMSAFE_LOCK_POLICY", None)
    if extra:
        env.update(extra)
    return env


def run_child(
    code: str,
    *,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 120,
    input: bytes | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run code in a fresh interpreter; return its exit status and output."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=child_env(env),
        preexec_fn=preexec_fn,
        capture_output=True,
        timeout=timeout,
        input=input,
        cwd=cwd,
    )


def drop_ipc_lock(limit: int, hard: int | None = None) -> Callable[[], None]:
    """preexec_fn: set RLIMIT_MEMLOCK to (limit, hard or limit), then drop
    CAP_IPC_LOCK so that the limit applies to root too."""

    def drop() -> None:
        import resource

        resource.setrlimit(
            resource.RLIMIT_MEMLOCK, (limit, limit if hard is None else hard)
        )
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0)
        # Clear it from the effective/permitted/inheritable sets too.
        _drop_effective_cap(libc, CAP_IPC_LOCK)

    return drop


def _drop_effective_cap(libc: ctypes.CDLL, cap: int) -> None:
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
    if libc.capget(ctypes.byref(header), data) != 0:
        return
    mask = ~(1 << cap) & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    libc.capset(ctypes.byref(header), data)


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    """Assert a child exited 0 and return its stdout as text."""
    assert proc.returncode == 0, (
        f"child failed ({proc.returncode}):\n{proc.stdout.decode()}\n"
        f"{proc.stderr.decode()}"
    )
    return proc.stdout.decode()


def memory_of(secret: object) -> int:
    """Address of a secret's stored bytes, whichever engine keeps them: the
    plaintext of a guarded secret, the ciphertext slot of a sealed one."""
    info = secret._region_info()  # type: ignore[attr-defined]
    return int(info["secret"] if info["storage"] == "guarded" else info["slot"])


def pages_of(secret: object) -> int:
    """An address inside the mapping that stores a secret: a guarded
    secret's data pages, a sealed secret's cipher arena."""
    info = secret._region_info()  # type: ignore[attr-defined]
    return int(info["data"] if info["storage"] == "guarded" else info["arena"])


def at_rest(secret: object) -> bool:
    """True when no plaintext of the secret is reachable, by the kernel's
    account where there is one: a guarded secret's pages are no-access
    (/proc/self/maps), a sealed secret has no plaintext slot."""
    info = secret._region_info()  # type: ignore[attr-defined]
    if info["storage"] == "sealed":
        return int(info["plaintext"]) == 0
    if not LINUX:
        return True
    from memsafe import _kernel

    return _kernel.perms_at(int(info["data"])) == "---p"


# ---- scanning another process's memory ----------------------------------

_PAGEMAP_PRESENT = 1 << 63
_PAGEMAP_SWAPPED = 1 << 62


def _private_anonymous(perms: str, path: str) -> bool:
    return perms[3:4] == "p" and (
        path in ("", "[heap]", "[stack]") or path.startswith("[anon:")
    )


def populated_runs(
    pid: int, start: int, end: int, perms: str, path: str
) -> list[tuple[int, int]]:
    """The parts of the mapping [start, end) that can hold anything but
    zeros, for a scanner of /proc/PID/mem.

    A private anonymous page that is neither present nor swapped has never
    been written: it reads as zeros, so it is skipped (per /proc/PID/pagemap;
    free-threaded CPython's mimalloc reserves a gigabyte this way).  File
    and shared mappings are returned whole: their absent pages still read
    the file's or the shared object's bytes."""
    if not _private_anonymous(perms, path):
        return [(start, end)]
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except OSError:
        return [(start, end)]
    runs: list[tuple[int, int]] = []
    try:
        step = 1 << 16  # pages per pagemap read (512 KiB of entries)
        first = start // page
        last = end // page
        for base in range(first, last, step):
            count = min(step, last - base)
            raw = os.pread(fd, count * 8, base * 8)
            if len(raw) != count * 8:
                return [(start, end)]
            entries = memoryview(raw).cast("Q")
            for i, entry in enumerate(entries):
                if not entry & (_PAGEMAP_PRESENT | _PAGEMAP_SWAPPED):
                    continue
                addr = (base + i) * page
                if runs and runs[-1][1] == addr:
                    runs[-1] = (runs[-1][0], addr + page)
                else:
                    runs.append((addr, addr + page))
    finally:
        os.close(fd)
    return runs
