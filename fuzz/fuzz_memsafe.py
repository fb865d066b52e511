#!/usr/bin/env python3
"""Fuzz the C entry points of memsafe.

One fuzz input is decoded into one of these targets (first byte):

0. sizes - ``MemSafe(n)``, ``SecretBytes.random(n)``,
   ``SecretBytes.from_fd(fd, size=n)`` with odd ints (negative, huge,
   around 2**31/2**63/2**64, bool, int subclasses, floats, objects with
   ``__index__``);
1. bytes - ``MemSafe``/``SecretBytes`` from bytes, bytearray (with and
   without ``wipe_source``), memoryviews (sliced, strided, cast), ``array``;
2. text - ``SecretStr`` built from a str of fuzzed code points (lone
   surrogates included) and ``append``;
3. validator - ``SecretStr.getpass()`` with no terminal reads standard
   input: fuzz bytes go in through a pipe on fd 0, which reaches the C UTF-8
   validator (differential check against Python's own decoder);
4. from_fd - ``SecretBytes.from_fd`` with fuzz bytes through a pipe, with
   and without ``size``;
5. sequence - the rest of the input is a program of operations on up to
   four secrets: open/close read and write windows, leak and release views,
   ``memoryview(secret)``, extend/append (self included), ==,
   compare_digest, copy, close, closure windows, reveal.

A finding is any crash (ASan report, signal) or any Python exception other
than the documented ones (ValueError, TypeError, BufferError, MemoryError,
OverflowError, OSError, EOFError), or a failed consistency check (an
``AssertionError``: content that differs from what went in, a data page
that is not ``---p`` when nothing is open, a secret that cannot be closed
once every view is released).

Run under atheris (coverage-guided; see ``scripts/fuzz``)::

    python fuzz/fuzz_memsafe.py [libFuzzer flags] [corpus dirs]

or without atheris, with hypothesis generating the inputs (no coverage
feedback from the C code)::

    python fuzz/fuzz_memsafe.py --hypothesis [--examples N] [--seed S]

``--make-seeds DIR`` writes a starting corpus; ``--replay FILE...`` runs
inputs once (e.g. a crash file) without any fuzzing engine.
"""

from __future__ import annotations

import array
import contextlib
import copy
import gc
import hashlib
import os
import pickle
import sys
import warnings
from collections.abc import Callable
from typing import Any

from fuzz_support import MAPS, Reader, perms_of, pipe_with

ALLOWED: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    BufferError,
    MemoryError,
    OverflowError,
    OSError,
    EOFError,
)

# Sizes that are really allocated stay small; the others must be refused
# before anything is committed (the machine must never be asked to lock
# gigabytes).  2**40 is far above RAM + swap, so the kernel refuses it.
SMALL_MAX = 1 << 16
HUGE_MIN = 1 << 40

HAVE_PROC = os.path.exists(MAPS)


class Finding(AssertionError):
    """A consistency check failed."""


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Finding(what)


class IntSub(int):
    """An int subclass (must behave like int)."""


class Indexable:
    """Has __index__ but is not an int (as numpy.int64): a size."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __index__(self) -> int:
        return self.v


def weird_int(r: Reader) -> tuple[Any, str]:
    """A size argument and what it is: 'small', 'neg', 'huge', 'over', 'type'."""
    sel = r.byte() % 16
    base = [
        0,
        1,
        15,
        16,
        17,
        4079,
        4080,
        4081,
        4095,
        4096,
        4097,
        8192,
        2**31 - 1,
        2**31,
        2**32 - 1,
        2**32,
        2**62,
        2**63 - 4096,
        2**63 - 1,
    ]
    if sel < 5:
        v: Any = r.uint(2) % (SMALL_MAX + 1)
    elif sel < 8:
        v = base[r.byte() % len(base)]
    elif sel == 8:
        v = -(r.uint(8) % (2**63)) - 1
    elif sel == 9:
        v = 2**63 + r.uint(1)
    elif sel == 10:
        v = 2 ** (64 + r.byte()) * (-1 if r.byte() & 1 else 1)
    elif sel == 11:
        v = IntSub(r.uint(2) % 4097)
    elif sel == 12:
        return bool(r.byte() & 1), "type"
    elif sel == 13:
        return float(r.uint(2)), "type"
    elif sel == 14:
        return Indexable(r.uint(2) % 4097), "small"
    else:
        v = HUGE_MIN + r.uint(8) % (2**62)
    if v < 0:
        return v, "neg"
    if v > 2**63 - 1:
        return v, "over"
    if v >= HUGE_MIN:
        return v, "huge"
    if v > SMALL_MAX:
        return v % (SMALL_MAX + 1), "small"  # never allocate the middle
    return v, "small"


def expect_raise(exc: type[BaseException], fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except exc:
        return
    raise Finding(f"{what}: expected {exc.__name__}")


# ---- 0: sizes ---------------------------------------------------------------


def t_sizes(r: Reader) -> None:
    import memsafe

    n, cls = weird_int(r)
    k = n.v if isinstance(n, Indexable) else n  # the size as an int
    which = r.byte() % 3
    if which == 0:
        make: Callable[[], Any] = lambda: memsafe.MemSafe(n)  # noqa: E731
    elif which == 1:
        make = lambda: memsafe.SecretBytes.random(n)  # noqa: E731
    else:

        def make() -> Any:
            fd = pipe_with(b"\x00" * (k if cls == "small" and k <= 4096 else 0))
            try:
                return memsafe.SecretBytes.from_fd(fd, size=n, max_size=None)
            finally:
                os.close(fd)

    if cls == "type":  # bool, float: not a size (__index__ is one)
        expect_raise(TypeError, make, f"size {n!r}")
        return
    if cls == "neg":
        expect_raise(ValueError, make, f"size {n}")
        return
    if cls == "over":
        expect_raise(MemoryError, make, f"size {n}")
        return
    if cls == "huge":  # above RAM + swap: refused before anything is locked
        expect_raise(MemoryError, make, f"size {n}")
        return
    try:
        s = make()
    except EOFError:
        check(which == 2 and k > 4096, f"EOFError for size {k}")
        return
    try:
        check(len(s) == k, f"len {len(s)} != {k}")
        if which == 0:
            check(s == bytes(k), "MemSafe(n) is not zero")
        elif which == 2:
            check(s == bytes(k), "from_fd content")
        info = s._region_info()
        check(info["len"] == k, "region len")
        if HAVE_PROC:
            perms = perms_of([info["data"]])[0]
            check(perms == "---p", f"fresh secret is accessible ({perms})")
    finally:
        s.close()


# ---- 1: bytes -----------------------------------------------------------------


def t_bytes(r: Reader) -> None:
    import memsafe

    mode = r.byte() % 8
    payload = r.chunk()
    cls = memsafe.MemSafe if r.byte() & 1 else memsafe.SecretBytes
    wipe = False
    src: Any
    if mode == 0:
        src = payload
    elif mode == 1:
        src = bytearray(payload)
    elif mode == 2:
        src, wipe = bytearray(payload), True
    elif mode == 3:
        src = memoryview(payload)[r.byte() % (len(payload) + 1) :]
    elif mode == 4:
        src = memoryview(payload)[:: 1 + r.byte() % 3]  # strided: not contiguous
    elif mode == 5:
        src = array.array("I", payload[: len(payload) // 4 * 4])
    elif mode == 6:
        src, wipe = payload, True  # read-only: TypeError before copying
    else:
        k = len(payload) // 2 * 2
        src = memoryview(bytearray(payload[:k])).cast("B", [k // 2, 2]) if k else b""
    expected = bytes(src) if not isinstance(src, array.array) else src.tobytes()
    try:
        s = cls(src, wipe_source=wipe)
    except BufferError:
        check(isinstance(src, memoryview) and not src.contiguous, "BufferError")
        return
    except TypeError:
        check(wipe and isinstance(src, bytes), "TypeError")
        return
    try:
        check(len(s) == len(expected), "len")
        check(s == expected, "content differs from the source")
        check(memsafe.compare_digest(s, expected), "compare_digest")
        if expected:
            check(s != expected[:-1] + bytes([expected[-1] ^ 1]), "== is not exact")
        if wipe:
            check(not any(src), "wipe_source left bytes behind")
        if isinstance(s, memsafe.SecretBytes):
            check(s.reveal() == expected, "reveal")
    finally:
        s.close()


# ---- 2: text -------------------------------------------------------------------


def fuzz_str(r: Reader, limit: int = 64) -> str:
    n = r.byte() % (limit + 1)
    out = []
    for _ in range(n):
        sel = r.byte() % 4
        if sel == 0:
            out.append(r.byte() & 0x7F)
        elif sel == 1:
            out.append(0xD7F0 + r.byte() % 0x30)  # around the surrogates
        else:
            out.append(r.uint(3) % 0x110000)
        if r.left() == 0:
            break
    return "".join(map(chr, out))


def has_surrogate(s: str) -> int:
    for i, c in enumerate(s):
        if 0xD800 <= ord(c) <= 0xDFFF:
            return i
    return -1


def t_text(r: Reader) -> None:
    import memsafe

    text = fuzz_str(r)
    bad = has_surrogate(text)
    try:
        s = memsafe.SecretStr(text)
    except ValueError as e:
        check(bad >= 0 and f"index {bad}" in str(e), f"SecretStr refused {text!r}")
        return
    check(bad < 0, "a lone surrogate was accepted")
    try:
        check(len(s) == len(text), "len counts characters")
        check(s.reveal() == text, "reveal")
        check(s.read(bytes) == text.encode("utf-8"), "stored UTF-8")
        check(s == text and text == s, "== str")
        check((s != text) is False, "!= str")
        check(s != text + "\x00" and s != text[:-1] + "\udc80", "!= str")
        more = fuzz_str(r, 16)
        try:
            s.append(more)
        except ValueError:
            check(has_surrogate(more) >= 0, "append refused valid text")
            more = ""
        if r.byte() & 1:
            s.append(s)
            text2 = (text + more) * 2
        else:
            text2 = text + more
        check(len(s) == len(text2), "len after append")
        check(s.reveal() == text2, "reveal after append")
        c = copy.deepcopy(s)
        check(c == s and len(c) == len(s), "copy")
        c.close()
    finally:
        s.close()


# ---- 3: the UTF-8 validator through getpass ----------------------------------


_TTY_CHECKED: list[bool] = []


def no_tty() -> bool:
    """getpass would read the terminal if there is one: only fuzz without."""
    if not _TTY_CHECKED:
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            _TTY_CHECKED.append(True)
        else:
            os.close(fd)
            _TTY_CHECKED.append(False)
            print(
                "fuzz: a terminal is attached; getpass target disabled "
                "(run under `setsid`)",
                file=sys.stderr,
            )
    return _TTY_CHECKED[0]


def t_validator(r: Reader) -> None:
    import memsafe

    if os.name != "posix" or not no_tty():
        return
    data = r.take(min(r.left(), 9000))  # > 4080: the scratch region grows
    line = data.split(b"\n", 1)[0]
    saved = os.dup(0)
    fd = pipe_with(data)
    # Without a terminal getpass reads through sys.stdin, whose buffers would
    # carry input across iterations; with no sys.stdin it reads fd 0 itself,
    # which is what this target feeds (and validates UTF-8 in C).
    saved_stdin = sys.stdin
    try:
        sys.stdin = None  # type: ignore[assignment]
        os.dup2(fd, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                s = memsafe.SecretStr.getpass("")
            except EOFError:
                check(data == b"", "EOFError with input")
                return
            except ValueError as e:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as u:
                    check(
                        f"offset {u.start})" in str(e),
                        f"offset differs from Python's: {e} vs {u.start}",
                    )
                    return
                raise Finding(f"valid UTF-8 refused: {line!r}: {e}") from None
    finally:
        sys.stdin = saved_stdin
        os.dup2(saved, 0)
        os.close(saved)
        os.close(fd)
    try:
        text = line.decode("utf-8")  # UnicodeDecodeError here = a finding
    except UnicodeDecodeError:
        raise Finding(f"invalid UTF-8 accepted: {line!r}") from None
    try:
        check(s.reveal() == text, "getpass text")
        check(len(s) == len(text), "getpass len")
    finally:
        s.close()


# ---- 4: from_fd -------------------------------------------------------------------


def t_from_fd(r: Reader) -> None:
    import memsafe

    sized = r.byte() % 3
    want = r.uint(2) % 5000
    data = r.take(min(r.left(), 8000))
    fd = pipe_with(data)
    try:
        if sized == 0:
            s = memsafe.SecretBytes.from_fd(fd)
            expected = data
        else:
            try:
                s = memsafe.SecretBytes.from_fd(fd, size=want)
            except EOFError:
                check(want > len(data), "EOFError with enough input")
                return
            check(want <= len(data), "no EOFError on short input")
            expected = data[:want]
    finally:
        os.close(fd)
    try:
        check(s.reveal() == expected, "from_fd content")
    finally:
        s.close()


# ---- 5: operation sequences ------------------------------------------------------


class Slot:
    """One secret in a sequence, and what we know about it."""

    def __init__(self, obj: Any, content: bytes | None) -> None:
        self.obj = obj
        self.content = content  # None: unknown (after writes we do not track)
        self.windows: list[tuple[Any, memoryview, bool]] = []
        self.leaks: list[Any] = []
        self.closed = False


def seq_create(r: Reader) -> Slot:
    import memsafe

    sel = r.byte() % 7
    data = r.chunk()
    if sel == 0:
        n = r.uint(2) % 5000
        return Slot(memsafe.MemSafe(n), bytes(n))
    if sel == 1:
        return Slot(memsafe.MemSafe(data), data)
    if sel == 2:
        src = bytearray(data)
        return Slot(memsafe.SecretBytes(src, wipe_source=True), data)
    if sel == 3:
        rnd = memsafe.SecretBytes.random(r.uint(2) % 5000)
        return Slot(rnd, rnd.reveal())
    if sel == 4:
        text = fuzz_str(r, 40)
        return Slot(memsafe.SecretStr(text), text.encode("utf-8", "surrogatepass"))
    if sel == 5:
        fd = pipe_with(data)
        try:
            return Slot(memsafe.SecretBytes.from_fd(fd), data)
        finally:
            os.close(fd)
    return Slot(memsafe.MemSafe(data), data)


def seq_op(r: Reader, slots: list[Slot]) -> None:
    import memsafe

    op = r.byte() % 20
    if op == 0 or not slots:
        if len(slots) < 4:
            slots.append(seq_create(r))
        return
    s = slots[r.byte() % len(slots)]
    o = slots[r.byte() % len(slots)]
    obj = s.obj
    is_memsafe = isinstance(obj, memsafe.MemSafe)
    is_str = isinstance(obj, memsafe.SecretStr)
    if (
        (op in (2, 8) and not is_memsafe)
        or (op == 9 and not is_str)
        or (op == 14 and is_memsafe)
    ):
        return  # the method does not exist on this type
    if op == 1:  # open a read window
        w = obj.read()
        v = w.__enter__()
        s.windows.append((w, v, False))
    elif op == 2:  # open a write window
        w = obj.write()
        v = w.__enter__()
        s.windows.append((w, v, True))
    elif op == 3 and s.windows:  # close a window
        w, v, _ = s.windows.pop(r.byte() % len(s.windows))
        try:
            w.__exit__(None, None, None)
        finally:
            check(w.__exit__(None, None, None) is False, "second exit")
    elif op == 4 and s.windows:  # leak a view past the window
        _, v, _ = s.windows[r.byte() % len(s.windows)]
        a, b = r.uint(2), r.uint(2)
        kind = r.byte() % 4
        if kind == 0:
            s.leaks.append(v[a % (len(v) + 1) : b % (len(v) + 1)])
        elif kind == 1:
            s.leaks.append(memoryview(v))
        elif kind == 2:
            s.leaks.append(pickle.PickleBuffer(v))
        else:
            s.leaks.append(v.toreadonly())
    elif op == 5 and s.leaks:  # release a leaked view
        x = s.leaks.pop(r.byte() % len(s.leaks))
        x.release()
    elif op == 6:  # the secret itself exports no buffer, in a window or not
        expect_raise(BufferError, lambda: memoryview(obj), "memoryview(secret)")
    elif op == 7:  # write through an open window or a writable leak
        views = [v for _, v, wr in s.windows if wr] + [
            x for x in s.leaks if isinstance(x, memoryview) and not x.readonly
        ]
        if views:
            v = views[r.byte() % len(views)]
            data = r.chunk()[: len(v)]
            at = r.uint(2) % (len(v) - len(data) + 1)
            v[at : at + len(data)] = data
            s.content = None
    elif op == 8:  # extend
        src_sel = r.byte() % 4
        src: Any = (r.chunk(), o.obj, obj, bytearray(r.chunk()))[src_sel]
        before = s.content
        add = o.content if src_sel == 1 else before if src_sel == 2 else bytes(src)
        obj.extend(src)
        s.content = None if before is None or add is None else before + add
    elif op == 9:  # append
        src = (fuzz_str(r, 20), o.obj, obj)[r.byte() % 3]
        before = s.content
        if isinstance(src, str):
            add = src.encode("utf-8", "surrogatepass")
        else:
            add = o.content if src is o.obj else before
        obj.append(src)
        s.content = None if before is None or add is None else before + add
    elif op == 10:  # compare
        sel = r.byte() % 4
        if sel == 0:
            eq = obj == o.obj
            if s.content is not None and o.content is not None:
                check(eq is (s.content == o.content), "== between secrets")
        elif sel == 1:
            other = r.chunk() if r.byte() & 1 else (s.content or b"")
            eq = memsafe.compare_digest(obj, other)
            if s.content is not None:
                check(eq is (s.content == other), "compare_digest")
        elif sel == 2:
            other = s.content or b""
            check(
                (other == obj) is (s.content == other) or s.content is None,
                "reflected ==",
            )
        else:
            ne = obj != o.obj
            if s.content is not None and o.content is not None:
                check(ne is (s.content != o.content), "!=")
    elif op == 11:  # copies
        c = (copy.copy, copy.deepcopy, type(obj))[r.byte() % 3](obj)
        if len(slots) < 4:
            slots.append(Slot(c, s.content))
        else:
            c.close()
    elif op == 12:  # close
        obj.close()
        s.closed = True
    elif op == 13:  # closure windows
        leak = r.byte() & 1
        kept: list[memoryview] = []

        def fn(v: memoryview) -> bytes:
            if leak:
                kept.append(v[1:])
            return bytes(v)

        meth = obj.write if is_memsafe and r.byte() & 1 else obj.read
        try:
            got = meth(fn)
            if s.content is not None:
                check(got == s.content, "closure read")
        finally:
            s.leaks.extend(kept)
    elif op == 14:  # reveal
        got = obj.reveal()
        if s.content is not None:
            want: Any = s.content
            if isinstance(got, str):
                want = s.content.decode("utf-8")
            check(got == want, "reveal")
    elif op == 15:  # hashlib gets no buffer from the secret itself
        expect_raise(BufferError, lambda: hashlib.sha256(obj), "sha256(secret)")
    elif op == 16:  # read a window's view
        if s.windows:
            _, v, _ = s.windows[r.byte() % len(s.windows)]
            if s.content is not None:
                check(bytes(v) == s.content, "window content")
    elif op == 17:  # introspection
        repr(obj)
        _ = obj.closed
        len(obj)
        _ = obj.locked
        obj._region_info()
    elif op == 18:  # enter a window object twice
        w = obj.read()
        try:
            v = w.__enter__()
        except ALLOWED:
            return
        try:
            w.__enter__()
        except RuntimeError:
            pass
        else:
            raise Finding("a window was entered twice")
        finally:
            del v
            w.__exit__(None, None, None)
    else:  # pickling must be refused
        expect_raise(TypeError, lambda: pickle.dumps(obj), "pickle")


def check_idle_pages(slots: list[Slot]) -> None:
    """A live secret with nothing open on it must be no-access."""
    if not HAVE_PROC:
        return
    addrs = [
        s.obj._region_info()["data"]
        for s in slots
        if not (s.obj.closed or s.windows or s.leaks)
    ]
    for perms in perms_of(addrs):
        check(perms == "---p", f"idle secret is accessible ({perms})")


def t_sequence(r: Reader) -> None:
    slots: list[Slot] = []
    try:
        for _ in range(64):
            if r.left() == 0:
                break
            try:
                seq_op(r, slots)
            except Finding:
                raise
            except ALLOWED:
                pass
            check_idle_pages(slots)
    finally:
        cleanup(slots)


def cleanup(slots: list[Slot]) -> None:
    """Release every view and window; then every secret must close."""
    for s in slots:
        for x in reversed(s.leaks):
            if isinstance(x, pickle.PickleBuffer):
                x.release()
        for x in s.leaks:
            if isinstance(x, memoryview):
                x.release()
        s.leaks.clear()
    for s in slots:
        for w, v, _ in s.windows:
            with contextlib.suppress(BufferError):
                w.__exit__(None, None, None)
            v.release()
        s.windows.clear()
    for s in slots:
        try:
            s.obj.close()
        except BufferError:
            gc.collect()  # a view in a reference cycle (exception tracebacks)
            try:
                s.obj.close()
            except BufferError as e:
                raise Finding(f"cannot close once every view is released: {e}") from e
        check(s.obj.closed, "close() did not close")
    slots.clear()


TARGETS = [t_sizes, t_bytes, t_text, t_validator, t_from_fd, t_sequence]


def TestOneInput(data: bytes) -> None:
    """One fuzz input: decode a target and run it."""
    r = Reader(data)
    target = TARGETS[r.byte() % len(TARGETS)]
    try:
        target(r)
    except Finding:
        raise
    except ALLOWED:
        pass


# ---- seeds and drivers -----------------------------------------------------------


def seeds() -> dict[str, bytes]:
    """A small starting corpus: one or more inputs per target."""
    return {
        "sizes-small": bytes([0, 0, 0x10, 0x00, 0]),
        "sizes-edge": bytes([0, 5, 8, 1]),
        "sizes-neg": bytes([0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
        "sizes-huge": bytes([0, 15, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
        "bytes-wipe": bytes([1, 2, 5]) + b"hello" + b"\x00",
        "bytes-strided": bytes([1, 4, 9]) + b"123456789" + b"\x01\x02",
        "text": bytes([2, 3, 0, 0x41, 1, 0x10, 2, 0x01, 0xF6, 0x00, 0, 0]),
        "validator-ok": bytes([3]) + "pässwörd\n".encode(),
        "validator-bad": bytes([3]) + b"ab\xe0\x80\xafcd\n",
        "from-fd": bytes([4, 1, 0, 4]) + b"abcdefgh",
        "sequence": bytes(
            [
                5,
                0,
                1,
                3,
                b"a"[0],
                b"b"[0],
                b"c"[0],
                1,
                0,
                0,
                4,
                0,
                0,
                0,
                1,
                0,
                2,
                0,
                3,
                0,
                0,
                0,
                5,
                0,
                0,
                0,
                8,
                0,
                0,
                2,
                12,
                0,
                0,
                14,
                0,
                0,
            ]
        ),
    }


def make_seeds(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def run_hypothesis(examples: int, seed: int) -> None:
    """Fallback driver: hypothesis feeds TestOneInput (no C coverage)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    corpus = list(seeds().values())

    @hseed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.one_of(
            st.sampled_from(corpus),
            st.binary(max_size=2048),
            st.tuples(st.integers(0, len(TARGETS) - 1), st.binary(max_size=2048)).map(
                lambda t: bytes([t[0]]) + t[1]
            ),
        )
    )
    def fuzz(data: bytes) -> None:
        TestOneInput(data)

    fuzz()
    print(f"hypothesis driver: {examples} examples, seed {seed}: no findings")


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    if "--make-seeds" in argv:
        make_seeds(argv[argv.index("--make-seeds") + 1])
        return 0
    if "--replay" in argv:
        for path in argv[argv.index("--replay") + 1 :]:
            with open(path, "rb") as f:
                TestOneInput(f.read())
            print(f"replayed {path}: ok")
        return 0
    if "--hypothesis" in argv:
        examples = 2000
        seed = 1
        if "--examples" in argv:
            examples = int(argv[argv.index("--examples") + 1])
        if "--seed" in argv:
            seed = int(argv[argv.index("--seed") + 1])
        import memsafe

        run_hypothesis(examples, seed)
        return 0
    import atheris

    # Instrument the package and this harness (imported again as a module):
    # libFuzzer then also sees which harness branches an input reaches, so
    # it keeps inputs for every decoding mode, not only new C edges.
    with atheris.instrument_imports(include=["memsafe", "fuzz_memsafe"]):
        import fuzz_memsafe as harness

        import memsafe  # noqa: F401
    atheris.Setup(argv, harness.TestOneInput)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
