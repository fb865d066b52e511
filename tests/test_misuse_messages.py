"""Misuse gets a clear, accurate error (issue 17, point 7): bools are not
file descriptors, a directory is named in its IsADirectoryError, copies of
a subclass instance keep its type and attributes, a window's view says why
it is unhashable."""

from __future__ import annotations

import copy
import os
import pathlib
import sys
from typing import Any

import helpers
import pytest

import memsafe

TYPES = [memsafe.SecretBytes, memsafe.MemSafe, memsafe.SecretStr]


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("by_keyword", [False, True])
def test_from_fd_refuses_bools(value: bool, by_keyword: bool) -> None:
    """from_fd(False) would read stdin, from_fd(True) stdout."""
    with pytest.raises(TypeError, match="not 'bool'"):
        if by_keyword:
            memsafe.SecretBytes.from_fd(fd=value)
        else:
            memsafe.SecretBytes.from_fd(value)


def test_from_fd_still_takes_an_int_fd() -> None:
    r, w = os.pipe()
    os.write(w, b"abc")
    os.close(w)
    try:
        assert memsafe.SecretBytes.from_fd(r).read(bytes) == b"abc"
    finally:
        os.close(r)


@helpers.linux_only
def test_from_file_directory_names_it(tmp_path: pathlib.Path) -> None:
    for path in (tmp_path, str(tmp_path)):
        with pytest.raises(IsADirectoryError) as info:
            memsafe.SecretBytes.from_file(path)
        assert info.value.filename == path
        assert str(tmp_path) in str(info.value)


# ---- copies of subclass instances ---------------------------------------------


class Labelled(memsafe.SecretBytes):
    pass


class Slotted(memsafe.SecretStr):
    __slots__ = ("tag", "unset")


def test_copy_keeps_subclass_type_and_attributes() -> None:
    k = Labelled(b"key bytes")
    k.label = "db"  # type: ignore[attr-defined]
    k.meta = {"n": [1]}  # type: ignore[attr-defined]
    c = copy.copy(k)
    assert type(c) is Labelled and c.read(bytes) == b"key bytes"
    assert c.label == "db" and c.meta is k.meta  # type: ignore[attr-defined]
    c.close()
    assert not k.closed  # independent secure memory


def test_deepcopy_keeps_them_deep_and_cycles_map_to_the_copy() -> None:
    k = Labelled(b"key bytes")
    k.meta = {"n": [1]}  # type: ignore[attr-defined]
    k.me = k  # type: ignore[attr-defined]
    k.other = memsafe.SecretStr("x")  # type: ignore[attr-defined]
    d = copy.deepcopy(k)
    assert type(d) is Labelled and d.read(bytes) == b"key bytes"
    assert d.meta == {"n": [1]} and d.meta is not k.meta  # type: ignore[attr-defined]
    assert d.me is d  # type: ignore[attr-defined]
    assert d.other is not k.other and d.other.reveal() == "x"  # type: ignore[attr-defined]


def test_copy_keeps_slots() -> None:
    s = Slotted("text")
    s.tag = [1]
    c, d = copy.copy(s), copy.deepcopy(s)
    assert type(c) is Slotted and c.tag is s.tag
    assert type(d) is Slotted and d.tag == [1] and d.tag is not s.tag
    for x in (c, d):
        assert not hasattr(x, "unset")
        assert x.reveal() == "text"


@pytest.mark.parametrize("cls", TYPES)
def test_copy_of_the_base_types_unchanged(cls: type) -> None:
    value: Any = "abc" if cls is memsafe.SecretStr else b"abc"
    s = cls(value)
    for c in (copy.copy(s), copy.deepcopy(s)):
        assert type(c) is cls and c == s and c is not s
        assert not hasattr(c, "__dict__")


# ---- windows' views ------------------------------------------------------------


def test_hash_of_a_view_names_the_view_and_the_reason() -> None:
    m = memsafe.SecretBytes(b"abc")
    with m.read() as view:
        with pytest.raises(TypeError) as info:
            hash(view)
        with pytest.raises(TypeError) as info2:
            hash(view[:2])
    for e in (info.value, info2.value):
        text = str(e)
        assert "memoryview" in text and "memsafe window" in text
        assert "unhashable type: 'memsafe.Window'" not in text
    w = memsafe.MemSafe(4)
    with w.write() as view, pytest.raises(ValueError, match="writable memoryview"):
        hash(view)


def test_view_used_after_its_block_is_released() -> None:
    """CPython's own message ("released memoryview"): memoryview cannot be
    subclassed, and rewording it would cost every access through a
    wrapper (docs/api.md says so)."""
    m = memsafe.SecretBytes(b"abc")
    with m.read() as view:
        pass
    with pytest.raises(ValueError, match="released memoryview"):
        bytes(view)
    assert sys.getrefcount(view) >= 2
