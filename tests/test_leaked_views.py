"""Views that outlive their window: BufferError, never a crash, and the
memory returns to no-access once the last view is released."""

from __future__ import annotations

import gc
import hashlib

import pytest
from helpers import linux_only

import memsafe
from memsafe import _kernel


def perms(m: memsafe.Secret) -> str | None:
    return _kernel.perms_at(m._region_info()["data"])


@linux_only
def test_leaked_slice_raises_and_keeps_memory_readable_until_released() -> None:
    m = memsafe.MemSafe(b"secret bytes")
    with pytest.raises(BufferError, match="still alive"), m.read() as view:
        leaked = view[2:8]
    # The slice is still usable: the pages stayed readable for it.
    assert perms(m) == "r--p"
    assert bytes(leaked) == b"cret b"
    with pytest.raises(BufferError):
        m.close()  # refused while the slice lives
    leaked.release()
    assert perms(m) == "---p"
    m.close()


@linux_only
def test_leaked_writable_slice_keeps_rw_then_drops_to_none() -> None:
    m = memsafe.MemSafe(8)
    with pytest.raises(BufferError), m.write() as view:
        leaked = view[:4]
    assert perms(m) == "rw-p"
    leaked[0] = 65  # still writable: no crash
    with pytest.raises(BufferError):
        m.read().__enter__()  # a live writable view blocks readers
    with pytest.raises(BufferError):
        m.write().__enter__()
    del leaked
    gc.collect()
    assert perms(m) == "---p"
    assert m.read(bytes) == b"A" + bytes(7)


@linux_only
def test_leaked_memoryview_of_the_view() -> None:
    m = memsafe.MemSafe(b"abc")
    with pytest.raises(BufferError), m.read() as view:
        outer = memoryview(view)
    assert bytes(outer) == b"abc"
    del outer
    gc.collect()
    assert perms(m) == "---p"


@linux_only
def test_leaked_secret_level_view_is_reported_at_last_window_close() -> None:
    m = memsafe.SecretBytes(b"abc")
    with pytest.raises(BufferError), m.read():
        direct = memoryview(m)
    assert bytes(direct) == b"abc"
    direct.release()
    assert perms(m) == "---p"


def test_view_kept_by_a_consumer_is_released() -> None:
    m = memsafe.SecretBytes(b"abc")
    with m.read() as view:
        h = hashlib.sha256(view)  # hashlib copies what it needs, keeps nothing
    assert h.digest() == hashlib.sha256(b"abc").digest()
    m.close()


def test_released_view_inside_block_is_fine() -> None:
    m = memsafe.MemSafe(b"abc")
    with m.read() as view:
        view.release()
    with m.read() as view:
        s = view[1:]
        s.release()
    m.close()


def test_window_view_unusable_after_exit() -> None:
    m = memsafe.MemSafe(b"abc")
    with m.read() as view:
        pass
    with pytest.raises(ValueError):
        bytes(view)


def test_exception_in_block_is_kept_as_context() -> None:
    m = memsafe.MemSafe(b"abc")
    with pytest.raises(BufferError) as info, m.read() as view:
        leaked = view[:1]
        raise KeyError("inner")
    assert isinstance(info.value.__context__, KeyError)
    leaked.release()
    with pytest.raises(BufferError) as info2:
        m.read(lambda v: (kept.append(v[:1]), 1 / 0))
    assert isinstance(info2.value.__context__, ZeroDivisionError)
    kept[0].release()
    m.close()


kept: list[memoryview] = []


@linux_only
def test_secret_object_given_to_a_late_reader_raises_buffer_error() -> None:
    """An API that keeps the object and reads it later gets BufferError."""

    class LateReader:
        def __init__(self, key: object) -> None:
            self.key = key

        def use(self) -> bytes:
            return bytes(memoryview(self.key))  # type: ignore[arg-type]

    k = memsafe.SecretBytes(b"k" * 16)
    with k.read():
        reader = LateReader(k)
        assert reader.use() == b"k" * 16
    with pytest.raises(BufferError):
        reader.use()
    assert perms(k) == "---p"
