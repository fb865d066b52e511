"""MemSafe: the API contract, bad input, and every method on a closed object."""

from __future__ import annotations

import copy
import hashlib
import pickle
import sys

import pytest
from helpers import memory_of

import memsafe


def content(m: memsafe.Secret) -> bytes:
    return m.read(bytes)


def test_size_constructor_gives_zero_bytes() -> None:
    m = memsafe.MemSafe(32)
    assert len(m) == 32
    assert content(m) == bytes(32)


def test_default_is_empty() -> None:
    assert len(memsafe.MemSafe()) == 0


@pytest.mark.parametrize(
    "source",
    [b"seed", bytearray(b"seed"), memoryview(b"xseedx")[1:5], b""],
)
def test_copy_constructor_from_bytes_like(source: bytes) -> None:
    m = memsafe.MemSafe(source)
    assert content(m) == bytes(source)


def test_copy_constructor_from_another_secret() -> None:
    src = memsafe.SecretBytes(b"abc")
    assert content(memsafe.MemSafe(src)) == b"abc"
    assert content(memsafe.SecretBytes(memsafe.MemSafe(b"xyz"))) == b"xyz"


def test_wipe_source_wipes_a_writable_source() -> None:
    src = bytearray(b"password")
    m = memsafe.MemSafe(src, wipe_source=True)
    assert src == bytearray(8)
    assert content(m) == b"password"


def test_wipe_source_false_leaves_source() -> None:
    src = bytearray(b"password")
    memsafe.MemSafe(src, wipe_source=False)
    assert src == b"password"


def test_wipe_source_on_read_only_raises_before_copying() -> None:
    with pytest.raises(TypeError, match="writable"):
        memsafe.MemSafe(b"password", wipe_source=True)
    with pytest.raises(TypeError, match="writable"):
        memsafe.SecretBytes(b"password", wipe_source=True)


def test_write_window_and_closure_forms() -> None:
    m = memsafe.MemSafe(4)
    with m.write() as view:
        assert isinstance(view, memoryview)
        assert view.format == "B" and not view.readonly and len(view) == 4
        view[:] = b"abcd"
    m.write(lambda v: v.__setitem__(0, ord("z")))
    assert content(m) == b"zbcd"
    with m.read() as view:
        assert view.readonly and view.format == "B"
        with pytest.raises(TypeError):
            view[0] = 1  # type: ignore[index]


def test_read_closure_returns_result_and_propagates_errors() -> None:
    m = memsafe.MemSafe(b"data")
    assert (
        m.read(lambda v: hashlib.sha256(v).digest()) == hashlib.sha256(b"data").digest()
    )
    with pytest.raises(ZeroDivisionError):
        m.read(lambda v: 1 / 0)
    assert content(m) == b"data"  # the window was closed anyway
    with pytest.raises(TypeError):
        m.read(42)  # type: ignore[call-overload]


def test_closure_view_is_released_after_the_call() -> None:
    m = memsafe.MemSafe(b"data")
    kept: list[memoryview] = []
    m.read(kept.append)
    with pytest.raises(ValueError, match="released"):
        bytes(kept[0])


def test_extend_grows_inside_secure_memory() -> None:
    m = memsafe.MemSafe(b"seed")
    m.extend(b" more")
    m.extend(bytearray(b"!"))
    m.extend(memsafe.SecretBytes(b"?"))
    assert content(m) == b"seed more!?"
    m.extend(m)
    assert content(m) == b"seed more!?" * 2
    with pytest.raises(TypeError):
        m.extend(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        m.extend("text")  # type: ignore[arg-type]


def test_extend_refused_while_window_open() -> None:
    m = memsafe.MemSafe(b"seed")
    with m.read(), pytest.raises(BufferError):
        m.extend(b"x")
    assert content(m) == b"seed"


def test_repr_and_str_never_show_content() -> None:
    m = memsafe.MemSafe(b"hunter2")
    assert repr(m) == "MemSafe('**********')"
    assert str(m) == repr(m)
    assert "hunter2" not in repr(m) + str(m) + format(m)
    m.close()
    assert repr(m) == "<closed MemSafe>"


def test_not_hashable_not_picklable() -> None:
    m = memsafe.MemSafe(b"k")
    with pytest.raises(TypeError):
        hash(m)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(m, protocol)


def test_copy_and_deepcopy_are_independent_secure_copies() -> None:
    m = memsafe.MemSafe(b"abc")
    for c in (copy.copy(m), copy.deepcopy(m)):
        assert type(c) is memsafe.MemSafe and c is not m
        assert memory_of(c) != memory_of(m)
        assert content(c) == b"abc"
        c.write(lambda v: v.__setitem__(0, 0))
        assert content(m) == b"abc"
        c.close()
    assert not m.closed


def test_context_manager_closes() -> None:
    with memsafe.MemSafe(8) as m:
        assert not m.closed
    assert m.closed


def test_close_is_idempotent() -> None:
    m = memsafe.MemSafe(8)
    m.close()
    m.close()
    assert m.closed


CLOSED_CALLS = [
    ("len", lambda m: len(m)),
    ("read", lambda m: m.read().__enter__()),
    ("read-closure", lambda m: m.read(bytes)),
    ("write", lambda m: m.write().__enter__()),
    ("write-closure", lambda m: m.write(bytes)),
    ("extend", lambda m: m.extend(b"x")),
    ("locked", lambda m: m.locked),
    ("copy", lambda m: copy.copy(m)),
    ("eq", lambda m: m == b"x"),
    ("compare_digest", lambda m: memsafe.compare_digest(m, b"x")),
    ("enter", lambda m: m.__enter__()),
    ("region_info", lambda m: m._region_info()),
    ("copy-source", lambda m: memsafe.MemSafe(m)),
    ("extend-source", lambda m: memsafe.MemSafe(1).extend(m)),
]


@pytest.mark.parametrize("name,call", CLOSED_CALLS, ids=[c[0] for c in CLOSED_CALLS])
def test_every_method_on_closed_object_raises_value_error(name, call) -> None:  # type: ignore[no-untyped-def]
    m = memsafe.MemSafe(b"x")
    m.close()
    with pytest.raises(ValueError, match="closed"):
        call(m)
    assert m.closed
    repr(m)
    m.close()


@pytest.mark.parametrize("bad", ["text", 1.5, None, object(), [1, 2], True])
def test_wrong_types_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        memsafe.MemSafe(bad)  # type: ignore[arg-type]


def test_negative_sizes_raise_value_error() -> None:
    for n in (-1, -(2**70)):
        with pytest.raises(ValueError):
            memsafe.MemSafe(n)


@pytest.mark.parametrize("n", [sys.maxsize, 2**62, 2**64, 2**100, 2**47 * 3])
def test_sizes_beyond_memory_fail_cleanly(n: int) -> None:
    with pytest.raises((MemoryError, OSError)):
        memsafe.MemSafe(n)


def test_zero_length_secret_is_allowed() -> None:
    m = memsafe.MemSafe(0)
    assert len(m) == 0
    with m.read() as view:
        assert len(view) == 0 and bytes(view) == b""
    with m.write() as view:
        assert len(view) == 0
    assert hashlib.sha256(b"").digest() == m.read(lambda v: hashlib.sha256(v).digest())
    m.close()


def test_window_entered_twice_is_an_error() -> None:
    m = memsafe.MemSafe(1)
    w = m.read()
    with w, pytest.raises(RuntimeError):
        w.__enter__()
    with pytest.raises(RuntimeError):
        w.__enter__()
    assert w.__exit__(None, None, None) is False  # idempotent exit


def test_window_exit_without_enter_is_harmless() -> None:
    m = memsafe.MemSafe(1)
    assert m.read().__exit__(None, None, None) is False
    assert m.write().__exit__(None, None, None) is False
    with m.write():
        pass


def test_only_a_window_view_exports_a_buffer() -> None:
    """The secret object itself never exports a buffer, in a window or not
    (the message says to pass the view); a window's view does."""
    m = memsafe.MemSafe(b"abc")
    for attempt in (memoryview, hashlib.sha256, bytearray, bytes):
        with pytest.raises(BufferError, match="view"):
            attempt(m)  # type: ignore[operator]
    with m.read() as view:
        with pytest.raises(BufferError, match="view"):
            memoryview(m)
        with pytest.raises(BufferError):
            hashlib.sha256(m)
        assert view.readonly and bytes(view) == b"abc"
        assert hashlib.sha256(view).digest() == hashlib.sha256(b"abc").digest()
    with m.write() as view:
        with pytest.raises(BufferError):
            memoryview(m)
        assert not view.readonly
    m.close()


def test_secret_types_share_the_base() -> None:
    assert issubclass(memsafe.MemSafe, memsafe.Secret)
    assert issubclass(memsafe.SecretBytes, memsafe.Secret)
    assert issubclass(memsafe.SecretStr, memsafe.Secret)
    with pytest.raises(TypeError):
        memsafe.Secret()
    assert not hasattr(memsafe.SecretBytes(b""), "write")


def test_subclass_keeps_protections() -> None:
    class ApiKey(memsafe.SecretBytes):
        pass

    k = ApiKey(b"abc")
    assert repr(k) == "ApiKey('**********')"
    assert k == b"abc"
    assert type(copy.copy(k)) is ApiKey
    k.close()


def test_class_mixing_two_secret_types_is_refused() -> None:
    class Mixed(memsafe.MemSafe, memsafe.SecretStr):  # type: ignore[misc]
        pass

    with pytest.raises(TypeError, match="more than one"):
        Mixed(b"\xff\xfe")


def test_read_and_write_on_closed_secret_raise_at_once() -> None:
    m = memsafe.MemSafe(1)
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.read()
    with pytest.raises(ValueError, match="closed"):
        m.write()


# ---- sizes are integers first (operator.index) -------------------------------


class Index:
    """An integer-like object, as numpy.int64 is: __index__ and a buffer."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n


def test_anything_with_index_is_a_size() -> None:
    m = memsafe.MemSafe(Index(32))
    assert len(m) == 32 and m.read(bytes) == bytes(32)
    m.close()
    k = memsafe.SecretBytes.random(Index(16))
    assert len(k) == 16
    with pytest.raises(TypeError):
        memsafe.SecretBytes(Index(16))  # SecretBytes copies data, never a size


def test_ctypes_and_numpy_integers_are_sizes_not_buffers() -> None:
    """numpy and ctypes integers also export a buffer (their 8 bytes): they
    are sizes all the same, never data to copy."""
    import ctypes

    for n in (ctypes.c_int(32), ctypes.c_uint64(32), ctypes.c_short(32)):
        m = memsafe.MemSafe(n)
        assert len(m) == 32 and m.read(bytes) == bytes(32), type(n)
        m.close()
    np = pytest.importorskip("numpy")
    m = memsafe.MemSafe(np.int64(32))
    assert len(m) == 32 and m.read(bytes) == bytes(32)
    assert len(memsafe.SecretBytes.random(np.uint16(24))) == 24
    m.close()


def test_bool_is_not_a_size() -> None:
    with pytest.raises(TypeError):
        memsafe.MemSafe(True)
    with pytest.raises(TypeError):
        memsafe.SecretBytes.random(True)


# ---- windows and views are unhashable ----------------------------------------


def test_window_and_its_view_are_unhashable() -> None:
    """A cached hash of the plaintext would outlive the window."""
    k = memsafe.SecretBytes(b"hash me")
    w = k.read()
    with pytest.raises(TypeError):
        hash(w)
    with w as view:
        with pytest.raises(TypeError):
            hash(view)
        with pytest.raises(TypeError):
            hash(view[1:])
        with pytest.raises(TypeError):
            _ = {view: 1}
    k.close()


class _Truthy:
    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value


class _BadBool:
    def __bool__(self) -> bool:
        raise RuntimeError("no truth value")


class _Name(str):
    pass


@pytest.mark.storage("any")
@pytest.mark.parametrize("engine", ["guarded", "sealed"])
def test_constructor_keywords_on_the_fast_and_the_slow_path(engine: str) -> None:
    """The hot constructors parse keywords by interned name, falling back to
    PyArg for everything else: both paths give the same results and errors."""
    built = "".join(["sto", "rage"])  # not interned
    for kw in ({"storage": engine}, {built: engine}, {_Name("storage"): engine}):
        made = (
            memsafe.SecretBytes(b"abc", **kw),
            memsafe.MemSafe(b"abc", **kw),
            memsafe.SecretStr("abc", **kw),
            memsafe.SecretBytes.random(3, **kw),
        )
        for s in made:
            assert s._region_info()["storage"] == engine
            assert len(s) == 3
            s.close()
    src = bytearray(b"wipe me")
    s = memsafe.SecretBytes(src, wipe_source=_Truthy(True), storage=engine)
    assert src == bytearray(7) and s.reveal() == b"wipe me"
    src = bytearray(b"keep me")
    s = memsafe.SecretBytes(src, wipe_source=_Truthy(False), storage=engine)
    assert src == bytearray(b"keep me") and s.reveal() == b"keep me"
    with pytest.raises(RuntimeError, match="no truth value"):
        memsafe.SecretBytes(bytearray(b"x"), wipe_source=_BadBool(), storage=engine)
    with pytest.raises(TypeError, match="bogus"):
        memsafe.SecretBytes(b"x", bogus=1, storage=engine)
    with pytest.raises(TypeError):
        memsafe.SecretBytes(b"x", b"y", storage=engine)
    with pytest.raises(TypeError):
        memsafe.SecretStr("x", wipe_source=True, storage=engine)
    with pytest.raises(TypeError):
        memsafe.SecretBytes.random(storage=engine)
    with pytest.raises(TypeError):
        memsafe.SecretBytes.random(3, 4)
    with pytest.raises(ValueError, match="guarded"):
        memsafe.SecretBytes(b"x", storage="other")
