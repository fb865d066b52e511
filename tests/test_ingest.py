"""Ingestion: SecretBytes.random, .from_file and .from_fd.

Results are checked against the data the test wrote (through a read window,
by content and by sha256) and against the kernel's view of the pages
(/proc/self/smaps VmFlags, /proc/self/maps permissions).  Bad input must
raise the documented exception and leave nothing behind: no locked memory
(VmLck), no extra mappings, no open file descriptors.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import os
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import helpers
import pytest

import memsafe
from memsafe import _kernel

SecretBytes = memsafe.SecretBytes


# ---- helpers ----------------------------------------------------------------


def content(secret: memsafe.Secret) -> bytes:
    """The secret's bytes (a test-only copy, taken through a read window)."""
    with secret.read() as view:
        return bytes(view)


def window_sha256(secret: memsafe.Secret) -> bytes:
    """sha256 of the secret, computed on the window's view (no copy)."""
    with secret.read() as view:
        return hashlib.sha256(view).digest()


def assert_hardened(secret: memsafe.Secret) -> None:
    """Locked, dump-excluded, wiped-on-fork and at rest, per the kernel:
    a guarded secret's data pages are no-access outside windows, a sealed
    secret's arena holds it (as ciphertext) and no plaintext exists."""
    assert secret.locked is True
    info = secret._region_info()
    start = helpers.pages_of(secret)
    size = info["data_len"] if info["storage"] == "guarded" else info["arena_len"]
    m = _kernel.mapping_at(start)
    assert m is not None, "secret pages are not mapped"
    assert m.covers(start + size - 1)
    assert {"lo", "dd"} <= m.vmflags, m.vmflags
    assert "wf" in m.vmflags or "dc" in m.vmflags, m.vmflags
    assert helpers.at_rest(secret)
    if info["storage"] == "guarded":
        with secret.read():
            assert _kernel.perms_at(start) in ("r--p", "r--s")
    else:
        with secret.read():
            assert not helpers.at_rest(secret)
    assert helpers.at_rest(secret)


def pipe_with(data: bytes, *, close: bool = True) -> tuple[int, int]:
    """A pipe holding data; the write end closed if asked.  Data larger than
    a small pipe buffer (Windows pipes hold about 4 KiB) is written by a
    thread, which then closes the write end itself."""
    r, w = os.pipe()
    if len(data) > 4096 and close:
        writer_thread(w, [data], 0.0)
        return r, -1
    os.write(w, data)
    if close:
        os.close(w)
        w = -1
    return r, w


def writer_thread(fd: int, chunks: list[bytes], delay: float) -> threading.Thread:
    """Write chunks to fd with a pause before each, then close fd."""

    def run() -> None:
        try:
            for chunk in chunks:
                time.sleep(delay)
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
        finally:
            os.close(fd)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def mapping_count() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def vmlck_kb() -> int:
    value = _kernel.status_field("VmLck")
    assert value is not None
    return int(value.split()[0])


def pool_use() -> tuple[int, int, int]:
    """Live sealed slots (cipher, window) and registered mappings that are
    not pool arenas: what a failed ingestion must give back.  (Arenas
    themselves stay, by design: they are pooled.)"""
    st = memsafe._memsafe._stats()
    other = st["mappings"] - st["cipher_arenas"] - st["window_arenas"]
    return st["cipher_slots"], st["window_slots"], other


class Footprint:
    """Process resources a failed ingestion must not leave behind."""

    def __init__(self) -> None:
        gc.collect()
        self.fds = open_fds()
        self.maps = mapping_count()
        self.vmlck = vmlck_kb()
        self.arenas = self._arenas()
        self.pool = pool_use()

    @staticmethod
    def _arenas() -> int:
        st = memsafe._memsafe._stats()
        return int(st["cipher_arenas"] + st["window_arenas"])

    def assert_unchanged(self) -> None:
        gc.collect()
        assert open_fds() == self.fds
        if helpers.SANITIZED:
            # ASan makes mlock a no-op and valgrind maps memory of its own
            # at will: only the descriptors can be compared there.
            return
        assert pool_use() == self.pool
        if self._arenas() != self.arenas:
            return  # a new pool arena (kept for later secrets) maps pages
        assert vmlck_kb() == self.vmlck
        assert mapping_count() == self.maps


@pytest.fixture
def footprint() -> Iterator[Footprint]:
    if not _kernel.available():
        pytest.skip("needs /proc")
    yield Footprint()


def file_with(tmp_path: pathlib.Path, data: bytes, name: str = "key") -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---- SecretBytes.random -------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 32, 4079, 4080, 4081, 4096, 10000])
def test_random_lengths(n: int) -> None:
    k = SecretBytes.random(n)
    assert type(k) is SecretBytes
    assert len(k) == n
    assert len(content(k)) == n
    k.close()
    assert k.closed


def test_random_is_random() -> None:
    a, b = SecretBytes.random(32), SecretBytes.random(32)
    assert a != b
    assert content(a) != bytes(32)
    big = SecretBytes.random(1 << 16)
    with big.read() as view:
        assert len(set(view)) == 256  # P(a value missing) ~ 256 * e**-256


@helpers.not_sanitized
@helpers.linux_only
@pytest.mark.parametrize("n", [32, 5000])
def test_random_is_hardened(n: int) -> None:
    assert_hardened(SecretBytes.random(n))


def test_random_subclass() -> None:
    class Key(SecretBytes):
        pass

    k = Key.random(8)
    assert type(k) is Key
    assert len(k) == 8


@pytest.mark.parametrize(
    ("arg", "exc"),
    [
        (-1, ValueError),
        (-(2**80), ValueError),
        ("x", TypeError),
        (b"32", TypeError),
        (1.0, TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_random_bad_argument(arg: Any, exc: type[BaseException]) -> None:
    with pytest.raises(exc):
        SecretBytes.random(arg)


def test_random_huge_sizes_fail_cleanly() -> None:
    # In a child: a bug here could try to allocate (or lock) terabytes.
    out = helpers.ok(
        helpers.run_child(
            """
            import memsafe
            for n in (2**62, 2**63 - 1, 2**63, 2**64, 2**80):
                try:
                    memsafe.SecretBytes.random(n)
                except (MemoryError, ValueError) as e:
                    print(n, type(e).__name__)
                else:
                    print(n, "no error")
            """,
            timeout=60,
        )
    )
    lines = out.splitlines()
    assert len(lines) == 5, out
    for line in lines:
        assert line.endswith(("MemoryError", "ValueError")), out


def _limit_data() -> None:
    import resource

    # mprotect(PROT_WRITE) of a private mapping counts against RLIMIT_DATA:
    # the allocation below fails at once instead of touching real memory.
    resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))


@helpers.linux_only
@helpers.not_sanitized
def test_random_too_large_for_memory_is_memoryerror() -> None:
    # The reservation (PROT_NONE) succeeds; making it writable fails.
    out = helpers.ok(
        helpers.run_child(
            """
            import memsafe
            try:
                memsafe.SecretBytes.random(2**36)
            except BaseException as e:
                print(type(e).__name__, getattr(e, "errno", None))
            """,
            preexec_fn=_limit_data,
            timeout=60,
        )
    )
    assert out.split()[0] == "MemoryError", out


# ---- SecretBytes.from_file ----------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 32, 4079, 4080, 4081, 8160, 8161, 70000])
def test_from_file_roundtrip(tmp_path: pathlib.Path, n: int) -> None:
    data = os.urandom(n)
    k = SecretBytes.from_file(file_with(tmp_path, data))
    assert type(k) is SecretBytes
    assert len(k) == n
    assert content(k) == data


@pytest.mark.parametrize("kind", ["str", "bytes", "pathlike"])
def test_from_file_path_types(tmp_path: pathlib.Path, kind: str) -> None:
    data = os.urandom(48)
    path = file_with(tmp_path, data)
    arg: Any = {"str": str(path), "bytes": os.fsencode(path), "pathlike": path}[kind]
    assert content(SecretBytes.from_file(arg)) == data


def test_from_file_does_not_keep_the_fd(tmp_path: pathlib.Path) -> None:
    path = file_with(tmp_path, b"k" * 100)
    before = open_fds()
    for _ in range(20):
        SecretBytes.from_file(path).close()
    assert open_fds() == before


def test_from_file_big_file_crosses_growth(tmp_path: pathlib.Path) -> None:
    # 5 MB: the scratch region starts at one page and doubles about 11 times.
    data = os.urandom(5 * 1024 * 1024 + 123)
    path = file_with(tmp_path, data)
    k = SecretBytes.from_file(path, max_size=None)
    assert len(k) == len(data)
    assert window_sha256(k) == hashlib.sha256(path.read_bytes()).digest()


@helpers.not_sanitized
@helpers.linux_only
def test_from_file_is_hardened(tmp_path: pathlib.Path) -> None:
    assert_hardened(SecretBytes.from_file(file_with(tmp_path, os.urandom(32))))
    assert_hardened(SecretBytes.from_file(file_with(tmp_path, os.urandom(9000))))


@helpers.not_sanitized
def test_from_file_missing(tmp_path: pathlib.Path, footprint: Footprint) -> None:
    path = tmp_path / "no-such-key"
    for _ in range(10):
        with pytest.raises(FileNotFoundError) as info:
            SecretBytes.from_file(path)
        assert isinstance(info.value, OSError)
        assert info.value.errno == errno.ENOENT
        assert os.fspath(info.value.filename) == str(path)
    footprint.assert_unchanged()


@helpers.not_sanitized
def test_from_file_directory(tmp_path: pathlib.Path, footprint: Footprint) -> None:
    for _ in range(10):
        # Windows refuses to open a directory: PermissionError (EACCES).
        expected = PermissionError if sys.platform == "win32" else IsADirectoryError
        with pytest.raises(expected) as info:
            SecretBytes.from_file(tmp_path)
        assert info.value.errno in (errno.EISDIR, errno.EACCES)
    footprint.assert_unchanged()


@helpers.posix_only
def test_from_file_unreadable_as_unprivileged_user() -> None:
    # root ignores file permissions: drop to 'nobody' in a child.
    proc = helpers.run_child(
        """
        import os, sys, tempfile
        import memsafe
        try:
            os.setgid(65534)
            os.setuid(65534)
        except OSError:
            print("cannot drop privileges")
            sys.exit(0)
        d = tempfile.mkdtemp()
        path = os.path.join(d, "key")
        with open(path, "wb") as f:
            f.write(b"top secret bytes")
        os.chmod(path, 0)
        try:
            memsafe.SecretBytes.from_file(path)
        except PermissionError as e:
            print("PermissionError", e.errno, e.filename == path)
            print("leak" if "top secret" in str(e) else "clean")
        os.unlink(path)
        os.rmdir(d)
        """
    )
    out = helpers.ok(proc)
    if out.startswith("cannot drop privileges"):
        pytest.skip("cannot switch to uid 65534 here")
    assert out.split() == ["PermissionError", str(errno.EACCES), "True", "clean"]


def test_from_file_bad_type() -> None:
    with pytest.raises(TypeError):
        SecretBytes.from_file(3.5)
    with pytest.raises(TypeError):
        SecretBytes.from_file(None)


# ---- SecretBytes.from_fd ------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 32, 4080, 4081, 60000])
def test_from_fd_pipe_to_eof(n: int) -> None:
    data = os.urandom(n)
    r, _ = pipe_with(data)
    try:
        k = SecretBytes.from_fd(r)
        assert len(k) == n
        assert content(k) == data
        os.fstat(r)  # the descriptor stays open: the caller owns it
    finally:
        os.close(r)


def test_from_fd_pipe_in_pieces() -> None:
    # Many short reads, across several scratch growths.
    data = os.urandom(150_000)
    chunks = [data[i : i + 7001] for i in range(0, len(data), 7001)]
    r, w = os.pipe()
    t = writer_thread(w, chunks, 0.001)
    try:
        k = SecretBytes.from_fd(r)
    finally:
        t.join(10)
        os.close(r)
    assert window_sha256(k) == hashlib.sha256(data).digest()


def test_from_fd_exact_size_leaves_the_rest() -> None:
    r, _ = pipe_with(b"0123456789abcdef")
    try:
        k = SecretBytes.from_fd(r, size=10)
        assert content(k) == b"0123456789"
        assert os.read(r, 100) == b"abcdef"
        k2 = SecretBytes.from_fd(r, 0)
        assert len(k2) == 0
    finally:
        os.close(r)


def test_from_fd_exact_size_in_pieces() -> None:
    data = os.urandom(20000)
    r, w = os.pipe()
    t = writer_thread(w, [data[:3], data[3:9000], data[9000:]], 0.01)
    try:
        k = SecretBytes.from_fd(r, size=len(data))
    finally:
        t.join(10)
        os.close(r)
    assert content(k) == data


def test_from_fd_regular_file_from_current_offset(tmp_path: pathlib.Path) -> None:
    data = os.urandom(3000)
    fd = os.open(file_with(tmp_path, data), os.O_RDONLY)
    try:
        os.lseek(fd, 1000, os.SEEK_SET)
        assert content(SecretBytes.from_fd(fd, size=500)) == data[1000:1500]
        assert os.lseek(fd, 0, os.SEEK_CUR) == 1500
        assert content(SecretBytes.from_fd(fd)) == data[1500:]
    finally:
        os.close(fd)


def test_from_fd_big_file_roundtrip(tmp_path: pathlib.Path) -> None:
    data = os.urandom(5 * 1024 * 1024)
    path = file_with(tmp_path, data)
    expect = hashlib.sha256(path.read_bytes()).digest()
    with open(path, "rb", buffering=0) as f:
        k = SecretBytes.from_fd(f.fileno(), max_size=len(data))
    assert len(k) == len(data)
    assert window_sha256(k) == expect
    with open(path, "rb", buffering=0) as f:
        k2 = SecretBytes.from_fd(f.fileno(), size=len(data), max_size=None)
    assert window_sha256(k2) == expect
    assert k == k2


@helpers.not_sanitized
@helpers.linux_only
def test_from_fd_is_hardened() -> None:
    for size in (None, 32):
        r, _ = pipe_with(os.urandom(32))
        try:
            assert_hardened(SecretBytes.from_fd(r, size=size))
        finally:
            os.close(r)


@helpers.not_sanitized
def test_from_fd_short_input_is_eoferror(footprint: Footprint) -> None:
    for _ in range(5):
        r, _ = pipe_with(b"partial-secret")
        try:
            with pytest.raises(EOFError) as info:
                SecretBytes.from_fd(r, size=64)
        finally:
            os.close(r)
        assert "partial-secret" not in str(info.value)
        assert "14" in str(info.value) and "64" in str(info.value)
    footprint.assert_unchanged()


def test_from_fd_closed_fd_is_ebadf(footprint: Footprint) -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    for size in (None, 16):
        with pytest.raises(OSError) as info:
            SecretBytes.from_fd(r, size=size)
        assert info.value.errno == errno.EBADF
    footprint.assert_unchanged()


def test_from_fd_write_only_fd_is_ebadf() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as info:
            SecretBytes.from_fd(w)
        assert info.value.errno == errno.EBADF
    finally:
        os.close(r)
        os.close(w)


def test_from_fd_nonblocking_empty_pipe() -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        with pytest.raises(BlockingIOError):
            SecretBytes.from_fd(r)
        with pytest.raises(BlockingIOError):
            SecretBytes.from_fd(r, size=4)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc"),
    [
        ((-1,), {}, ValueError),
        ((-5,), {"size": 4}, ValueError),
        (("3",), {}, TypeError),
        ((None,), {}, TypeError),
        ((0,), {"size": -1}, ValueError),
        ((0,), {"size": True}, TypeError),
        ((0,), {"size": 1.5}, TypeError),
        ((0,), {"size": "4"}, TypeError),
    ],
)
def test_from_fd_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[BaseException]
) -> None:
    with pytest.raises(exc):
        SecretBytes.from_fd(*args, **kwargs)


def test_from_fd_huge_size_is_memoryerror() -> None:
    r, _ = pipe_with(b"x")
    try:
        with pytest.raises((MemoryError, ValueError)):
            SecretBytes.from_fd(r, size=2**80, max_size=None)
        with pytest.raises(MemoryError):
            SecretBytes.from_fd(r, size=2**62, max_size=None)
        with pytest.raises(ValueError, match="max_size"):
            SecretBytes.from_fd(r, size=2**62)  # beyond the default limit
    finally:
        os.close(r)


# ---- signals while reading ------------------------------------------------


class Interrupted(Exception):
    pass


def _with_timer(handler: Callable[[int, Any], None], fn: Callable[[], Any]) -> Any:
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    try:
        return fn()
    finally:
        # Block SIGALRM while cancelling, so a tick still pending cannot
        # arrive after the old (default: terminate) handler is back.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
        signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
@pytest.mark.parametrize("size", [None, 40])
def test_from_fd_retries_after_a_harmless_signal(size: int | None) -> None:
    # EINTR with a handler that returns normally: the read goes on.
    data = os.urandom(40)
    calls: list[int] = []
    r, w = os.pipe()
    t = writer_thread(w, [data[:10], data[10:]], 0.2)
    try:
        k = _with_timer(
            lambda s, f: calls.append(s), lambda: SecretBytes.from_fd(r, size=size)
        )
    finally:
        t.join(10)
        os.close(r)
    assert calls, "the timer never fired during the read"
    assert content(k) == data


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
@pytest.mark.parametrize("size", [None, 40])
def test_from_fd_signal_handler_exception_propagates(
    size: int | None, footprint: Footprint
) -> None:
    r, w = os.pipe()
    os.write(w, b"half")

    def boom(signum: int, frame: Any) -> None:
        raise Interrupted

    try:
        with pytest.raises(Interrupted):
            _with_timer(boom, lambda: SecretBytes.from_fd(r, size=size))
    finally:
        os.close(r)
        os.close(w)
    footprint.assert_unchanged()


# ---- max_size: a key file never needs more; /dev/zero must not eat RAM ---


def test_default_limits_are_documented_values() -> None:
    import inspect

    assert "max_size=1048576" in str(inspect.signature(SecretBytes.from_file))
    assert "max_size=1048576" in str(inspect.signature(SecretBytes.from_fd))
    assert "max_size=65536" in str(inspect.signature(memsafe.SecretStr.getpass))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_stops_at_the_limit(footprint: Footprint) -> None:
    """/dev/zero is endless: the read stops one byte past max_size, raises
    ValueError, and leaves nothing behind (the partial secret is wiped)."""
    for limit in (0, 1, 4096, 100_000):
        with pytest.raises(ValueError, match=f"max_size={limit} "):
            SecretBytes.from_file("/dev/zero", max_size=limit)
    with pytest.raises(ValueError, match="max_size=1048576"):
        SecretBytes.from_file("/dev/zero")  # the default limit
    footprint.assert_unchanged()


def test_limit_is_inclusive(tmp_path: pathlib.Path) -> None:
    data = os.urandom(5000)
    path = file_with(tmp_path, data)
    assert SecretBytes.from_file(path, max_size=5000).read(bytes) == data
    with pytest.raises(ValueError, match="max_size=4999"):
        SecretBytes.from_file(path, max_size=4999)
    r, _ = pipe_with(data)
    try:
        with pytest.raises(ValueError, match="max_size=100"):
            SecretBytes.from_fd(r, max_size=100)
    finally:
        os.close(r)
    r, _ = pipe_with(data)
    try:
        with pytest.raises(ValueError, match="larger than max_size"):
            SecretBytes.from_fd(r, size=5000, max_size=10)
        assert SecretBytes.from_fd(r, size=5000, max_size=5000).read(bytes) == data
    finally:
        os.close(r)


@pytest.mark.parametrize("bad", [-1, "10", 1.5, True])
def test_bad_max_size(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        SecretBytes.from_file("/dev/null", max_size=bad)  # type: ignore[arg-type]


# ---- strip_newline= and SecretStr.from_fd -------------------------------------

STRIP_CASES = [
    (b"key\n", b"key"),
    (b"key\r\n", b"key"),
    (b"key", b"key"),
    (b"key\n\n", b"key\n"),  # one line end only
    (b"key\r\n\r\n", b"key\r\n"),
    (b"key\r", b"key\r"),  # a lone "\r" is not a line end
    (b"\n", b""),
    (b"\r\n", b""),
    (b"", b""),
    (b"k\ne\ny\n", b"k\ne\ny"),  # newlines inside are data
]


@pytest.mark.parametrize(("data", "expect"), STRIP_CASES)
def test_from_fd_strip_newline(data: bytes, expect: bytes) -> None:
    r, _ = pipe_with(data)
    try:
        k = SecretBytes.from_fd(r, strip_newline=True)
    finally:
        os.close(r)
    assert content(k) == expect
    assert len(k) == len(expect)


@pytest.mark.parametrize(("data", "expect"), STRIP_CASES)
def test_from_file_strip_newline(
    tmp_path: pathlib.Path, data: bytes, expect: bytes
) -> None:
    path = file_with(tmp_path, data)
    assert content(SecretBytes.from_file(path, strip_newline=True)) == expect
    assert content(SecretBytes.from_file(path)) == data  # the default keeps it


def test_from_fd_keeps_the_newline_by_default() -> None:
    r, _ = pipe_with(b"key\n")
    try:
        assert content(SecretBytes.from_fd(r)) == b"key\n"
    finally:
        os.close(r)


def test_strip_newline_across_scratch_growth() -> None:
    # The line end is the last byte of a read that grew the scratch region.
    data = os.urandom(9000).replace(b"\n", b"x").replace(b"\r", b"y") + b"\r\n"
    r, _ = pipe_with(data)
    try:
        k = SecretBytes.from_fd(r, strip_newline=True, max_size=len(data))
    finally:
        os.close(r)
    assert window_sha256(k) == hashlib.sha256(data[:-2]).digest()


def test_strip_newline_counts_against_max_size_before_stripping() -> None:
    # max_size bounds what is read: "key\n" is 4 bytes.
    r, _ = pipe_with(b"key\n")
    try:
        with pytest.raises(ValueError, match="max_size"):
            SecretBytes.from_fd(r, strip_newline=True, max_size=3)
    finally:
        os.close(r)


def test_strip_newline_with_size_is_refused() -> None:
    r, _ = pipe_with(b"key\n")
    try:
        with pytest.raises(ValueError, match="size="):
            SecretBytes.from_fd(r, 4, strip_newline=True)
        assert os.read(r, 10) == b"key\n"  # nothing was read
    finally:
        os.close(r)


@helpers.not_sanitized
@helpers.linux_only
def test_strip_newline_result_is_hardened() -> None:
    r, _ = pipe_with(os.urandom(32).replace(b"\n", b"x") + b"\n")
    try:
        k = SecretBytes.from_fd(r, strip_newline=True)
    finally:
        os.close(r)
    assert len(k) == 32
    assert_hardened(k)


@pytest.mark.parametrize("strip", [False, True])
def test_secretstr_from_fd(strip: bool) -> None:
    text = "pässwörd ✓"
    r, _ = pipe_with(text.encode() + b"\r\n")
    try:
        s = memsafe.SecretStr.from_fd(r, strip_newline=strip)
    finally:
        os.close(r)
    assert isinstance(s, memsafe.SecretStr)
    expect = text if strip else text + "\r\n"
    assert s == memsafe.SecretStr(expect)
    assert len(s) == len(expect)
    assert s.nbytes == len(expect.encode())


def test_secretstr_from_fd_exact_size() -> None:
    r, _ = pipe_with("héllo".encode() + b"rest")
    try:
        s = memsafe.SecretStr.from_fd(r, size=6)
        assert os.read(r, 10) == b"rest"
    finally:
        os.close(r)
    assert len(s) == 5 and s.nbytes == 6
    assert s == memsafe.SecretStr("héllo")


@pytest.mark.parametrize("size", [None, 3])
def test_secretstr_from_fd_invalid_utf8(size: int | None, footprint: Footprint) -> None:
    for _ in range(3):
        r, _ = pipe_with(b"a\xffb\n")
        try:
            with pytest.raises(ValueError, match="offset 1") as e:
                memsafe.SecretStr.from_fd(r, size=size)
        finally:
            os.close(r)
        assert "\\xff" not in str(e.value)
    footprint.assert_unchanged()


def test_secretstr_from_fd_subclass() -> None:
    class Token(memsafe.SecretStr):
        pass

    r, _ = pipe_with(b"tok\n")
    try:
        t = Token.from_fd(r, strip_newline=True)
    finally:
        os.close(r)
    assert type(t) is Token and t == memsafe.SecretStr("tok")
