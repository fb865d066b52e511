"""SecretStr: text stored as UTF-8 in secret memory, len() in characters."""

from __future__ import annotations

import copy
import pickle
import sys
from typing import Any

import helpers
import pytest

import memsafe
from memsafe import _kernel

SecretStr = memsafe.SecretStr

TEXTS = [
    "",
    "a",
    "hunter2",
    "é",  # 2-byte UTF-8 (latin-1 str kind)
    "ß€",  # 2 and 3 bytes
    "€" * 5,  # 3 bytes (UCS-2 str kind)
    "𝄞",  # 4 bytes (UCS-4 str kind)
    "a\x00b",  # NUL inside
    "\x7f\x80\u07ff\u0800\uffff\U00010000\U0010ffff",  # every boundary
    "pässwörd€𝄞 with spaces\t\n",
]


def utf8(s: memsafe.Secret) -> bytes:
    with s.read() as view:
        return bytes(view)


@pytest.mark.parametrize("text", TEXTS)
def test_roundtrip_and_length(text: str) -> None:
    s = SecretStr(text)
    assert len(s) == len(text)
    assert s.reveal() == text
    assert type(s.reveal()) is str
    assert utf8(s) == text.encode("utf-8")
    with s.read() as view:
        assert view.readonly
        assert view.format == "B"
        assert len(view) == len(text.encode("utf-8"))


def test_default_is_empty() -> None:
    s = SecretStr()
    assert len(s) == 0
    assert s.reveal() == ""


def test_str_subclass_input() -> None:
    class Text(str):
        pass

    s = SecretStr(Text("sübclass"))
    assert len(s) == 8
    assert s.reveal() == "sübclass"
    assert type(s.reveal()) is str


def test_big_text() -> None:
    text = "aé€𝄞" * 25_000
    s = SecretStr(text)
    assert len(s) == 100_000
    assert s.reveal() == text


def test_no_utf8_cache_left_in_the_source_str() -> None:
    # PyUnicode_AsUTF8 would attach a UTF-8 copy of the text to the str
    # (visible in sys.getsizeof); SecretStr encodes on its own.
    text = "".join(["é€𝄞", str(id(object()))]) * 10  # built at run time
    before = sys.getsizeof(text)
    s = SecretStr(text)
    s.append(text)
    assert sys.getsizeof(text) == before
    assert s.reveal() == text + text


@pytest.mark.parametrize(
    ("parts", "expect"),
    [
        (["abc", "def"], "abcdef"),
        (["", ""], ""),
        (["abc", ""], "abc"),
        (["", "é"], "é"),
        (["a", "é", "€", "𝄞"], "aé€𝄞"),
        (["𝄞", "a"], "𝄞a"),
    ],
)
def test_append_str(parts: list[str], expect: str) -> None:
    s = SecretStr(parts[0])
    for p in parts[1:]:
        s.append(p)
    assert len(s) == len(expect)
    assert s.reveal() == expect
    assert utf8(s) == expect.encode()


def test_append_secretstr() -> None:
    s = SecretStr("ab")
    other = SecretStr("é€𝄞")
    s.append(other)
    assert len(s) == 5
    assert s.reveal() == "abé€𝄞"
    assert other.reveal() == "é€𝄞"  # untouched
    s.append(SecretStr(""))
    assert len(s) == 5


@pytest.mark.parametrize("text", ["", "x", "é€𝄞", "abc" * 2000])
def test_self_append(text: str) -> None:
    s = SecretStr(text)
    s.append(s)
    assert len(s) == 2 * len(text)
    assert s.reveal() == text * 2
    s.append(s)
    assert len(s) == 4 * len(text)
    assert s.reveal() == text * 4


def test_append_grows_across_pages() -> None:
    s = SecretStr()
    expect = ""
    for i in range(300):
        piece = "€" * (i % 7) + "a"
        s.append(piece)
        expect += piece
    assert len(s) == len(expect)
    assert s.reveal() == expect


@helpers.not_sanitized
@helpers.linux_only
def test_append_moves_to_new_hardened_pages() -> None:
    s = SecretStr("x" * 4000)
    old = s._region_info()
    s.append("y" * 200)
    new = s._region_info()
    assert new["len"] == 4200
    assert new != old
    assert s.locked is True
    if _kernel.available():
        m = _kernel.mapping_at(helpers.pages_of(s))
        assert m is not None
        assert {"lo", "dd"} <= m.vmflags
        assert helpers.at_rest(s)


SURROGATES = ["\ud800", "abc\udfffdef", "ok\ud83d", "pw\udc80" + "é" * 3]


@pytest.mark.parametrize("text", SURROGATES)
def test_lone_surrogate_is_valueerror_without_the_text(text: str) -> None:
    with pytest.raises(ValueError) as info:
        SecretStr(text)
    message = str(info.value)
    for fragment in ("abc", "def", "ok", "pw", "é", text):
        assert fragment not in message
    assert (
        str(text.index(next(c for c in text if 0xD800 <= ord(c) <= 0xDFFF))) in message
    )


@pytest.mark.parametrize("text", SURROGATES)
def test_append_lone_surrogate_leaves_the_secret_unchanged(text: str) -> None:
    s = SecretStr("before")
    with pytest.raises(ValueError) as info:
        s.append(text)
    assert "before" not in str(info.value)
    assert len(s) == 6
    assert s.reveal() == "before"


BAD_TYPES: list[Any] = [
    b"bytes",
    bytearray(b"x"),
    memoryview(b"x"),
    5,
    None,
    1.5,
    ["a"],
]


@pytest.mark.parametrize("bad", BAD_TYPES, ids=lambda v: type(v).__name__)
def test_non_str_is_typeerror(bad: Any) -> None:
    with pytest.raises(TypeError):
        SecretStr(bad)
    s = SecretStr("x")
    with pytest.raises(TypeError):
        s.append(bad)
    assert s.reveal() == "x"


def test_other_secret_kinds_are_typeerror() -> None:
    for other in (memsafe.SecretBytes(b"abc"), memsafe.MemSafe(b"abc")):
        with pytest.raises(TypeError):
            SecretStr(other)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            SecretStr("x").append(other)  # type: ignore[arg-type]


def test_from_secretstr() -> None:
    a = SecretStr("é€𝄞")
    b = SecretStr(a)
    assert len(b) == 3
    assert b.reveal() == "é€𝄞"
    a.close()
    assert b.reveal() == "é€𝄞"


def test_bytes_kinds_from_secretstr_count_bytes() -> None:
    s = SecretStr("é€")
    assert len(memsafe.SecretBytes(s)) == 5
    assert len(memsafe.MemSafe(s)) == 5
    assert memsafe.SecretBytes(s).reveal() == "é€".encode()


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy])
def test_copies_are_independent(copier: Any) -> None:
    s = SecretStr("pässwörd")
    c = copier(s)
    assert c is not s
    assert type(c) is SecretStr
    assert len(c) == 8
    assert c == s
    assert helpers.memory_of(c) != helpers.memory_of(s)
    s.append("!")
    assert c.reveal() == "pässwörd"
    s.close()
    assert not c.closed
    assert c.reveal() == "pässwörd"
    assert len(c) == 8


def test_deepcopy_inside_a_container() -> None:
    s = SecretStr("x€")
    box = copy.deepcopy({"k": [s]})
    assert box["k"][0] is not s
    assert box["k"][0].reveal() == "x€"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_is_typeerror(protocol: int) -> None:
    s = SecretStr("do not serialize")
    with pytest.raises(TypeError) as info:
        pickle.dumps(s, protocol=protocol)
    assert "do not serialize" not in str(info.value)


def test_repr_and_str_are_masked() -> None:
    s = SecretStr("hunter2-é")
    percent = "%s" % (s,)  # noqa: UP031
    for shown in (repr(s), str(s), f"{s}", f"{s!r}", percent, format(s, "")):
        assert "hunter2" not in shown
        assert "é" not in shown
        assert "SecretStr" in shown
    s.close()
    assert "SecretStr" in repr(s)


def test_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(SecretStr("x"))


def test_closed() -> None:
    s = SecretStr("gone")
    s.close()
    s.close()  # idempotent
    assert s.closed
    for op in (len, lambda x: x.reveal(), lambda x: x.append("y"), lambda x: x.read()):
        with pytest.raises(ValueError):
            with_window = op(s)
            if isinstance(with_window, memsafe.Window):
                with with_window:
                    pass


def test_no_write_window() -> None:
    s = SecretStr("ro")
    assert not hasattr(s, "write")
    with s.read() as view, pytest.raises(TypeError):
        view[0] = 0


def test_append_while_a_window_is_open_is_buffererror() -> None:
    s = SecretStr("abc")
    with s.read(), pytest.raises(BufferError):
        s.append("d")
    assert s.reveal() == "abc"


def test_subclass() -> None:
    class Password(SecretStr):
        pass

    p = Password("é")
    assert type(copy.copy(p)) is Password
    p.append("x")
    assert len(p) == 2


@helpers.not_sanitized
@helpers.linux_only
def test_secretstr_is_hardened() -> None:
    s = SecretStr("locked €")
    assert s.locked is True
    m = _kernel.mapping_at(helpers.pages_of(s))
    assert m is not None
    assert {"lo", "dd"} <= m.vmflags
    assert "wf" in m.vmflags or "dc" in m.vmflags
    assert helpers.at_rest(s)
