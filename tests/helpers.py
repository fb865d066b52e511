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
