"""plaintext() never wipes an object that something else may still hold
(issue 17): when memsafe cannot prove that nothing but the finished call,
the with-statement's own name and memsafe hold it, the object is left
intact and PlaintextWarning says so.

Each test gives the object to a holder that outlives the call (a closure,
another thread's running frame, a generator, a coroutine, a kept locals()
dict, an exception's arguments or notes, another name in the with-block),
then checks that the holder still sees the secret and that the warning was
issued.  Before the fix, the closure, thread, locals() and with-form cases
wiped the object under their holder.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any

import helpers
import pytest

import memsafe

SECRET = b"correct horse battery staple"
TEXT = "h\xfcnter2-" + "x" * 20


@pytest.fixture(autouse=True)
def _plaintext_warnings_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", memsafe.PlaintextWarning)
        yield


class Boom(Exception):
    pass


def unproven(kind: str = "bytes") -> Any:
    return pytest.warns(
        memsafe.PlaintextWarning,
        match=rf"left its {kind} intact: memsafe could not prove",
    )


def left_intact(kind: str = "bytes") -> Any:
    return pytest.warns(memsafe.PlaintextWarning, match=rf"left its {kind} intact: ")


def kept(kind: str = "bytes") -> Any:
    return pytest.warns(
        memsafe.PlaintextWarning, match=rf"left its {kind} intact: a reference"
    )


# ---- cells and closures ----------------------------------------------------


def test_retry_closure_in_a_consumer_that_raises() -> None:
    """The issue's reproduction: KEEP.append(lambda: pw), then raise."""
    keep: list[Callable[[], bytes]] = []

    def consumer(pw: bytes) -> None:
        keep.append(lambda: pw)
        raise Boom("retry later")

    with unproven(), pytest.raises(Boom):
        memsafe.SecretBytes(SECRET).plaintext(consumer)
    assert keep[0]() == SECRET


def test_closure_made_deep_below_the_consumer() -> None:
    keep: list[Callable[[], str]] = []

    def helper(x: str) -> None:
        keep.append(lambda: x)
        raise Boom("deep")

    def consumer(t: str) -> None:
        helper(t)

    with unproven("str"), pytest.raises(Boom):
        memsafe.SecretStr(TEXT).plaintext(consumer)
    assert keep[0]() == TEXT


def test_with_target_in_a_cell_shared_with_a_closure() -> None:
    k = memsafe.SecretBytes(SECRET)

    def cell() -> Callable[[], bytes]:
        with unproven(), k.plaintext() as b:
            inner = lambda: b  # noqa: E731 - b becomes a cell
        return inner

    def nonlocal_target() -> bytes:
        b = b""

        def inner() -> None:
            nonlocal b
            with unproven(), k.plaintext() as b:
                pass

        inner()
        return b

    assert cell()() == SECRET
    assert nonlocal_target() == SECRET


# ---- other threads ----------------------------------------------------------


def test_other_threads_running_frame_in_the_traceback() -> None:
    """A worker catches an exception and keeps running with the bytes in a
    local; the consumer re-raises that exception, so the worker's frame is
    in its traceback - but it is running, not finished."""
    seen: list[bool] = []
    ready, go = threading.Event(), threading.Event()
    caught: list[BaseException] = []
    inbox: list[bytes] = []

    def worker() -> None:
        secret = inbox.pop()
        try:
            raise Boom("from the worker")
        except Boom as e:
            caught.append(e)
        ready.set()
        go.wait(30)
        seen.append(secret == SECRET)

    workers: list[threading.Thread] = []

    def consumer(pw: bytes) -> None:
        inbox.append(pw)
        workers.append(threading.Thread(target=worker, daemon=True))
        workers[0].start()
        assert ready.wait(30)
        raise caught[0]

    try:
        with left_intact(), pytest.raises(Boom):
            memsafe.SecretBytes(SECRET).plaintext(consumer)
    finally:
        go.set()
    for t in workers:  # only ours: other tests leave daemon threads running
        t.join(30)
    assert seen == [True]


# ---- generators and coroutines -----------------------------------------------


def test_suspended_generator_in_the_traceback() -> None:
    seen: list[bool] = []
    caught: list[BaseException] = []
    keep: list[Generator[None, None, None]] = []

    def gen(inbox: list[bytes]) -> Generator[None, None, None]:
        secret = inbox.pop()
        try:
            raise Boom("in the generator")
        except Boom as e:
            caught.append(e)
        yield
        seen.append(secret == SECRET)

    def consumer(pw: bytes) -> None:
        g = gen([pw])
        next(g)
        keep.append(g)
        raise caught[0]

    with left_intact(), pytest.raises(Boom):
        memsafe.SecretBytes(SECRET).plaintext(consumer)
    assert next(keep[0], None) is None
    assert seen == [True]


def test_suspended_coroutine_holds_it() -> None:
    seen: list[bool] = []
    keep: list[Coroutine[Any, Any, None]] = []

    async def co(inbox: list[str]) -> None:
        secret = inbox.pop()
        await asyncio.sleep(0)
        seen.append(secret == TEXT)

    def consumer(t: str) -> None:
        c = co([t])
        c.send(None)  # runs up to the sleep
        keep.append(c)
        raise Boom("later")

    with kept("str"), pytest.raises(Boom):
        memsafe.SecretStr(TEXT).plaintext(consumer)
    with pytest.raises(StopIteration):
        keep[0].send(None)
    assert seen == [True]


# ---- tracebacks, exception arguments and notes -----------------------------


def test_kept_locals_of_a_finished_frame() -> None:
    """3.10-3.12: locals() of the consumer is its frame's snapshot dict,
    which the traceback keeps; kept elsewhere, it is a holder."""
    keep: list[dict[str, Any]] = []

    def consumer(pw: bytes) -> None:
        keep.append(locals())
        raise Boom("x")

    with left_intact(), pytest.raises(Boom):
        memsafe.SecretBytes(SECRET).plaintext(consumer)
    assert keep[0]["pw"] == SECRET


def test_exception_arguments_hold_it() -> None:
    def consumer(pw: bytes) -> None:
        raise Boom(pw)

    with kept(), pytest.raises(Boom) as info:
        memsafe.SecretBytes(SECRET).plaintext(consumer)
    assert info.value.args == (SECRET,)


def test_exception_notes_hold_it() -> None:
    def consumer(t: str) -> None:
        e = Boom("x")
        e.__notes__ = [t]  # what add_note() does on 3.11+
        raise e

    with kept("str"), pytest.raises(Boom) as info:
        memsafe.SecretStr(TEXT).plaintext(consumer)
    assert info.value.__notes__ == [TEXT]


def test_finished_frames_alone_are_still_wiped() -> None:
    """The other side of the rule: plain locals of finished frames are
    accounted for, so an exception alone does not stop the wipe."""

    def helper(x: bytes) -> None:
        raise Boom("no content")

    def consumer(pw: bytes) -> None:
        helper(pw)

    with pytest.raises(Boom) as info:
        memsafe.SecretBytes(SECRET).plaintext(consumer)
    tb = info.value.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_name != "helper":
        tb = tb.tb_next
    assert tb is not None
    assert tb.tb_frame.f_locals["x"] == bytes(len(SECRET))


# ---- the with-form: only the `as` name is accounted for --------------------


def test_with_form_other_name_then_target_rebound() -> None:
    k = memsafe.SecretBytes(SECRET)
    with kept(), k.plaintext() as b:
        keep = b
        b = None  # the point of the test
    assert keep == SECRET


def test_with_form_target_deleted() -> None:
    k = memsafe.SecretBytes(SECRET)
    box: list[bytes] = []
    with kept(), k.plaintext() as b:
        box.append(b)
        del b
    assert box == [SECRET]


def test_with_form_global_then_del() -> None:
    out = helpers.ok(
        helpers.run_child(
            """
            import warnings, memsafe
            warnings.simplefilter("error", memsafe.PlaintextWarning)
            k = memsafe.SecretBytes(b"top secret")
            def f():
                global G
                with k.plaintext() as b:
                    G = b
                    del b
            try:
                f()
            except memsafe.PlaintextWarning as w:
                print("warned", "a reference" in str(w))
            print(G == b"top secret")
            """
        )
    )
    assert out.split() == ["warned", "True", "True"]


def test_with_form_entered_by_hand_names_nothing() -> None:
    """__enter__ called outside a with-statement: the result's name is
    whatever the caller stores it in; an exit from another frame explains
    nothing, so a kept result is left intact."""
    k = memsafe.SecretBytes(SECRET)
    ctx = k.plaintext()
    b = ctx.__enter__()

    def elsewhere() -> None:
        ctx.__exit__(None, None, None)

    with kept():
        elsewhere()
    assert b == SECRET


def test_with_target_found_on_this_python() -> None:
    import memsafe._frames as frames

    class Probe:
        got: tuple[int, str | None] = (0, None)

        def __enter__(self) -> Probe:
            Probe.got = frames.with_target(sys._getframe(1))
            return self

        def __exit__(self, *a: object) -> None:
            pass

    with Probe() as p:
        assert p is not None
    assert Probe.got == (frames.FAST, "p")
    with Probe():
        pass
    assert Probe.got == (frames.POP, None)


# ---- 3.10/3.11: the wchar_t copy PyUnicode_AsUnicodeAndSize caches ---------

needs_wstr = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="str has no cached wchar_t copy on 3.12+"
)

AS_UNICODE = """
import ctypes
as_unicode = ctypes.pythonapi.PyUnicode_AsUnicodeAndSize
as_unicode.restype = ctypes.c_void_p
as_unicode.argtypes = [ctypes.py_object, ctypes.c_void_p]
"""


def ucs4(secret: bytes) -> bytes:
    return secret.decode().encode(
        "utf-32-le" if sys.byteorder == "little" else "utf-32-be"
    )


@needs_wstr
@helpers.linux_only
@helpers.not_sanitized
def test_wstr_copy_is_wiped(tmp_path: Any) -> None:
    """A consumer that asks for the str's wchar_t form (ctypes' c_wchar_p,
    C extensions using PyUnicode_AsUnicode) leaves a UCS-4 copy cached on
    the str; plaintext() wipes it with the text."""
    from integration import _leak

    res = _leak.scan_after(
        AS_UNICODE
        + """
def consumer(t):
    assert as_unicode(t, None)
password.plaintext(consumer)
with password.plaintext() as t:
    assert as_unicode(t, None)
""",
        tmp_path,
        encode=ucs4,
    )
    _leak.no_copy(res)


@needs_wstr
@helpers.linux_only
@helpers.not_sanitized
def test_wstr_copy_positive_control(tmp_path: Any) -> None:
    """The same consumer on a str memsafe does not wipe (reveal()), then
    freed: the scan finds the UCS-4 copy it left."""
    from integration import _leak

    res = _leak.scan_after(
        AS_UNICODE
        + """
t = password.reveal()
assert as_unicode(t, None)
del t
""",
        tmp_path,
        encode=ucs4,
    )
    _leak.copy_found(res)


@needs_wstr
def test_wstr_wiped_in_place() -> None:
    """The cached copy itself reads as zeros after the block (read back
    through the same API, which returns the cached pointer)."""
    import ctypes

    as_unicode = ctypes.pythonapi.PyUnicode_AsUnicodeAndSize
    as_unicode.restype = ctypes.c_void_p
    as_unicode.argtypes = [ctypes.py_object, ctypes.c_void_p]
    s = memsafe.SecretStr(TEXT)
    with s.plaintext() as t:
        p = as_unicode(t, None)
        assert ctypes.wstring_at(p, len(TEXT)) == TEXT
    assert as_unicode(t, None) == p  # still the cached copy
    assert ctypes.wstring_at(p, len(TEXT)) == "\0" * len(TEXT)
