"""How the extension names things: qualified type names in error messages,
SecretStr.nbytes."""

from __future__ import annotations

import pytest

import memsafe


class SecretStr:
    """A foreign class with the same short name as memsafe's."""


SecretStr.__module__ = "someones.types"


def test_secretstr_error_names_the_qualified_type() -> None:
    with pytest.raises(TypeError, match=r"not 'someones\.types\.SecretStr'"):
        memsafe.SecretStr(SecretStr())  # type: ignore[arg-type]


def test_builtin_types_keep_their_short_name() -> None:
    with pytest.raises(TypeError, match=r"not 'int'"):
        memsafe.SecretStr(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not 'memsafe\.SecretBytes'"):
        memsafe.SecretStr(memsafe.SecretBytes(b"x"))  # type: ignore[arg-type]


def test_nested_classes_use_their_qualname() -> None:
    class Outer:
        class Inner:
            pass

    with pytest.raises(TypeError, match=r"test_describe\.test_nested.*\.Outer\.Inner'"):
        memsafe.SecretStr(Outer.Inner())  # type: ignore[arg-type]


def test_pydantic_secretstr_is_named_in_full() -> None:
    pydantic = pytest.importorskip("pydantic")
    with pytest.raises(TypeError) as info:
        memsafe.SecretStr(pydantic.SecretStr("x"))  # type: ignore[arg-type]
    assert "'pydantic.types.SecretStr'" in str(info.value)
    assert "x'" not in str(info.value).replace("'pydantic.types.SecretStr'", "")


def test_plaintext_error_names_the_qualified_type() -> None:
    with pytest.raises(TypeError, match=r"not 'someones\.types\.SecretStr'"):
        memsafe.SecretBytes(b"k").plaintext(SecretStr())  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("", 0), ("abc", 3), ("h\xe9", 3), ("\u20ac", 3), ("\U0001f511x", 5)],
)
def test_secretstr_nbytes_is_the_utf8_length(text: str, nbytes: int) -> None:
    s = memsafe.SecretStr(text)
    assert s.nbytes == nbytes == len(text.encode())
    assert len(s) == len(text)
    with s.read() as view:
        assert len(view) == s.nbytes
    s.append("\xe9")
    assert s.nbytes == nbytes + 2


def test_nbytes_of_a_closed_secretstr_raises() -> None:
    s = memsafe.SecretStr("abc")
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.nbytes  # noqa: B018


def test_nbytes_is_secretstr_only() -> None:
    assert not hasattr(memsafe.SecretBytes(b"ab"), "nbytes")
    assert not hasattr(memsafe.MemSafe(2), "nbytes")
    assert isinstance(vars(memsafe.SecretStr)["nbytes"].__doc__, str)
