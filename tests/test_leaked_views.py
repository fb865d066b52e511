"""Views that outlive their window: BufferError, never a crash, and the
memory returns to no-access once the last view is released."""

from __future__ import annotations

import gc
import hashlib
import threading

import pytest
from helpers import linux_only

import memsafe
from memsafe import _kernel


def perms(m: memsafe.Secret) -> str | None:
    return _kernel.perms_at(m._region_info()["data"])


# The page protections these tests follow are the guarded engine's; the
# sealed engine's counting is the same and is checked without them.
guarded_pages = pytest.mark.storage("guarded")


@linux_only
@guarded_pages
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
@guarded_pages
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
@guarded_pages
def test_leaked_memoryview_of_the_view() -> None:
    m = memsafe.MemSafe(b"abc")
    with pytest.raises(BufferError), m.read() as view:
        outer = memoryview(view)
    assert bytes(outer) == b"abc"
    del outer
    gc.collect()
    assert perms(m) == "---p"


def test_leak_from_one_window_never_fails_another() -> None:
    """Exports are counted per window: a view leaked from one window makes
    that window's exit raise, never another, correct window's - in
    whichever thread closes last - and read(fn) keeps fn's result."""
    m = memsafe.SecretBytes(b"abcdef")
    first = m.read()
    view = first.__enter__()
    leaked = view[1:3]
    with m.read() as other:  # correct: nothing kept; closes last of the two
        assert bytes(other) == b"abcdef"
        with pytest.raises(BufferError, match="1 view"):
            first.__exit__(None, None, None)
    assert m.read(bytes) == b"abcdef"  # fn's result is not lost
    results: list[object] = []

    def reader() -> None:
        try:
            results.append(m.read(lambda v: bytes(v[:2])))
        except BaseException as e:  # pragma: no cover - reported below
            results.append(e)

    t = threading.Thread(target=reader)
    t.start()
    t.join()
    assert results == [b"ab"]
    assert bytes(leaked) == b"bc"  # the leak still works: never a crash
    leaked.release()
    m.close()


@linux_only
@pytest.mark.storage("guarded")
def test_window_dropped_without_exit_closes_without_the_gc() -> None:
    """A window entered and then dropped (no __exit__) closes as soon as the
    last reference goes: it forms no cycle with its view."""
    m = memsafe.MemSafe(b"abc")
    gc.disable()
    try:
        w = m.read()
        view = w.__enter__()
        del w
        assert perms(m) == "r--p"  # the view keeps the window open
        assert bytes(view) == b"abc"
        del view
        assert perms(m) == "---p"  # no gc.collect() needed
        m.close()
    finally:
        gc.enable()


def test_window_dropped_without_exit_lets_close_succeed() -> None:
    m = memsafe.SecretBytes(b"abc")
    gc.disable()
    try:
        m.read().__enter__()  # the view is dropped at once, then the window
        with m.write().__enter__() if isinstance(m, memsafe.MemSafe) else m.read():
            pass
        m.close()  # would be BufferError if the window were still open
        assert m.closed
    finally:
        gc.enable()


def test_secret_object_exports_nothing_even_inside_a_window() -> None:
    m = memsafe.SecretBytes(b"abc")
    with m.read() as view:
        with pytest.raises(BufferError, match="view"):
            memoryview(m)
        assert bytes(view) == b"abc"
    m.close()


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


def test_exception_in_block_propagates_with_a_note() -> None:
    """Issue 17: an exception raised inside a window propagates as itself;
    a view still alive after the window closed is reported as a note on
    it, not as a BufferError that would replace it."""
    m = memsafe.MemSafe(b"abc")
    with pytest.raises(KeyError) as info, m.read() as view:
        leaked = view[:1]  # the with-frame still runs: not released
        raise KeyError("inner")
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and "1 view(s) from it are still alive" in notes[0]
    assert notes[0].startswith("memsafe: ")
    assert bytes(leaked) == b"a"
    leaked.release()
    kept: list[memoryview] = []
    with pytest.raises(ZeroDivisionError) as info2:
        m.read(lambda v: (kept.append(v[:1]), 1 / 0))
    assert info2.value.__context__ is None
    assert "still alive" in info2.value.__notes__[0]  # type: ignore[attr-defined]
    kept[0].release()
    m.close()


class Boom(Exception):
    pass


def takes_a_slice(v: memoryview) -> None:
    head = v[:4]  # noqa: F841 - held by this frame, which the traceback keeps
    raise Boom("no content")


def passes_a_slice(v: memoryview) -> None:
    def helper(x: memoryview) -> None:
        raise Boom("deep")

    helper(v[1:3])


@pytest.mark.parametrize("fn", [takes_a_slice, passes_a_slice])
def test_views_of_finished_frames_are_released(fn: object) -> None:
    """fn takes v[:4] and raises: the exception propagates as itself, with
    no note, and the traceback's frames no longer hold a usable view."""
    m = memsafe.SecretBytes(b"secret bytes")
    with pytest.raises(Boom) as info:
        m.read(fn)
    assert not hasattr(info.value, "__notes__")
    views = []
    tb = info.value.__traceback__
    while tb is not None:
        views += [v for v in tb.tb_frame.f_locals.values() if isinstance(v, memoryview)]
        tb = tb.tb_next
    assert views
    for v in views:
        with pytest.raises(ValueError, match="released"):
            bytes(v)
    m.close()  # no view is alive: close() is allowed


def test_with_form_releases_views_of_finished_frames() -> None:
    m = memsafe.SecretBytes(b"secret bytes")
    with pytest.raises(Boom) as info, m.read() as view:
        passes_a_slice(view)
    assert not hasattr(info.value, "__notes__")
    m.close()


@linux_only
@guarded_pages
@pytest.mark.parametrize("fn", [takes_a_slice, passes_a_slice])
def test_page_is_no_access_while_the_exception_lives(fn: object) -> None:
    """Measured against the kernel's page protections: the exception (and
    its traceback with the frames that took slices) is alive, yet the
    secret's pages are back to no-access."""
    m = memsafe.MemSafe(b"secret bytes")
    with pytest.raises(Boom) as info:
        m.read(fn)
    assert info.value.__traceback__ is not None
    assert perms(m) == "---p"
    # Positive control: a slice kept outside any finished frame keeps the
    # pages readable (reported by the note), until it is released.
    kept: list[memoryview] = []

    def keeps(v: memoryview) -> None:
        kept.append(v[:4])
        raise Boom("kept")

    with pytest.raises(Boom) as info2:
        m.read(keeps)
    assert perms(m) == "r--p"
    assert "still alive" in info2.value.__notes__[0]  # type: ignore[attr-defined]
    kept[0].release()
    assert perms(m) == "---p"


def test_view_held_by_a_running_frame_is_not_released() -> None:
    """A frame of the traceback that is still running (here the with-
    statement's own) keeps its view: it is reported, never released under
    it."""
    m = memsafe.SecretBytes(b"secret bytes")
    try:
        with m.read() as view:
            mine = view[:6]
            takes_a_slice(view)
    except Boom as e:
        assert "1 view(s)" in e.__notes__[0]  # type: ignore[attr-defined]
    assert bytes(mine) == b"secret"
    mine.release()
    m.close()


def test_secret_object_given_to_a_late_reader_raises_buffer_error() -> None:
    """An API that keeps the object and reads it later gets BufferError, in
    a window or not (pass the view to APIs that copy the key at once)."""

    class LateReader:
        def __init__(self, key: object) -> None:
            self.key = key

        def use(self) -> bytes:
            return bytes(memoryview(self.key))  # type: ignore[arg-type]

    k = memsafe.SecretBytes(b"k" * 16)
    with k.read():
        reader = LateReader(k)
        with pytest.raises(BufferError):
            reader.use()
    with pytest.raises(BufferError):
        reader.use()
    k.close()
