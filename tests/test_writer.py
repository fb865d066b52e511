"""SecretBytes.from_writer and SecretStr.from_writer: a secret written by a
function straight into secret memory, through a write window's view.

What is checked, over both engines: the view fn gets (writable, format
"B", len == size, zeros, the secret's own memory); what fn writes becomes
the secret, at rest afterwards; every failure (fn raised, a view kept past
fn, a short write, invalid UTF-8, the window closed by hand) makes no
secret, leaves no copy in the process (leak scans of a child) and releases
the memory (the pools' counters); bad arguments are refused before any
memory is made.
"""

from __future__ import annotations

import ctypes
import gc
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from helpers import LINUX, at_rest, pages_of

import memsafe
from memsafe._memsafe import _stats

TYPES = (memsafe.SecretBytes, memsafe.SecretStr)


def usage() -> tuple[int, int, int]:
    """What the pools hold: guarded mappings, sealed cipher and window slots."""
    s = _stats()
    return s["mappings"], s["cipher_slots"], s["window_slots"]


def fill(data: bytes) -> Callable[[memoryview], None]:
    def fn(v: memoryview) -> None:
        v[:] = data

    return fn


# ---- what fn gets, what the secret holds ----------------------------------


def test_fn_gets_a_writable_zeroed_byte_view_of_the_secret(storage: str) -> None:
    seen: list[Any] = []

    def fn(v: memoryview) -> None:
        seen.extend([v.format, v.itemsize, len(v), v.readonly, v.nbytes, bytes(v)])
        v[:] = b"0123456789abcdef"

    k = memsafe.SecretBytes.from_writer(16, fn)
    assert seen == ["B", 1, 16, False, 16, bytes(16)]
    assert type(k) is memsafe.SecretBytes
    assert k.storage == storage
    assert k.reveal() == b"0123456789abcdef"
    assert len(k) == 16
    assert at_rest(k)


@pytest.mark.parametrize("engine", ["guarded", "sealed"])
def test_storage_keyword_chooses_the_engine(engine: str) -> None:
    k = memsafe.SecretBytes.from_writer(3, fill(b"abc"), storage=engine)
    assert k.storage == engine
    assert k == b"abc"


def test_keywords_and_subclasses() -> None:
    class Key(memsafe.SecretBytes):
        pass

    k = Key.from_writer(size=2, fn=fill(b"hi"))
    assert type(k) is Key and k == b"hi"
    t = memsafe.SecretStr.from_writer(2, fill(b"ok"))
    assert type(t) is memsafe.SecretStr and t == "ok"


def test_size_zero() -> None:
    seen = []
    k = memsafe.SecretBytes.from_writer(0, lambda v: seen.append(len(v)))
    assert seen == [0] and k.reveal() == b""
    t = memsafe.SecretStr.from_writer(0, lambda v: None)
    assert t.reveal() == "" and len(t) == 0


def test_large_secret_spanning_pages() -> None:
    data = bytes(range(256)) * 40  # 10240 bytes: several pages
    k = memsafe.SecretBytes.from_writer(len(data), fill(data))
    assert k.reveal() == data
    assert at_rest(k)


@pytest.mark.skipif(not LINUX, reason="needs /proc/self/maps")
@pytest.mark.storage("guarded")
def test_guarded_view_is_the_secrets_own_pages_rw_then_no_access() -> None:
    from memsafe import _kernel

    inside: list[Any] = []

    def fn(v: memoryview) -> None:
        c = ctypes.c_char.from_buffer(v)
        inside.append(ctypes.addressof(c))
        del c
        inside.append(_kernel.perms_at(inside[0]))
        v[0] = 1

    k = memsafe.SecretBytes.from_writer(8, fn)
    info = k._region_info()
    assert inside == [info["secret"], "rw-p"]
    assert _kernel.perms_at(pages_of(k)) == "---p"


@pytest.mark.storage("sealed")
def test_sealed_plaintext_only_in_a_window_slot_then_sealed() -> None:
    before = usage()
    during: list[tuple[int, int, int]] = []

    def fn(v: memoryview) -> None:
        during.append(usage())
        v[:] = b"sealed once"

    k = memsafe.SecretBytes.from_writer(11, fn)
    # While fn ran: the plaintext in one window slot (beside the cipher
    # slot the secret will be sealed into).
    assert during == [(before[0], before[1] + 1, before[2] + 1)]
    # Afterwards: one cipher slot, no plaintext slot left.
    assert usage() == (before[0], before[1] + 1, before[2])
    assert k._region_info()["plaintext"] == 0
    assert k == b"sealed once"


def test_secretstr_validates_utf8_and_counts_characters() -> None:
    text = "p\xe4ss \u20ac \U0001f511"
    raw = text.encode()
    t = memsafe.SecretStr.from_writer(len(raw), fill(raw))
    assert t.reveal() == text
    assert len(t) == len(text)
    assert t.nbytes == len(raw)
    assert t == text


@pytest.mark.parametrize(
    "bad",
    [b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"],
    ids=["ff", "truncated", "surrogate", "overlong", "above-10ffff"],
)
def test_secretstr_refuses_invalid_utf8_and_keeps_nothing(bad: bytes) -> None:
    before = usage()
    with pytest.raises(ValueError, match="not valid UTF-8"):
        memsafe.SecretStr.from_writer(len(bad), fill(bad))
    assert usage() == before


# ---- fn's result -------------------------------------------------------------


def test_fn_may_return_none_or_the_number_of_bytes_written() -> None:
    def count(v: memoryview) -> int:
        v[:] = b"abcd"
        return 4

    assert memsafe.SecretBytes.from_writer(4, count) == b"abcd"

    class Four:
        def __index__(self) -> int:
            return 4

    assert memsafe.SecretBytes.from_writer(4, lambda v: Four()) == bytes(4)
    assert memsafe.SecretBytes.from_writer(4, fill(b"wxyz")) == b"wxyz"


@pytest.mark.parametrize(
    "result", [3, 5, -1, 2**70], ids=["short", "long", "neg", "huge"]
)
def test_a_short_write_reported_by_fn_keeps_nothing(result: int) -> None:
    before = usage()
    with pytest.raises(ValueError, match="partly written secret is not kept"):
        memsafe.SecretBytes.from_writer(4, lambda v: result)
    assert usage() == before


@pytest.mark.parametrize("result", [True, b"abcd", 4.0, "4"])
def test_fn_returning_anything_else_is_a_type_error(result: object) -> None:
    before = usage()
    with pytest.raises(TypeError, match="must return None or the number"):
        memsafe.SecretBytes.from_writer(4, lambda v: result)
    assert usage() == before


# ---- failures ----------------------------------------------------------------


@pytest.mark.parametrize("cls", TYPES)
def test_an_exception_in_fn_propagates_unchanged_and_releases_everything(
    cls: type[memsafe.SecretBytes],
) -> None:
    before = usage()
    boom = KeyError("from fn")

    def fn(v: memoryview) -> None:
        v[:] = b"x" * len(v)
        raise boom

    with pytest.raises(KeyError) as info:
        cls.from_writer(8, fn)
    assert info.value is boom
    assert info.value.__context__ is None
    assert usage() == before


@pytest.mark.parametrize("cls", TYPES)
def test_a_view_kept_past_fn_is_a_buffer_error_and_the_content_is_wiped(
    cls: type[memsafe.SecretBytes],
) -> None:
    before = usage()
    kept: list[memoryview] = []

    def fn(v: memoryview) -> None:
        v[:] = b"k" * len(v)
        kept.append(v[2:])

    with pytest.raises(BufferError, match="still alive after fn returned"):
        cls.from_writer(8, fn)
    # The slice still works (never a crash) and reads the wiped memory.
    assert bytes(kept[0]) == bytes(6)
    kept[0][0] = 1  # writable as it was handed out: harmless
    assert usage() != before  # held by the slice...
    kept.pop().release()
    gc.collect()
    assert usage() == before  # ...and released with it


def test_the_whole_view_kept_past_fn_is_a_buffer_error_too() -> None:
    kept: list[memoryview] = []

    def fn(v: memoryview) -> None:
        v[:] = b"whole"
        kept.append(memoryview(v))

    with pytest.raises(BufferError):
        memsafe.SecretBytes.from_writer(5, fn)
    assert bytes(kept[0]) == bytes(5)
    kept.clear()
    gc.collect()


def test_the_view_itself_is_revoked_when_fn_returns() -> None:
    kept: list[memoryview] = []
    memsafe.SecretBytes.from_writer(4, kept.append)
    with pytest.raises(ValueError, match="released"):
        bytes(kept[0])
    with pytest.raises(ValueError, match="released"):
        kept[0][0] = 1


def test_fn_raising_with_a_leaked_view_raises_buffer_error_from_it() -> None:
    kept: list[memoryview] = []

    def fn(v: memoryview) -> None:
        kept.append(v[:1])
        raise LookupError("first")

    with pytest.raises(BufferError) as info:
        memsafe.SecretBytes.from_writer(4, fn)
    assert isinstance(info.value.__context__, LookupError)
    kept.clear()
    gc.collect()


def test_closing_the_window_by_hand_inside_fn_keeps_nothing() -> None:
    before = usage()

    def fn(v: memoryview) -> None:
        window = v.obj
        v[:] = b"abcd"
        with pytest.raises(RuntimeError, match="entered only once"):
            window.__enter__()  # type: ignore[union-attr]
        window.__exit__(None, None, None)  # type: ignore[union-attr]

    with pytest.raises(RuntimeError, match="closed before fn returned"):
        memsafe.SecretBytes.from_writer(4, fn)
    assert usage() == before


def test_a_window_kept_past_fn_cannot_reopen_or_export() -> None:
    kept: list[Any] = []
    memsafe.SecretBytes.from_writer(4, lambda v: kept.append(v.obj))
    with pytest.raises(BufferError, match="not open"):
        memoryview(kept[0])
    with pytest.raises(RuntimeError):
        kept[0].__enter__()
    assert kept[0].__exit__(None, None, None) is False


def test_purge_inside_fn_keeps_nothing() -> None:
    from helpers import ok, run_child

    out = ok(
        run_child(
            """
            import memsafe
            def fn(v):
                v[:] = b"abcd"
                memsafe.purge()
            try:
                memsafe.SecretBytes.from_writer(4, fn)
                print("made")
            except ValueError as e:
                print("purged" in str(e))
            print(memsafe.SecretBytes.from_writer(2, lambda v: None).reveal())
            """
        )
    )
    assert out.split() == ["True", "b'\\x00\\x00'"]


# ---- bad arguments: refused before any memory is made ----------------------


@pytest.mark.parametrize("cls", TYPES)
@pytest.mark.parametrize(
    ("size", "exc", "match"),
    [
        (True, TypeError, "bool"),
        (-1, ValueError, "negative"),
        ("8", TypeError, "'str'"),
        (8.0, TypeError, "'float'"),
        (None, TypeError, "'NoneType'"),
        (b"8", TypeError, "'bytes'"),
        (2**64, MemoryError, "address space"),
    ],
)
def test_bad_sizes_raise_as_the_constructors_do(
    cls: type[memsafe.SecretBytes], size: object, exc: type[Exception], match: str
) -> None:
    called = []
    before = usage()
    with pytest.raises(exc, match=match):
        cls.from_writer(size, called.append)  # type: ignore[arg-type]
    assert called == [] and usage() == before
    # The same error type as SecretBytes.random, which takes a size too.
    with pytest.raises(exc):
        memsafe.SecretBytes.random(size)  # type: ignore[arg-type]


def test_sizes_beyond_what_can_be_allocated_raise_memory_error() -> None:
    called = []
    with pytest.raises((MemoryError, OSError)):
        memsafe.SecretBytes.from_writer(2**62, called.append)
    assert called == []


def test_size_may_be_any_index_or_a_ctypes_integer() -> None:
    class Index:
        def __index__(self) -> int:
            return 3

    assert memsafe.SecretBytes.from_writer(Index(), fill(b"abc")) == b"abc"  # type: ignore[arg-type]
    assert memsafe.SecretBytes.from_writer(ctypes.c_uint8(2), fill(b"ab")) == b"ab"  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", TYPES)
@pytest.mark.parametrize("fn", [None, 3, b"fn", "print"])
def test_fn_not_callable_is_a_type_error_before_any_memory(
    cls: type[memsafe.SecretBytes], fn: object
) -> None:
    before = usage()
    # 2**62 bytes could never be allocated: the TypeError comes first.
    with pytest.raises(TypeError, match="takes a callable"):
        cls.from_writer(2**62, fn)  # type: ignore[arg-type]
    assert usage() == before


def test_argument_errors() -> None:
    with pytest.raises(TypeError):
        memsafe.SecretBytes.from_writer(4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        memsafe.SecretBytes.from_writer(4, print, "sealed")  # type: ignore[misc]
    with pytest.raises(TypeError):
        memsafe.SecretBytes.from_writer(4, print, fork=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="storage"):
        memsafe.SecretBytes.from_writer(4, print, storage="disk")
    assert not hasattr(memsafe.MemSafe, "from_writer")


# ---- leak scans: what fn wrote is nowhere in the process afterwards --------

# The child reads a random secret into `key` (from a file); fn copies it
# into the new secret's view, so a copy anywhere but secret memory is a
# leak.  Positive control: the same bytes put on the heap are found.
COPY_KEY = """
def copy_key(v):
    with key.read() as k:
        v[: len(k)] = k
"""

SCANS = {
    "kept": "made = memsafe.SecretBytes.from_writer(32, copy_key)",
    "kept_str": "made = memsafe.SecretStr.from_writer(32, copy_key)",
    "fn_raised": """
        def fn(v):
            copy_key(v)
            raise KeyError("x")
        try:
            memsafe.SecretBytes.from_writer(32, fn)
        except KeyError:
            pass
        """,
    "short_write": """
        try:
            memsafe.SecretBytes.from_writer(40, lambda v: copy_key(v) or 32)
        except ValueError:
            pass
        """,
    "not_utf8": """
        def fn(v):
            copy_key(v)
            v[32] = 0xFF
        try:
            memsafe.SecretStr.from_writer(33, fn)
        except ValueError:
            pass
        """,
    "leaked_view": """
        kept = []
        def fn(v):
            copy_key(v)
            kept.append(v[:])
        try:
            memsafe.SecretBytes.from_writer(32, fn)
        except BufferError:
            pass
        """,
}


@pytest.mark.parametrize("case", sorted(SCANS))
def test_leak_scan_nothing_fn_wrote_stays_outside_secret_memory(
    case: str, tmp_path: pathlib.Path
) -> None:
    from integration import _leak

    _leak.no_copy(_leak.scan_after(COPY_KEY + SCANS[case], tmp_path))


def test_leak_scan_positive_control(tmp_path: pathlib.Path) -> None:
    from integration import _leak

    code = COPY_KEY + "heap = bytearray(32)\ncopy_key(memoryview(heap))\n"
    _leak.copy_found(_leak.scan_after(code, tmp_path))


def test_threads_make_secrets_concurrently() -> None:
    import threading

    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for n in range(100):
                data = bytes([i]) * (n % 40)
                k = memsafe.SecretBytes.from_writer(len(data), fill(data))
                assert k.reveal() == data
                k.close()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
