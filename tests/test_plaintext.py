"""plaintext(): a fresh bytes/str for consumers that take nothing else,
wiped in place when the call or the with-block is done with it.

Each wipe test would fail without the wipe: after a with-block the
statement's own name still binds the object, so its content, its hash and
(for str) its cached UTF-8 copy can be read back; after the closure form
the object is freed, and the test reads its old address (a 300-byte or
larger block, which the allocator does not hand out again at once - the
positive control with reveal() finds the secret there).  After an
exception the finished frames of the traceback still bind it.
"""

from __future__ import annotations

import asyncio
import copy
import ctypes
import gc
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import helpers
import pytest

import memsafe

SECRET = b"correct horse battery staple"
BYTES_TYPES = [memsafe.SecretBytes, memsafe.MemSafe]
TEXTS = {
    "ascii": "hunter2-" * 5,
    "latin1": "h\xe9llo-\xff" * 5,
    "bmp": "\u043f\u0430\u0440\u043e\u043b\u044c-\u20ac" * 5,
    "astral": "pass\U0001f511-\U00010348" * 5,
}
LENGTHS = [0, 1, 2, 32, 300]
# The interpreter's shared empty objects (what b"" and "" evaluate to).
EMPTY_BYTES = b""
EMPTY_STR = ""


@pytest.fixture(autouse=True)
def _plaintext_warnings_are_errors() -> Iterator[None]:
    """An unexpected PlaintextWarning fails the test that caused it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", memsafe.PlaintextWarning)
        yield


def check(ok: bool) -> None:
    """assert, as a call: pytest's assertion rewriting on 3.10 can turn a
    with-target asserted on into a cell, which plaintext() (rightly)
    refuses to account for."""
    assert ok


def zeros(obj: bytes | str) -> bytes | str:
    return bytes(len(obj)) if isinstance(obj, bytes) else "\0" * len(obj)


def is_interned(s: str) -> bool:
    if hasattr(sys, "_is_interned"):
        return bool(sys._is_interned(s))
    # PyASCIIObject: header, length, hash, then the state bit field
    # whose lowest two bits are `interned`.
    state = ctypes.c_uint32.from_address(id(s) + object.__basicsize__ + 16)
    return state.value & 3 != 0


def utf8_cache(s: str) -> int:
    """Make CPython cache the UTF-8 form on s (as PyUnicode_AsUTF8 callers
    do) and return its address."""
    fn = ctypes.pythonapi.PyUnicode_AsUTF8
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.py_object]
    return int(fn(s))


# ---- fresh objects ---------------------------------------------------------


def check_fresh_bytes(b: bytes, expected: bytes) -> None:
    assert type(b) is bytes
    assert b == expected
    assert b is not EMPTY_BYTES
    if len(b) == 1:
        assert b is not bytes([b[0]])  # the cached one-byte object
    # memsafe's, the arguments', getrefcount's own: nothing like a cache's
    # hundreds (or an immortal object's billions).
    assert sys.getrefcount(b) < 10


def check_fresh_str(t: str, expected: str) -> None:
    assert type(t) is str
    assert t == expected
    assert t is not EMPTY_STR
    if len(t) == 1:
        assert t is not chr(ord(t))  # latin-1 characters are cached
    assert not is_interned(t)
    assert sys.getrefcount(t) < 10


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("cls", BYTES_TYPES)
def test_bytes_are_fresh_objects(cls: type, n: int) -> None:
    data = bytes([0x41]) * n  # b"A", b"AA": values CPython caches or interns
    k = cls(data)
    k.plaintext(lambda b: check_fresh_bytes(b, data))
    with k.plaintext() as b:
        check_fresh_bytes(b, data)
        with k.plaintext() as b2:
            assert b2 is not b


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_str_is_a_fresh_object(kind: str, n: int) -> None:
    text = TEXTS[kind][:n]
    if kind != "ascii" and n == 1:
        text = TEXTS[kind][1]  # a non-ASCII character of the kind
    s = memsafe.SecretStr(text)
    s.plaintext(lambda t: check_fresh_str(t, text))
    with s.plaintext() as t:
        check_fresh_str(t, text)


@pytest.mark.parametrize("text", ["a", "\xe9", "\u20ac", "\U0001f511", ""])
def test_single_characters_are_not_the_cached_ones(text: str) -> None:
    s = memsafe.SecretStr(text)
    with s.plaintext() as t:
        assert t == text
        check_fresh_str(t, text)
    assert t == zeros(text)
    # The interpreter's own objects are untouched.
    assert chr(ord(text)) == text if text else text == ""


# ---- wiped when done -------------------------------------------------------


@pytest.mark.parametrize("cls", BYTES_TYPES)
def test_with_block_wipes_bytes_and_hash(cls: type) -> None:
    k = cls(SECRET)
    with k.plaintext() as b:
        assert b == SECRET
        h = hash(b)  # cached on the object
    assert b == bytes(len(SECRET))
    assert hash(b) == hash(bytes(len(SECRET))) != h


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_with_block_wipes_str_hash_and_utf8_cache(kind: str) -> None:
    text = TEXTS[kind]
    s = memsafe.SecretStr(text)
    utf8 = text.encode()
    with s.plaintext() as t:
        assert t == text
        h = hash(t)
        addr = utf8_cache(t)
        assert ctypes.string_at(addr, len(utf8)) == utf8
    assert t == zeros(text)
    assert hash(t) != h
    assert ctypes.string_at(addr, len(utf8)) == bytes(len(utf8))


OFFSET = sys.getsizeof(b"") - 1  # where a bytes object's data starts


def address_after(k: memsafe.SecretBytes, control: bool) -> int:
    seen: dict[str, int] = {}

    def consumer(b: bytes) -> bool:
        seen["addr"] = id(b)
        return True

    if control:
        consumer(k.reveal())  # a copy nobody wipes, freed on return
    else:
        assert k.plaintext(consumer) is True
    return seen["addr"]


# Reads freed memory on purpose: ASan and valgrind would report it.
@helpers.not_sanitized
@pytest.mark.parametrize("n", [300, 5000])
def test_closure_wipes_before_the_object_is_freed(n: int) -> None:
    secret = os.urandom(n)
    k = memsafe.SecretBytes(secret)
    # Positive control: the freed, unwiped copy is still there.
    addr = address_after(k, control=True)
    assert ctypes.string_at(addr + OFFSET, n) == secret
    addr = address_after(k, control=False)
    assert ctypes.string_at(addr + OFFSET, n) != secret
    assert secret[16:48] not in ctypes.string_at(addr + OFFSET, n)


def test_closure_returns_fn_result_and_secret_stays_usable() -> None:
    k = memsafe.SecretBytes(SECRET)
    assert k.plaintext(len) == len(SECRET)
    assert k.plaintext(lambda b: b.upper()) == SECRET.upper()
    assert k.reveal() == SECRET
    s = memsafe.SecretStr("p\xe4ss")
    assert s.plaintext(str.upper) == "P\xc4SS"
    assert s.reveal() == "p\xe4ss"


def test_memsafe_plaintext_is_a_snapshot() -> None:
    m = memsafe.MemSafe(b"abcd")
    with m.plaintext() as b:
        m.write(lambda v: v.__setitem__(0, ord("z")))
        assert b == b"abcd"
    assert m.plaintext(bytes.decode) == "zbcd"


# ---- where the with-statement runs (3.10-3.13 differ here) ----------------


def _run_contexts(k: memsafe.SecretBytes) -> dict[str, bytes]:
    got: dict[str, Any] = {}

    def plain() -> None:
        with k.plaintext() as b:
            assert b == SECRET
        got["function"] = b

    def no_as() -> None:
        with k.plaintext():
            pass
        got["no-as"] = bytes(len(SECRET))

    def nested() -> None:
        with k.plaintext() as a, k.plaintext() as b:
            with k.plaintext() as c:
                check(a == b == c == SECRET)  # an assert here would make
                check(a is not b and b is not c)  # a cell of them on 3.10
            got["nested-inner"] = c
            check(a == SECRET)
        got["nested-a"], got["nested-b"] = a, b

    def generator() -> Iterator[int]:
        with k.plaintext() as b:
            yield 1
            assert b == SECRET
        got["generator"] = b
        yield 2

    async def coroutine() -> None:
        with k.plaintext() as b:
            await asyncio.sleep(0)
            assert b == SECRET
        got["coroutine"] = b

    class Body:
        with k.plaintext() as b:
            assert b == SECRET

    plain()
    no_as()
    nested()
    assert list(generator()) == [1, 2]
    asyncio.run(coroutine())
    got["class-body"] = Body.b
    ns: dict[str, Any] = {"k": k}
    exec(  # a module-level frame: its locals are its globals
        compile("with k.plaintext() as b:\n    assert b\n", "<module>", "exec"),
        ns,
    )
    got["module"] = ns["b"]
    return got


def test_with_block_in_every_kind_of_frame() -> None:
    got = _run_contexts(memsafe.SecretBytes(SECRET))
    assert {name: b == bytes(len(SECRET)) for name, b in got.items()} == dict.fromkeys(
        got, True
    )
    assert len(got) == 9


def test_with_block_under_a_tracer_reading_f_locals() -> None:
    """Debuggers and coverage tools read frame.f_locals on every line; on
    3.10-3.12 that keeps a snapshot dict on the frame."""

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_locals  # noqa: B018
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        got = _run_contexts(memsafe.SecretBytes(SECRET))
    finally:
        sys.settrace(old)
    assert all(b == bytes(len(SECRET)) for b in got.values()), got


def test_with_block_after_locals_was_called() -> None:
    k = memsafe.SecretBytes(SECRET)
    with k.plaintext() as b:
        assert locals()["b"] == SECRET
    assert b == bytes(len(SECRET))


def test_kept_locals_snapshot() -> None:
    """A locals() dict kept in a variable holds the object: 3.10-3.12 hand
    out the frame's own snapshot, 3.13+ (PEP 667) an independent dict;
    either way it is a reference memsafe cannot account for (issue 17)."""
    k = memsafe.SecretBytes(SECRET)
    with expect_kept("bytes", proven=None), k.plaintext() as b:
        snapshot = locals()
    assert snapshot["b"] == b == SECRET


def test_module_level_with_block_in_a_real_main_module() -> None:
    out = helpers.ok(
        helpers.run_child(
            """
            import warnings, memsafe
            warnings.simplefilter("error", memsafe.PlaintextWarning)
            k = memsafe.SecretBytes(b"top secret")
            with k.plaintext() as b:
                assert b == b"top secret"
            print(b == bytes(10))
            s = memsafe.SecretStr("t\\xf6p")
            with s.plaintext() as t:
                pass
            print(t == "\\0" * 3)
            """
        )
    )
    assert out.split() == ["True", "True"]


def test_global_target_from_a_function() -> None:
    out = helpers.ok(
        helpers.run_child(
            """
            import warnings, memsafe
            warnings.simplefilter("error", memsafe.PlaintextWarning)
            k = memsafe.SecretBytes(b"top secret")
            def f():
                global g
                with k.plaintext() as g:
                    pass
            f()
            print(g == bytes(10))
            """
        )
    )
    assert out.split() == ["True"]


# ---- kept references: left intact, PlaintextWarning ----------------------


def expect_kept(kind: str, proven: bool | None = True) -> Any:
    """The PlaintextWarning for a kept reference (proven=True), for one
    memsafe cannot rule out (False), or either (None)."""
    why = {True: "a reference", False: "memsafe could not prove", None: ""}[proven]
    return pytest.warns(
        memsafe.PlaintextWarning, match=rf"left its {kind} intact: {why}"
    )


def test_consumer_that_keeps_it_gets_it_intact() -> None:
    k = memsafe.SecretBytes(SECRET)
    kept: list[bytes] = []
    with expect_kept("bytes") as record:
        assert k.plaintext(kept.append) is None
    assert kept == [SECRET]
    message = str(record[0].message)
    assert "bytes" in message and "kept" in message
    assert record[0].filename == __file__  # points at the caller


def test_fn_returning_the_plaintext_gets_it_intact() -> None:
    s = memsafe.SecretStr("h\xfcnter2")
    with expect_kept("str"):
        t = s.plaintext(lambda t: t)
    assert t == "h\xfcnter2"


def test_second_name_in_the_block_keeps_it() -> None:
    k = memsafe.SecretBytes(SECRET)
    with expect_kept("bytes"), k.plaintext() as b:
        alias = b
    assert alias == b == SECRET


def test_container_or_attribute_keeps_it() -> None:
    k = memsafe.SecretBytes(SECRET)

    class Holder:
        value: bytes

    h = Holder()
    with expect_kept("bytes"), k.plaintext() as h.value:
        pass
    assert h.value == SECRET
    box: dict[str, bytes] = {}
    with expect_kept("bytes"), k.plaintext() as b:
        box["k"] = b
    assert box["k"] == SECRET


def test_interned_str_is_left_alone() -> None:
    s = memsafe.SecretStr("interned-" + os.urandom(4).hex())
    with pytest.warns(memsafe.PlaintextWarning) as record:
        t = s.plaintext(sys.intern)
    assert t == s.reveal()
    assert sys.intern(s.reveal()) is t
    # Accurate: the intern table holds it, not "a reference was kept".
    message = str(record[0].message)
    assert "left its str intact: it was interned" in message
    assert "a reference to it was kept" not in message


def test_setattr_interns_the_name() -> None:
    s = memsafe.SecretStr("attr_" + os.urandom(4).hex())

    class Holder:
        pass

    with pytest.warns(memsafe.PlaintextWarning, match="it was interned"):
        s.plaintext(lambda t: setattr(Holder, t, 1))
    assert hasattr(Holder, s.reveal())


def test_getattr_and_hasattr_leave_nothing_referenced() -> None:
    """getattr(o, t, default) and hasattr(module, t): on 3.10/3.11 the type
    attribute cache keeps a reference to the name, which memsafe clears
    before counting; the str is then wiped.  (The AttributeError message
    they build and drop is a copy memsafe cannot reach: docs/integration.md
    says so.)"""
    s = memsafe.SecretStr("attr_" + os.urandom(4).hex())

    class Holder:
        pass

    for fn in (lambda t: getattr(Holder(), t, None), lambda t: hasattr(os, t)):
        with s.plaintext() as t:
            assert not fn(t)
        assert t == "\0" * len(s)


def test_getattr_error_keeps_the_name() -> None:
    """An AttributeError that escapes keeps the name as its .name."""
    s = memsafe.SecretStr("attr_" + os.urandom(4).hex())

    class Holder:
        pass

    with expect_kept("str"), pytest.raises(AttributeError) as info:
        s.plaintext(lambda t: getattr(Holder(), t))
    assert info.value.name == s.reveal()


def test_warning_as_error_leaves_result_unreturned() -> None:
    k = memsafe.SecretBytes(SECRET)
    kept: list[bytes] = []
    with pytest.raises(memsafe.PlaintextWarning):
        k.plaintext(kept.append)
    assert kept == [SECRET]


def test_plaintext_warning_class() -> None:
    assert issubclass(memsafe.PlaintextWarning, RuntimeWarning)
    assert memsafe.PlaintextWarning is memsafe._memsafe.PlaintextWarning
    assert "PlaintextWarning" in memsafe.__all__


# ---- exceptions ------------------------------------------------------------


class Boom(Exception):
    pass


def raising(b: bytes) -> None:
    raise Boom("no content here")


def innermost_locals(tb: Any) -> dict[str, Any]:
    while tb.tb_next is not None:
        tb = tb.tb_next
    return dict(tb.tb_frame.f_locals)


def test_exception_in_fn_still_wipes_then_reraises() -> None:
    k = memsafe.SecretBytes(SECRET)
    with pytest.raises(Boom) as info:
        k.plaintext(raising)
    # The traceback keeps fn's frame, which binds the (wiped) object.
    assert innermost_locals(info.value.__traceback__)["b"] == bytes(len(SECRET))


def test_exception_deep_below_fn_still_wipes() -> None:
    s = memsafe.SecretStr("s\xe9cret")

    def check(t: str) -> None:
        helper(t)

    def helper(x: str) -> None:
        raise Boom("deep")

    with pytest.raises(Boom) as info:
        s.plaintext(check)
    assert innermost_locals(info.value.__traceback__)["x"] == "\0" * 6


def test_chained_exception_still_wipes() -> None:
    k = memsafe.SecretBytes(SECRET)

    def fn(b: bytes) -> None:
        try:
            raising(b)
        except Boom as e:
            raise KeyError("wrapped") from e

    with pytest.raises(KeyError) as info:
        k.plaintext(fn)
    cause = info.value.__cause__
    assert innermost_locals(cause.__traceback__)["b"] == bytes(len(SECRET))


def test_exception_in_with_block_still_wipes() -> None:
    k = memsafe.SecretBytes(SECRET)
    with pytest.raises(Boom), k.plaintext() as b:
        raising(b)
    assert b == bytes(len(SECRET))


def test_exception_carrying_the_plaintext_keeps_it() -> None:
    k = memsafe.SecretBytes(SECRET)
    with (
        expect_kept("bytes"),
        pytest.raises(ValueError) as info,
        k.plaintext() as b,
    ):
        raise ValueError(b)
    assert info.value.args[0] == SECRET


def test_warning_error_after_exception_chains_it() -> None:
    k = memsafe.SecretBytes(SECRET)
    kept: list[bytes] = []

    def fn(b: bytes) -> None:
        kept.append(b)
        raise Boom("first")

    with pytest.raises(memsafe.PlaintextWarning) as info:
        k.plaintext(fn)
    assert isinstance(info.value.__context__, Boom)
    assert kept == [SECRET]


# ---- threads ----------------------------------------------------------------


def test_threads_share_a_secret_and_a_context() -> None:
    import threading

    k = memsafe.SecretStr("thr\xe9ad-" * 8)
    expected = k.reveal()
    ctx = k.plaintext()
    entered: list[bool] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait()
            try:
                with ctx as shared:  # only one thread may enter it
                    entered.append(shared == expected)
            except RuntimeError:
                pass
            for _ in range(200):
                assert k.plaintext(lambda t: t == expected)
                with k.plaintext() as t:
                    assert t == expected
                assert t == "\0" * len(expected)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert entered == [True]


# ---- errors and the context object ----------------------------------------


@pytest.mark.parametrize(
    "cls", [memsafe.SecretBytes, memsafe.MemSafe, memsafe.SecretStr]
)
def test_closed_secret_raises_value_error(cls: type) -> None:
    k = cls("x") if cls is memsafe.SecretStr else cls(b"x")
    k.close()
    with pytest.raises(ValueError, match="closed"):
        k.plaintext(len)
    with pytest.raises(ValueError, match="closed"):
        k.plaintext()
    cm = cls("y") if cls is memsafe.SecretStr else cls(b"y")
    ctx = cm.plaintext()
    cm.close()
    with pytest.raises(ValueError, match="closed"):
        ctx.__enter__()


@helpers.posix_only
def test_forked_secret_raises_value_error() -> None:
    k = memsafe.SecretBytes(SECRET)
    pid = os.fork()
    if pid == 0:
        code = 0
        for call in (lambda: k.plaintext(len), lambda: k.plaintext()):
            try:
                call()
                code |= 1
            except ValueError as e:
                if "parent process" not in str(e):
                    code |= 2
            except BaseException:
                code |= 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert k.plaintext(len) == len(SECRET)


def test_bad_arguments() -> None:
    k = memsafe.SecretBytes(SECRET)
    with pytest.raises(TypeError, match="callable"):
        k.plaintext(42)
    with pytest.raises(TypeError):
        k.plaintext(len, len)
    assert k.plaintext(None).__class__ is memsafe._memsafe.Plaintext


def test_context_object_hides_everything() -> None:
    k = memsafe.SecretBytes(SECRET)
    ctx = k.plaintext()
    with pytest.raises(TypeError):
        hash(ctx)
    for dump in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            dump(ctx)
    with ctx as b:
        shown = repr(ctx)
        check(b == SECRET)
    assert SECRET.decode() not in shown
    assert "open" in shown and "SecretBytes" in shown
    assert "done" in repr(ctx)
    with pytest.raises(RuntimeError, match="only once"):
        ctx.__enter__()


@helpers.not_sanitized
def test_context_dropped_without_exit_wipes() -> None:
    k = memsafe.SecretBytes(os.urandom(400))
    secret = k.reveal()
    ctx = k.plaintext()
    addr = id(ctx.__enter__())  # nobody keeps the object but ctx
    del ctx
    gc.collect()
    assert ctypes.string_at(addr + OFFSET, 400) != secret


def test_secret_types_share_one_method() -> None:
    for cls in (memsafe.MemSafe, memsafe.SecretBytes, memsafe.SecretStr):
        assert cls.plaintext is memsafe.Secret.plaintext
        assert cls.plaintext.__text_signature__ == "($self, fn=None, /)"


# ---- leak scan: nothing left in the child's readable memory ----------------

LEAK_CHILD = r"""
import hashlib, hmac, os, sys, warnings
import memsafe

warnings.simplefilter("error", memsafe.PlaintextWarning)
path, consumer, control, arg = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
out, go = int(sys.argv[5]), int(sys.argv[6])
key = memsafe.SecretBytes.from_file(path)
kept = None
if consumer == "bcrypt":
    import bcrypt
    fn = lambda b: bcrypt.checkpw(b, arg.encode())
elif consumer == "pbkdf2":
    fn = lambda b: hashlib.pbkdf2_hmac("sha256", b, b"salt", 1000).hex() == arg
elif consumer == "hmac":
    fn = lambda b: hmac.digest(b, b"message", "sha256").hex() == arg
elif consumer == "str":
    key = memsafe._memsafe._secretstr_from_utf8(memsafe.SecretStr, key)
    fn = lambda t: t.isprintable() and len(t) == 72
if control:
    kept = key.reveal()
    ok = fn(kept)
else:
    ok = key.plaintext(fn)
    with key.plaintext() as b:
        ok = ok and fn(b)
os.write(out, f"{ok} {os.getpid()} ready\n".encode())
os.read(go, 1)
"""


def leak_scan(tmp_path: Any, consumer: str, control: bool) -> tuple[str, Any]:
    import test_leak_scan as ls

    secret = ls.text_secret(72)  # bcrypt uses at most 72 bytes
    if consumer == "bcrypt":
        bcrypt = pytest.importorskip("bcrypt")
        arg = bcrypt.hashpw(secret, bcrypt.gensalt(4)).decode()
    elif consumer == "pbkdf2":
        import hashlib

        arg = hashlib.pbkdf2_hmac("sha256", secret, b"salt", 1000).hex()
    elif consumer == "hmac":
        import hmac

        arg = hmac.digest(secret, b"message", "sha256").hex()
    else:
        arg = "-"
    path = tmp_path / "key"
    path.write_bytes(secret)
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LEAK_CHILD,
            str(path),
            consumer,
            "1" if control else "0",
            arg,
            str(out_w),
            str(go_r),
        ],
        pass_fds=[out_w, go_r],
        env=ls.child_env(),
        stderr=subprocess.PIPE,
    )
    os.close(out_w)
    os.close(go_r)
    try:
        line = b""
        while not line.endswith(b"ready\n"):
            chunk = os.read(out_r, 4096)
            assert chunk, proc.communicate(timeout=30)[1].decode()
            line += chunk
        ok, pid, _ = line.decode().split()
        res = ls.scan(int(pid), [secret])
        os.close(go_w)
        assert proc.wait(30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(out_r)
    assert res.scanned > 4 << 20 and {"[heap]", "[stack]"} <= res.areas
    return ok, res


@helpers.linux_only
@helpers.not_sanitized
@pytest.mark.parametrize("consumer", ["pbkdf2", "hmac", "bcrypt", "str"])
def test_leak_scan_after_plaintext(tmp_path: Any, consumer: str) -> None:
    ok, res = leak_scan(tmp_path, consumer, control=False)
    assert ok == "True"
    assert res.full == 0, res.where
    assert res.pieces == 0, res.where


@helpers.linux_only
@helpers.not_sanitized
@pytest.mark.parametrize("consumer", ["pbkdf2", "bcrypt", "str"])
def test_leak_scan_positive_control_with_reveal(tmp_path: Any, consumer: str) -> None:
    ok, res = leak_scan(tmp_path, consumer, control=True)
    assert ok == "True"
    assert res.full >= 1, res
