"""pydantic v2 and pydantic-settings: memsafe's types as field types."""

from __future__ import annotations

import copy
import json
import os
import pathlib
import subprocess
import sys
from typing import Any
from unittest import mock

import helpers
import pytest

import memsafe

pydantic = pytest.importorskip("pydantic")
if int(pydantic.VERSION.split(".")[0]) < 2:
    pytest.skip("pydantic v2 only", allow_module_level=True)

from pydantic import BaseModel, ConfigDict, ValidationError  # noqa: E402

from memsafe import _pydantic  # noqa: E402

SECRET = "s3cr3t-Lc7wQ"  # marker that must never show up in errors or dumps
TYPES = [memsafe.SecretStr, memsafe.SecretBytes, memsafe.MemSafe]


class Model(BaseModel):
    text: memsafe.SecretStr
    raw: memsafe.SecretBytes
    buf: memsafe.MemSafe | None = None


def content(secret: memsafe.Secret) -> bytes:
    return secret.read(bytes)


def test_import_memsafe_does_not_import_pydantic() -> None:
    out = helpers.ok(
        helpers.run_child(
            """
            import sys, memsafe
            k = memsafe.SecretStr("x")
            k.plaintext(len)
            print(any(m == "pydantic" or m.startswith(("pydantic.", "pydantic_"))
                      or m == "memsafe._pydantic" for m in sys.modules))
            import pydantic
            class M(pydantic.BaseModel):
                k: memsafe.SecretStr
            print("memsafe._pydantic" in sys.modules, M(k="v").k.reveal())
            """
        )
    )
    assert out.split() == ["False", "True", "v"]


# ---- field types ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("h\xe9llo", "h\xe9llo".encode()),
        (b"bytes", b"bytes"),
        (bytearray(b"bytearray"), b"bytearray"),
        (memoryview(b"view"), b"view"),
        (pydantic.SecretStr("pyd-str"), b"pyd-str"),
        (pydantic.SecretBytes(b"pyd-bytes"), b"pyd-bytes"),
        (memsafe.SecretStr("ms-str"), b"ms-str"),
        (memsafe.SecretBytes(b"ms-bytes"), b"ms-bytes"),
        (memsafe.MemSafe(b"ms-buf"), b"ms-buf"),
    ],
)
@pytest.mark.parametrize("cls", TYPES)
def test_accepted_inputs(cls: type, value: Any, expected: bytes) -> None:
    class One(BaseModel):
        v: cls  # type: ignore[valid-type]

    got = One(v=value).v
    assert type(got) is cls
    assert content(got) == expected
    if cls is memsafe.SecretStr:
        assert len(got) == len(expected.decode())
    if type(value) is cls:
        assert got is value  # an instance is taken as it is
    elif isinstance(value, memsafe.Secret):
        assert got is not value and not value.closed  # a copy


def test_subclasses_are_field_types_too() -> None:
    class Token(memsafe.SecretStr):
        pass

    class Key(memsafe.SecretBytes):
        pass

    class Sub(BaseModel):
        token: Token
        key: Key

    m = Sub(token="t", key=memsafe.SecretStr("k"))
    assert type(m.token) is Token and type(m.key) is Key
    assert m.token.reveal() == "t" and m.key.reveal() == b"k"


def test_str_for_a_bytes_field_goes_through_secret_memory() -> None:
    # str -> SecretStr (encoded straight into secret memory) -> SecretBytes,
    # never str.encode() (a bytes copy on the heap).
    with mock.patch.object(_pydantic, "_text_copy", wraps=_pydantic._text_copy) as f:
        got = _pydantic.to_secret(memsafe.SecretBytes, "p\xe4ss")
    assert f.call_count == 1
    assert got.reveal() == "p\xe4ss".encode()


def test_masked_everywhere() -> None:
    m = Model(text=SECRET, raw=SECRET.encode(), buf=b"\x00" + SECRET.encode())
    shown = [
        repr(m),
        str(m),
        repr(m.model_dump()),
        str(m.model_dump()),
        m.model_dump_json(),
        json.dumps(m.model_dump(mode="json")),
        repr(m.model_fields_set),
    ]
    for text in shown:
        assert SECRET not in text
    assert json.loads(m.model_dump_json()) == {
        "text": "**********",
        "raw": "**********",
        "buf": "**********",
    }
    # Python mode keeps the (masked) secret objects themselves.
    assert m.model_dump()["text"] is m.text


@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_json_schema_is_a_write_only_password(mode: str) -> None:
    schema = Model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    props = schema["properties"]
    for name in ("text", "raw"):
        assert props[name]["writeOnly"] is True
        assert props[name]["format"] == "password"
        assert props[name]["type"] == "string"
    assert {"format": "password", "type": "string", "writeOnly": True} in props["buf"][
        "anyOf"
    ]


def test_model_validate_json() -> None:
    m = Model.model_validate_json(json.dumps({"text": SECRET, "raw": "r\xe9"}))
    assert m.text == SECRET
    assert m.raw.reveal() == "r\xe9".encode()


# ---- errors never show the input -------------------------------------------


def assert_hidden(err: ValidationError, *needles: str) -> None:
    texts = [str(err), repr(err), repr(err.errors()), err.json()]
    for text in texts:
        for needle in needles:
            assert needle not in text, text
    for e in err.errors():
        if e["type"] == "memsafe_secret":
            assert e["input"] == "**********"
            assert "the input is not shown" in e["msg"]


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("text", 987654321, "987654321"),
        ("text", "\ud800" + SECRET, SECRET),  # a lone surrogate
        ("text", b"\xff" + SECRET.encode(), SECRET),  # not UTF-8
        ("text", memsafe.SecretBytes(b"\xfe" + SECRET.encode()), SECRET),
        ("raw", 31337.25, "31337"),
        ("raw", ["list", SECRET], SECRET),
        ("raw", {"k": SECRET}, SECRET),
        ("buf", object(), "object at"),
    ],
)
def test_failing_field_does_not_echo_its_input(
    field: str, value: Any, needle: str
) -> None:
    values: dict[str, Any] = {"text": "ok", "raw": b"ok", field: value}
    with pytest.raises(ValidationError) as info:
        Model(**values)
    assert [e["loc"] for e in info.value.errors()] == [(field,)]
    assert info.value.errors()[0]["type"] == "memsafe_secret"
    assert_hidden(info.value, needle)


def test_failing_json_input_is_hidden_too() -> None:
    with pytest.raises(ValidationError) as info:
        Model.model_validate_json(json.dumps({"text": 4242424242, "raw": "x"}))
    assert_hidden(info.value, "4242424242")


def test_closed_secret_is_refused_with_a_reason() -> None:
    k = memsafe.SecretBytes(b"k")
    k.close()
    with pytest.raises(ValidationError, match="the secret is closed"):
        Model(text="t", raw=k)


def test_other_fields_errors_show_the_input_unless_hidden() -> None:
    """pydantic's own errors (here 'missing') print the whole input dict,
    secrets included: hide_input_in_errors=True stops that."""

    class Loose(BaseModel):
        key: memsafe.SecretStr
        port: int

    with pytest.raises(ValidationError) as info:
        Loose(key=SECRET)  # type: ignore[call-arg]
    assert SECRET in str(info.value)  # the documented caveat

    class Strict(BaseModel):
        model_config = ConfigDict(hide_input_in_errors=True)
        key: memsafe.SecretStr
        port: int

    with pytest.raises(ValidationError) as info:
        Strict(key=SECRET)  # type: ignore[call-arg]
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    # errors() and json() still carry the input dict unless told not to.
    assert SECRET in repr(info.value.errors())
    assert SECRET not in repr(info.value.errors(include_input=False))
    assert SECRET not in info.value.json(include_input=False)


# ---- copies ----------------------------------------------------------------


def test_model_copy_deep_is_an_independent_secure_copy() -> None:
    m = Model(text=SECRET, raw=b"raw", buf=b"buf")
    c = m.model_copy(deep=True)
    for name in ("text", "raw", "buf"):
        a, b = getattr(m, name), getattr(c, name)
        assert a is not b and a == b
        assert helpers.memory_of(a) != helpers.memory_of(b)
    m.text.close()
    assert c.text.reveal() == SECRET
    shallow = c.model_copy()
    assert shallow.text is c.text
    assert copy.deepcopy(c).raw.reveal() == b"raw"


def test_models_compare_in_constant_time_and_refuse_pickling() -> None:
    import pickle

    a = Model(text="same", raw=b"r")
    assert a == Model(text="same", raw=b"r")
    assert a != Model(text="diff", raw=b"r")
    with pytest.raises(TypeError):
        pickle.dumps(a)


# ---- pydantic-settings -----------------------------------------------------

settings = pytest.importorskip("pydantic_settings")


def make_settings(secrets_dir: pathlib.Path | None, memsafe_source: bool) -> type:
    class Settings(settings.BaseSettings):  # type: ignore[misc, name-defined]
        model_config = settings.SettingsConfigDict(
            secrets_dir=secrets_dir, env_prefix="MSTEST_"
        )
        api_key: memsafe.SecretStr
        raw: memsafe.SecretBytes | None = None
        port: int = 0

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: Any,
            init_settings: Any,
            env_settings: Any,
            dotenv_settings: Any,
            file_secret_settings: Any,
        ) -> tuple[Any, ...]:
            if memsafe_source:
                file_secret_settings = _pydantic.SecretsDirSource.like(
                    file_secret_settings
                )
            return init_settings, env_settings, dotenv_settings, file_secret_settings

    return Settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSTEST_API_KEY", SECRET)
    monkeypatch.setenv("MSTEST_RAW", "r\xe9")
    s = make_settings(None, False)()
    assert s.api_key == SECRET and s.raw.reveal() == "r\xe9".encode()
    assert SECRET not in repr(s) and SECRET not in s.model_dump_json()


def test_settings_environment_error_hides_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MSTEST_API_KEY", "\udcff" + SECRET)  # not storable
    with pytest.raises(ValidationError) as info:
        make_settings(None, False)()
    assert_hidden(info.value, SECRET)


@pytest.fixture
def secrets_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "mstest_api_key").write_text(f"  {SECRET}\n")
    (tmp_path / "mstest_raw").write_bytes(b"\x00\x01\xff raw\n")
    return tmp_path


@pytest.mark.parametrize("memsafe_source", [False, True])
def test_settings_from_secrets_dir(
    secrets_dir: pathlib.Path, memsafe_source: bool
) -> None:
    cls = make_settings(secrets_dir, memsafe_source)
    if memsafe_source:
        # The memsafe source never reads a file into a Python str.
        with mock.patch.object(
            pathlib.Path, "read_text", side_effect=AssertionError("read_text")
        ):
            s = cls()
    else:
        (secrets_dir / "mstest_raw").write_text("raw text\n")
        s = cls()
    assert s.api_key.reveal() == SECRET
    assert s.raw.reveal() == (b"\x00\x01\xff raw" if memsafe_source else b"raw text")


def test_memsafe_source_keeps_init_secrets_dir(secrets_dir: pathlib.Path) -> None:
    cls = make_settings(None, True)
    s = cls(_secrets_dir=secrets_dir)
    assert s.api_key.reveal() == SECRET


def test_memsafe_source_refuses_a_non_utf8_text_file(secrets_dir: pathlib.Path) -> None:
    (secrets_dir / "mstest_api_key").write_bytes(b"\xff" + SECRET.encode())
    with pytest.raises(ValidationError) as info:
        make_settings(secrets_dir, True)()
    assert "not valid UTF-8" in str(info.value)
    assert_hidden(info.value, SECRET)


def test_memsafe_source_stays_inside_the_directory(
    secrets_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "key"
    outside.write_text("outside")
    (secrets_dir / "mstest_api_key").unlink()
    (secrets_dir / "mstest_api_key").symlink_to(outside)
    with pytest.warns(UserWarning, match="outside"), pytest.raises(ValidationError):
        make_settings(secrets_dir, True)()


def test_read_secret_file_strips_like_pydantic_settings(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "k"
    for raw in [b"\t key \r\n", b"key", b"\n\n", b"", b" \x1fk\x0b"]:
        path.write_bytes(raw)
        got = _pydantic.read_secret_file(memsafe.SecretStr, path)
        assert got.reveal() == raw.decode().strip()
        assert _pydantic.read_secret_file(memsafe.MemSafe, path).read(bytes) == (
            raw.strip(bytes(_pydantic.ASCII_WHITESPACE))
        )


# ---- _secretstr_from_utf8 --------------------------------------------------


def test_secretstr_from_utf8() -> None:
    from memsafe._memsafe import _secretstr_from_utf8

    s = _secretstr_from_utf8(memsafe.SecretStr, memsafe.SecretBytes("\u20ac!".encode()))
    assert s.reveal() == "\u20ac!" and len(s) == 2 and s.nbytes == 4
    assert _secretstr_from_utf8(memsafe.SecretStr, bytearray(b"ab")).reveal() == "ab"
    with pytest.raises(ValueError, match="offset 1") as info:
        _secretstr_from_utf8(memsafe.SecretStr, b"a\xff" + SECRET.encode())
    assert SECRET not in str(info.value)
    with pytest.raises(TypeError):
        _secretstr_from_utf8(memsafe.SecretBytes, b"x")
    with pytest.raises(TypeError):
        _secretstr_from_utf8(memsafe.SecretStr, "a str")


# ---- leak scan: secrets_dir through the memsafe source ----------------------

SETTINGS_CHILD = r"""
import os, pathlib, sys
import memsafe
from memsafe import _pydantic
from pydantic_settings import BaseSettings, SettingsConfigDict

secrets_dir, use_memsafe = sys.argv[1], sys.argv[2] == "1"
out, go = int(sys.argv[3]), int(sys.argv[4])

class Settings(BaseSettings):
    model_config = SettingsConfigDict(secrets_dir=secrets_dir)
    api_key: memsafe.SecretStr

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        if use_memsafe:
            file_secret_settings = _pydantic.SecretsDirSource.like(file_secret_settings)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

s = Settings()
assert len(s.api_key) == 64
os.write(out, f"{os.getpid()} ready\n".encode())
os.read(go, 1)
"""


def settings_scan(tmp_path: pathlib.Path, use_memsafe: bool) -> Any:
    import test_leak_scan as ls

    secret = ls.text_secret(64)
    (tmp_path / "api_key").write_bytes(secret + b"\n")
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SETTINGS_CHILD,
            str(tmp_path),
            "1" if use_memsafe else "0",
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
        res = ls.scan(int(line.split()[0]), [secret])
        os.close(go_w)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(out_r)
    assert res.scanned > 4 << 20
    return res


@helpers.linux_only
@helpers.not_sanitized
def test_secrets_dir_leaves_no_copy_with_the_memsafe_source(
    tmp_path: pathlib.Path,
) -> None:
    res = settings_scan(tmp_path, use_memsafe=True)
    assert res.full == 0, res.where
    assert res.pieces == 0, res.where


@helpers.linux_only
@helpers.not_sanitized
def test_secrets_dir_default_source_leaves_copies(tmp_path: pathlib.Path) -> None:
    """The positive control, and the caveat it documents: pydantic-settings'
    own source reads the file into str objects memsafe cannot wipe."""
    res = settings_scan(tmp_path, use_memsafe=False)
    assert res.full >= 1, res
