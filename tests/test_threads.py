"""Windows from many threads: counted readers, exclusive writers, no
deadlock, exact final state."""

from __future__ import annotations

import sys
import threading

from helpers import at_rest

import memsafe

THREADS = 8
WINDOWS = 10_000


def test_many_readers_and_refused_writers() -> None:
    secret = memsafe.MemSafe(b"shared secret")
    errors: list[BaseException] = []
    refused = [0]
    start = threading.Barrier(THREADS + 2)
    stop = threading.Event()
    # The overlap that the assertions below rely on is made certain, not
    # hoped for: reader 0 holds a read window open until every writer has
    # been refused once (the scheduler may interleave the rest as it likes).
    held = threading.Event()
    writers_refused = threading.Barrier(3)

    done = [0] * THREADS
    reader_refused = [0] * THREADS

    def reader(i: int) -> None:
        try:
            start.wait()
            if i == 0:
                with secret.read() as view:
                    held.set()
                    writers_refused.wait(timeout=60)
                    if bytes(view) != b"shared secret":
                        raise AssertionError("content changed")
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
        try:
            start.wait()
            held.wait(timeout=60)
            try:
                with secret.write():
                    raise AssertionError("write window opened during a read")
            except BufferError:
                refused[0] += 1
            writers_refused.wait(timeout=60)
            while not stop.is_set():
                try:
                    with secret.write() as view:
                        view[0] = ord("s")  # same byte: content stays intact
                except BufferError:
                    refused[0] += 1
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

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
    assert refused[0] >= 2, "each writer meets the held read window"
    assert at_rest(secret)
    assert secret.read(bytes) == b"shared secret"
    secret.close()


def test_shared_arenas_under_windows_writers_allocations_and_frees() -> None:
    """Secrets that share arenas (sealed) or not (guarded): 8 threads each
    open windows on their own and on shared secrets, rewrite their own with
    a known pattern, and create and free short-lived secrets in between.
    No crash, every final content exact, the pools' bookkeeping sound."""
    shared = [memsafe.SecretBytes(bytes([i]) * 32) for i in range(16)]
    own = [memsafe.MemSafe(32) for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    rounds = WINDOWS // 10

    def work(i: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                k = shared[(i + r) % len(shared)]
                with k.read() as view:
                    if bytes(view) != bytes([(i + r) % len(shared)]) * 32:
                        raise AssertionError("shared content changed")
                with own[i].write() as view:
                    view[:] = bytes([(i * 31 + r) % 256]) * 32
                tmp = memsafe.SecretBytes.random(24 + r % 40)
                if r % 3:
                    tmp.close()
                for _ in range(8):
                    own[i].read(len)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert errors == []
    for i, m in enumerate(own):
        assert m.read(bytes) == bytes([(i * 31 + rounds - 1) % 256]) * 32
        assert at_rest(m)
    for i, k in enumerate(shared):
        assert k.read(bytes) == bytes([i]) * 32
    assert memsafe._memsafe._stats()["pools_consistent"] is True


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
