"""Constant-time comparison: memsafe.compare_digest and == / !=.

Every pair of kinds (SecretBytes, MemSafe, SecretStr, bytes, bytearray,
memoryview) is compared for equal, unequal, different-length and empty
values.  str is rejected by compare_digest.
"""

from __future__ import annotations

import array
import threading
import time
from collections.abc import Callable
from typing import Any

import helpers
import pytest

import memsafe

Maker = Callable[[bytes], Any]

MAKERS: dict[str, Maker] = {
    "SecretBytes": memsafe.SecretBytes,
    "MemSafe": memsafe.MemSafe,
    "SecretStr": lambda b: memsafe.SecretStr(b.decode("ascii")),
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
}
SECRET_KINDS = ("SecretBytes", "MemSafe", "SecretStr")

# (a, b, equal?) - ASCII so that SecretStr holds the same bytes.
CASES = [
    (b"abcdef", b"abcdef", True),
    (b"abcdef", b"abcdeg", False),  # last byte differs
    (b"abcdef", b"Abcdef", False),  # first byte differs
    (b"abcdef", b"abcde", False),  # prefix
    (b"abcde", b"abcdef", False),
    (b"", b"", True),
    (b"", b"a", False),
    (b"a", b"", False),
    (b"x" * 5000, b"x" * 5000, True),
    (b"x" * 5000, b"x" * 4999 + b"y", False),
]
CASE_IDS = [
    "equal",
    "last",
    "first",
    "prefix",
    "longer",
    "empty",
    "empty-a",
    "a-empty",
    "long-equal",
    "long-last",
]


@pytest.mark.parametrize(("a", "b", "equal"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kb", sorted(MAKERS))
@pytest.mark.parametrize("ka", sorted(MAKERS))
def test_compare_digest_matrix(
    ka: str, kb: str, a: bytes, b: bytes, equal: bool
) -> None:
    x, y = MAKERS[ka](a), MAKERS[kb](b)
    assert memsafe.compare_digest(x, y) is equal
    assert memsafe.compare_digest(y, x) is equal


@pytest.mark.parametrize(("a", "b", "equal"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kb", sorted(MAKERS))
@pytest.mark.parametrize("ka", SECRET_KINDS)
def test_eq_ne_matrix(ka: str, kb: str, a: bytes, b: bytes, equal: bool) -> None:
    x, y = MAKERS[ka](a), MAKERS[kb](b)
    assert (x == y) is equal
    assert (y == x) is equal
    assert (x != y) is (not equal)
    assert (y != x) is (not equal)


def test_eq_with_itself() -> None:
    for kind in SECRET_KINDS:
        s = MAKERS[kind](b"same")
        assert s == s
        assert not (s != s)  # noqa: SIM202
        assert memsafe.compare_digest(s, s)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("abc", b"abc"),
        (b"abc", "abc"),
        ("abc", "abc"),
        ("", b""),
    ],
)
def test_compare_digest_rejects_str(a: Any, b: Any) -> None:
    with pytest.raises(TypeError):
        memsafe.compare_digest(a, b)


def test_compare_digest_rejects_str_with_secrets() -> None:
    for kind in SECRET_KINDS:
        s = MAKERS[kind](b"abc")
        with pytest.raises(TypeError):
            memsafe.compare_digest(s, "abc")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            memsafe.compare_digest("abc", s)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1, None, 1.5, ["a"], object()], ids=repr)
def test_compare_digest_rejects_non_buffers(bad: Any) -> None:
    with pytest.raises(TypeError):
        memsafe.compare_digest(memsafe.SecretBytes(b"a"), bad)
    with pytest.raises(TypeError):
        memsafe.compare_digest(bad, b"a")


def test_compare_digest_argument_count() -> None:
    with pytest.raises(TypeError):
        memsafe.compare_digest(b"a")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        memsafe.compare_digest(b"a", b"a", b"a")  # type: ignore[call-arg]


@pytest.mark.parametrize("other", [1, None, 1.5, object()], ids=repr)
def test_eq_with_unsupported_types_is_false(other: Any) -> None:
    for kind in SECRET_KINDS:
        s = MAKERS[kind](b"abc")
        assert (s == other) is False
        assert (s != other) is True


def test_byte_secrets_never_equal_str() -> None:
    for kind in ("SecretBytes", "MemSafe"):
        s = MAKERS[kind](b"abc")
        assert (s == "abc") is False
        assert (s == "abc") is False
        assert (s != "abc") is True


STR_CASES = [
    ("abc", "abc", True),
    ("abc", "abd", False),
    ("abc", "ab", False),
    ("ab", "abc", False),
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
    ("é€𝄞", "é€𝄞", True),
    ("é€𝄞", "é€𝄟", False),
    ("é", "e\u0301", False),  # same look, other code points
    ("\x00", "", False),
    ("é", "\xc3\xa9", False),  # the UTF-8 bytes read as latin-1
    ("pw\ud800", "pw", False),  # a lone surrogate never matches
]


@pytest.mark.parametrize(("secret", "text", "equal"), STR_CASES)
def test_secretstr_eq_str(secret: str, text: str, equal: bool) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in secret):
        secret, text = text, secret  # SecretStr cannot hold a surrogate
    s = memsafe.SecretStr(secret)
    assert (s == text) is equal
    assert (text == s) is equal
    assert (s != text) is (not equal)
    assert (text != s) is (not equal)


def test_ordering_is_not_supported() -> None:
    a, b = memsafe.SecretBytes(b"a"), memsafe.SecretBytes(b"b")
    with pytest.raises(TypeError):
        a < b  # type: ignore[operator]  # noqa: B015
    with pytest.raises(TypeError):
        a >= b"a"  # type: ignore[operator]  # noqa: B015


def test_other_buffer_formats_compare_by_bytes() -> None:
    arr = array.array("I", [1, 2])
    raw = arr.tobytes()
    s = memsafe.SecretBytes(raw)
    assert memsafe.compare_digest(s, arr)
    assert s == arr
    assert memsafe.compare_digest(memoryview(raw).cast("H"), s)


def test_non_contiguous_buffer_is_refused() -> None:
    view = memoryview(b"abcdef")[::2]
    with pytest.raises((BufferError, TypeError, ValueError)):
        memsafe.compare_digest(memsafe.SecretBytes(b"ace"), view)


def test_closed_secret_is_valueerror() -> None:
    for kind in SECRET_KINDS:
        s = MAKERS[kind](b"abc")
        s.close()
        with pytest.raises(ValueError):
            memsafe.compare_digest(s, b"abc")
        with pytest.raises(ValueError):
            memsafe.compare_digest(b"abc", s)
        with pytest.raises(ValueError):
            s == b"abc"  # noqa: B015


def test_compare_inside_windows() -> None:
    k = memsafe.SecretBytes(b"abc")
    with k.read() as view:
        # Read windows count: an internal read window can open alongside.
        assert memsafe.compare_digest(k, b"abc")
        assert k == view
        assert memsafe.compare_digest(view, k)
    m = memsafe.MemSafe(b"abc")
    with m.write() as view:
        view[0] = ord("x")
        # A write window is exclusive: comparing would need to read.
        with pytest.raises(BufferError):
            memsafe.compare_digest(m, b"xbc")
        with pytest.raises(BufferError):
            m == b"xbc"  # noqa: B015
    assert m == b"xbc"


def test_comparison_leaves_pages_no_access() -> None:
    from memsafe import _kernel

    if not _kernel.available():
        pytest.skip("needs /proc")
    k = memsafe.SecretBytes(b"abc")
    assert memsafe.compare_digest(k, b"abc")
    assert k == b"abc"
    assert helpers.at_rest(k)


def test_not_hashable() -> None:
    for kind in SECRET_KINDS:
        with pytest.raises(TypeError):
            hash(MAKERS[kind](b"x"))


def _best_time(fn: Callable[[], object], rounds: int = 15) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def test_time_does_not_depend_on_where_the_difference_is() -> None:
    # A comparison that stops at the first difference would be about a
    # million times faster when byte 0 differs than when the values are
    # equal.  Only relative times, with a wide margin.
    n = 1 << 20
    secret = memsafe.SecretBytes(b"\x5a" * n)
    equal = b"\x5a" * n
    first = b"\xa5" + b"\x5a" * (n - 1)
    last = b"\x5a" * (n - 1) + b"\xa5"
    assert memsafe.compare_digest(secret, equal)
    t_equal = _best_time(lambda: memsafe.compare_digest(secret, equal))
    t_first = _best_time(lambda: memsafe.compare_digest(secret, first))
    t_last = _best_time(lambda: memsafe.compare_digest(secret, last))
    t_eq_op = _best_time(lambda: secret == first)
    for t in (t_first, t_last, t_eq_op):
        assert t_equal / 4 < t < t_equal * 4, (t_equal, t_first, t_last, t_eq_op)


# ---- the secret on the right: bytearray == secret ------------------------------


def test_bytes_like_on_the_left_falls_back_to_the_secret() -> None:
    """bytearray(x) == secret and memoryview(x) == secret get no buffer
    from the secret (it exports none), so Python falls back to the secret's
    own constant-time __eq__ - even while another thread holds a window."""
    k = memsafe.SecretBytes(b"right side")
    assert bytearray.__eq__(bytearray(b"right side"), k) is NotImplemented
    assert memoryview.__eq__(memoryview(b"right side"), k) is NotImplemented
    inside = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with k.read():
            inside.set()
            done.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert inside.wait(30)
        for left in (bytearray, memoryview):
            assert left(b"right side") == k
            assert not (left(b"right sidE") == k)  # noqa: SIM201
            assert left(b"right sidE") != k
            assert not (left(b"right side") != k)  # noqa: SIM202
            assert left(b"right") != k
    finally:
        done.set()
        t.join()
    k.close()


def test_secret_on_the_right_takes_constant_time() -> None:
    """The same timing check as above with the secret on the right and a
    window open in another thread: memcmp would stop at byte 0."""
    n = 1 << 20
    secret = memsafe.SecretBytes(b"\x5a" * n)
    equal = bytearray(b"\x5a" * n)
    first = bytearray(b"\xa5" + b"\x5a" * (n - 1))
    inside = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with secret.read():
            inside.set()
            done.wait(60)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert inside.wait(30)
        assert equal == secret and not (first == secret)  # noqa: SIM201
        t_equal = _best_time(lambda: equal == secret)
        t_first = _best_time(lambda: first == secret)
        mv_first = memoryview(first)
        t_mv = _best_time(lambda: mv_first == secret)
    finally:
        done.set()
        t.join()
    for t_ in (t_first, t_mv):
        assert t_equal / 4 < t_ < t_equal * 4, (t_equal, t_first, t_mv)
    secret.close()
