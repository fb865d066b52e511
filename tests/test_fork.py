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
            except ValueError:
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
                mem.seek(info["secret"])
                data = mem.read(info["len"])
            if data not in (bytes(info["len"]),):
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
