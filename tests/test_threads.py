"""Windows from many threads: counted readers, exclusive writers, no
deadlock, exact final state."""

from __future__ import annotations

import sys
import threading

from helpers import LINUX

import memsafe
from memsafe import _kernel

THREADS = 8
WINDOWS = 10_000


def test_many_readers_and_refused_writers() -> None:
    secret = memsafe.MemSafe(b"shared secret")
    errors: list[BaseException] = []
    refused = [0]
    start = threading.Barrier(THREADS + 2)
    stop = threading.Event()

    done = [0] * THREADS
    reader_refused = [0] * THREADS

    def reader(i: int) -> None:
        try:
            start.wait()
            while done[i] < WINDOWS:
                try:
                    with secret.read() as view:
                        if bytes(view) != b"shared secret":
                            raise AssertionError("content changed")
                    done[i] += 1
                except BufferError:  # a writer got in first: try again
                    reader_refused[i] += 1
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def writer() -> None:
        start.wait()
        while not stop.is_set():
            try:
                with secret.write() as view:
                    view[0] = ord("s")  # same byte: content stays intact
            except BufferError:
                refused[0] += 1

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(THREADS)]
    writers = [threading.Thread(target=writer) for _ in range(2)]
    for t in readers + writers:
        t.start()
    for t in readers:
        t.join(timeout=300)
    stop.set()
    for t in writers:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in readers + writers), "deadlock"
    assert errors == []
    assert done == [WINDOWS] * THREADS
    assert refused[0] > 0, "writers never met an open read window"
    if LINUX:
        assert _kernel.perms_at(secret._region_info()["data"]) == "---p"
    assert secret.read(bytes) == b"shared secret"
    secret.close()


def test_concurrent_readers_with_a_write_window_get_buffer_error() -> None:
    secret = memsafe.MemSafe(b"x" * 64)
    outcomes: list[str] = []
    with secret.write():

        def try_read() -> None:
            try:
                secret.read(bytes)
                outcomes.append("read")
            except BufferError:
                outcomes.append("refused")

        threads = [threading.Thread(target=try_read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert outcomes == ["refused"] * 4
    assert secret.read(bytes) == b"x" * 64


def test_close_from_another_thread_while_reading_is_refused() -> None:
    secret = memsafe.SecretBytes(b"abc")
    results: list[str] = []
    with secret.read() as view:

        def close() -> None:
            try:
                secret.close()
                results.append("closed")
            except BufferError:
                results.append("refused")

        t = threading.Thread(target=close)
        t.start()
        t.join()
        assert bytes(view) == b"abc"
    assert results == ["refused"]
    secret.close()


def test_gil_status_reported() -> None:
    """On a free-threaded build, importing memsafe keeps the GIL off."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_enabled is not None and "free-threading" in sys.version:
        assert is_enabled() is False
