"""Deliberate faults, each in a child process: the parent checks how it died."""

from __future__ import annotations

import signal

import pytest
from helpers import not_sanitized, posix_only, run_child

# Guard pages, no-access pages and the canary are the guarded engine's;
# the sealed engine's integrity checks are in test_sealed.py.
pytestmark = [posix_only, not_sanitized, pytest.mark.storage("guarded")]


def test_read_outside_window_segfaults() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        m = memsafe.MemSafe(b"secret!")
        addr = m._region_info()["secret"]
        print("reading", flush=True)
        ctypes.string_at(addr, 1)
        print("NOT REACHED", flush=True)
        """
    )
    assert proc.returncode == -signal.SIGSEGV, proc.stderr.decode()
    assert b"reading" in proc.stdout
    assert b"NOT REACHED" not in proc.stdout


def test_read_after_window_closed_segfaults() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        m = memsafe.MemSafe(b"secret!")
        addr = m._region_info()["secret"]
        with m.read() as v:
            assert ctypes.string_at(addr, 7) == b"secret!"
        print("closed", flush=True)
        ctypes.string_at(addr, 1)
        """
    )
    assert proc.returncode == -signal.SIGSEGV
    assert b"closed" in proc.stdout


def test_write_in_read_window_segfaults() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        m = memsafe.MemSafe(b"secret!")
        addr = m._region_info()["secret"]
        with m.read():
            print("writing", flush=True)
            ctypes.memset(addr, 0, 1)
        """
    )
    assert proc.returncode == -signal.SIGSEGV
    assert b"writing" in proc.stdout


def test_one_byte_past_end_in_write_window_hits_guard_page() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        m = memsafe.MemSafe(32)
        info = m._region_info()
        with m.write():
            ctypes.memset(info["secret"], 0x41, 32)   # the whole secret: fine
            print("inside ok", flush=True)
            ctypes.memset(info["secret"] + 32, 0x41, 1)
        print("NOT REACHED", flush=True)
        """
    )
    assert proc.returncode == -signal.SIGSEGV
    assert b"inside ok" in proc.stdout
    assert b"NOT REACHED" not in proc.stdout


def test_leading_guard_page_faults() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        m = memsafe.MemSafe(32)
        info = m._region_info()
        with m.write():
            print("inside", flush=True)
            ctypes.memset(info["data"] - 1, 0x41, 1)
        """
    )
    assert proc.returncode == -signal.SIGSEGV


def test_canary_corruption_aborts_at_window_close() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        m = memsafe.MemSafe(b"secret!")
        info = m._region_info()
        with m.write():
            at = info["secret"] - 1  # the canary byte before the data: flip it
            ctypes.memset(at, ctypes.string_at(at, 1)[0] ^ 0xFF, 1)
            print("corrupted", flush=True)
        print("NOT REACHED", flush=True)
        """
    )
    assert proc.returncode == -signal.SIGABRT
    assert b"corrupted" in proc.stdout
    assert b"NOT REACHED" not in proc.stdout
    assert b"memsafe: canary in front of a secret was overwritten" in proc.stderr


def test_canary_corruption_aborts_at_free() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        m = memsafe.MemSafe(64)
        info = m._region_info()
        # Corrupt behind the library's back (no window): only free can notice.
        assert libc.mprotect(info["data"], info["data_len"], 3) == 0
        at = info["secret"] - 16  # flipped: a random canary byte may be 0
        ctypes.memset(at, ctypes.string_at(at, 1)[0] ^ 0xFF, 1)
        assert libc.mprotect(info["data"], info["data_len"], 0) == 0
        print("corrupted", flush=True)
        m.close()
        print("NOT REACHED", flush=True)
        """
    )
    assert proc.returncode == -signal.SIGABRT
    assert b"corrupted" in proc.stdout
    assert b"NOT REACHED" not in proc.stdout
    assert b"canary" in proc.stderr


def test_intact_canary_does_not_abort() -> None:
    proc = run_child(
        """
        import ctypes, memsafe
        m = memsafe.MemSafe(64)
        info = m._region_info()
        with m.write():
            ctypes.memset(info["secret"], 0xFF, 64)
        m.close()
        print("fine")
        """
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == b"fine"
