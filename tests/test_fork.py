"""Fork: an inherited secret holds no plaintext in the child and behaves as
closed there; close() in the child is safe."""

from __future__ import annotations

import os

import pytest
from helpers import LINUX, not_sanitized, ok, posix_only, run_child

pytestmark = posix_only


def test_child_sees_no_plaintext_and_gets_value_error() -> None:
    proc = run_child(
        """
        import ctypes, os, memsafe
        m = memsafe.MemSafe(b"parent secret")
        info = m._region_info()
        addr = info["secret"] if info["storage"] == "guarded" else info["slot"]
        size = info["len"] if info["storage"] == "guarded" else info["slot_len"]
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                m.read(bytes)
                code = 10
            except ValueError as e:
                if "parent process" not in str(e):
                    code = 11
            try:
                memoryview(m)
                code = 12
            except BufferError:
                pass
            if not m.closed:
                code = 13
            if repr(m) != "<closed MemSafe>":
                code = 14
            try:
                m.extend(b"x")
                code = 15
            except ValueError:
                pass
            # The pages the child inherited hold zeros (MADV_WIPEONFORK):
            # look through /proc/self/mem, which ignores page protection.
            with open("/proc/self/mem", "rb") as mem:
                mem.seek(addr)
                data = mem.read(size)
            if data != bytes(size):
                code = 16
            m.close()              # safe: no canary check, no abort
            m.close()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        print(m.read(bytes).decode())   # the parent still has it
        """
    )
    out = ok(proc).split("\n")
    assert out[0] == "0", proc.stderr.decode()
    assert out[1] == "parent secret"


@not_sanitized
def test_child_closing_inherited_open_window_does_not_abort() -> None:
    proc = run_child(
        """
        import os, memsafe
        m = memsafe.MemSafe(b"abc")
        w = m.read()
        view = w.__enter__()       # window open across fork
        pid = os.fork()
        if pid == 0:
            view.release()
            w.__exit__(None, None, None)
            m.close()
            del m
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        w.__exit__(None, None, None)
        """
    )
    assert ok(proc).strip() == "0"


@pytest.mark.skipif(not LINUX, reason="MADV_WIPEONFORK is Linux-only")
def test_child_new_secrets_work() -> None:
    proc = run_child(
        """
        import os, memsafe
        m = memsafe.SecretBytes(b"abc")
        pid = os.fork()
        if pid == 0:
            k = memsafe.SecretBytes.random(32)
            ok = len(k.read(bytes)) == 32 and k.locked
            k.close()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert ok(proc).strip() == "0"


def test_fork_in_this_process() -> None:
    """The same, in the test process itself (pytest's own interpreter)."""
    import memsafe

    m = memsafe.SecretBytes(b"xyz")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            m.read(bytes)
            os._exit(1)
        except ValueError:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert m == b"xyz"


# ---- windows open across fork, raw forks -----------------------------------

FORK_WITH_OPEN_WINDOW = """
import hmac, os, sys, memsafe
k = memsafe.SecretBytes(b"k" * 32)
w = k.read()
view = w.__enter__()               # a window open while the process forks
pid = os.fork()
if pid == 0:
    # The child must not compute with zeros (or anything else) through the
    # inherited view: its memory is no-access here, so this faults.
    mac = hmac.digest(view, b"message", "sha256")
    os.write(1, b"computed " + mac.hex().encode() + b"\\n")
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child", os.WTERMSIG(status) if os.WIFSIGNALED(status) else
      "exit %d" % os.waitstatus_to_exitcode(status))
print("parent", hmac.digest(view, b"message", "sha256").hex())
w.__exit__(None, None, None)
"""


@not_sanitized
@pytest.mark.skipif(not LINUX, reason="checks the Linux fork protections")
def test_view_of_a_window_open_at_fork_faults_in_the_child() -> None:
    import hmac
    import signal

    proc = run_child(FORK_WITH_OPEN_WINDOW)
    out = ok(proc).splitlines()
    assert out[0] == f"child {int(signal.SIGSEGV)}", out
    assert "computed" not in proc.stdout.decode()
    assert out[1] == "parent " + hmac.digest(b"k" * 32, b"message", "sha256").hex()


RAW_FORK = """
import ctypes, os, platform, signal, memsafe
libc = ctypes.CDLL(None, use_errno=True)
m = memsafe.SecretBytes(b"parent secret")
# clone(SIGCHLD) with no other flag is fork(2) made by the system call
# itself: pthread_atfork handlers do not run.
numbers = {"x86_64": 56, "aarch64": 220}
pid = libc.syscall(numbers[platform.machine()], int(signal.SIGCHLD), 0, 0, 0, 0)
if pid == 0:
    code = 0
    try:
        m.read(bytes)
        code = 10
    except ValueError as e:
        if "parent process" not in str(e):
            code = 11
    if not m.closed:
        code = 12
    n = memsafe.SecretBytes(b"child secret")   # new secrets work there
    if n.read(bytes) != b"child secret":
        code = 13
    m.close()
    os._exit(code)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
print(m.read(bytes).decode())
"""


@not_sanitized
@pytest.mark.skipif(
    not LINUX or os.uname().machine not in ("x86_64", "aarch64"),
    reason="raw clone system call numbers for x86_64/aarch64 Linux",
)
def test_raw_fork_system_call_is_detected() -> None:
    """A fork that skips pthread_atfork (the raw system call) is detected
    all the same: the child gets the fork ValueError, not zeros and a
    misleading canary abort."""
    proc = run_child(RAW_FORK)
    out = ok(proc).splitlines()
    assert out == ["0", "parent secret"], proc.stderr.decode()
