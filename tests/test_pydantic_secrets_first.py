"""pydantic: no error echoes a secret, constraints and after-validators see
the secret object, the JSON mask is refused as input (issue 17, point 6).

pydantic applies Field(min_length/max_length), AfterValidator and
@field_validator(mode='after') around a field type's own validation and
records the field's raw input in their errors; memsafe.pydantic.SecretModel
converts memsafe fields first, so that raw input is a mask.  The plain-
BaseModel tests are the positive control: the same model without
SecretModel echoes the input, which the same assertion catches.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest

import memsafe

pydantic = pytest.importorskip("pydantic")
if int(pydantic.VERSION.split(".")[0]) < 2:
    pytest.skip("pydantic v2 only", allow_module_level=True)

from pydantic import (  # noqa: E402
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
)

import memsafe.pydantic as mp  # noqa: E402

SECRET = "s3cr3t-Lc7wQ"  # 12 characters; must never show up in an error
SEEN: list[Any] = []


def refuse_after(value: Any) -> Any:
    SEEN.append(value)
    raise ValueError("policy says no")


class Short(mp.SecretModel):
    user: str
    password: Annotated[memsafe.SecretStr, Field(min_length=20)]


class Long(mp.SecretModel):
    password: Annotated[memsafe.SecretStr, Field(max_length=4)]


class BytesLong(mp.SecretModel):
    key: Annotated[memsafe.SecretBytes, Field(min_length=13)]


class After(mp.SecretModel):
    password: Annotated[memsafe.SecretStr, AfterValidator(refuse_after)]


class Decorated(mp.SecretModel):
    password: memsafe.SecretStr

    @field_validator("password")
    @classmethod
    def check(cls, value: Any) -> Any:
        return refuse_after(value)


class Aliased(mp.SecretModel):
    password: Annotated[memsafe.SecretStr, Field(alias="pw", min_length=20)]


class Optional(mp.SecretModel):
    password: Annotated[memsafe.SecretStr, Field(min_length=20)] | None = None


class Plain(BaseModel):  # positive control: no SecretModel
    password: Annotated[memsafe.SecretStr, Field(min_length=20)]


REFUSING = [Short, Long, After, Decorated]


def errors_text(err: ValidationError) -> str:
    return str(err) + repr(err.errors()) + err.json()


def payload(model: type[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"password": SECRET}
    if model is Short:
        data["user"] = "alice"
    return data


@pytest.mark.parametrize("model", REFUSING)
def test_constraint_and_after_validator_errors_show_only_the_mask(
    model: type[Any],
) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(payload(model))
    assert SECRET not in errors_text(info.value)
    (error,) = info.value.errors()
    assert error["input"] == mp.MASK
    assert error["loc"] == ("password",)


def test_positive_control_plain_model_echoes_the_input() -> None:
    """Without SecretModel pydantic records the raw input (documented)."""
    with pytest.raises(ValidationError) as info:
        Plain(password=SECRET)
    assert SECRET in errors_text(info.value)


def test_after_validators_see_the_secret_object() -> None:
    SEEN.clear()
    for model in (After, Decorated):
        with pytest.raises(ValidationError):
            model(password=SECRET)
    assert [type(v) for v in SEEN] == [memsafe.SecretStr, memsafe.SecretStr]
    assert all(v.reveal() == SECRET for v in SEEN)


def test_lengths_are_the_secrets_len() -> None:
    """min/max_length count characters of a SecretStr, bytes of a
    SecretBytes (str stored as UTF-8)."""
    text = "\xe9" * 20  # 20 characters, 40 UTF-8 bytes
    assert Short(user="u", password=text).password.reveal() == text
    with pytest.raises(ValidationError, match="at most 4"):
        Long(password="\xe9" * 5)
    assert Long(password="\xe9" * 4).password.reveal() == "\xe9" * 4
    # 7 characters, 14 bytes: long enough as bytes.
    assert len(BytesLong(key="\xe9" * 7).key) == 14
    with pytest.raises(ValidationError, match="at least 13"):
        BytesLong(key="x" * 12)


def test_valid_input_and_aliases_and_optional() -> None:
    good = "g" * 24
    m = Short(user="u", password=good)
    assert isinstance(m.password, memsafe.SecretStr) and m.password.reveal() == good
    assert Aliased(pw=good).password.reveal() == good
    with pytest.raises(ValidationError) as info:
        Aliased(pw=SECRET)
    assert SECRET not in errors_text(info.value)
    assert Optional().password is None
    assert Optional(password=None).password is None
    with pytest.raises(ValidationError) as info:
        Optional(password=SECRET)
    assert SECRET not in errors_text(info.value)


def test_input_dict_is_not_changed_and_secret_instances_pass_through() -> None:
    data = {"user": "u", "password": "p" * 20}
    Short.model_validate(data)
    assert data == {"user": "u", "password": "p" * 20}
    s = memsafe.SecretStr("q" * 20)
    assert Short(user="u", password=s).password is s


def test_rejected_input_still_masked() -> None:
    with pytest.raises(ValidationError) as info:
        Short(user="u", password=b"\xff" * 30)  # not UTF-8
    text = errors_text(info.value)
    assert "not valid UTF-8" in text and "\\xff" not in text


BEFORE_SEEN: list[Any] = []


def see_before(value: Any) -> Any:
    BEFORE_SEEN.append(value)
    return value


class Before(mp.SecretModel):
    password: Annotated[memsafe.SecretStr, BeforeValidator(see_before)]


def test_before_validator_sees_the_mask() -> None:
    """Documented: a mode='before' validator runs before the field type;
    with SecretModel it receives the mask-reading carrier, not the text."""
    BEFORE_SEEN.clear()
    assert Before(password=SECRET).password.reveal() == SECRET
    assert BEFORE_SEEN == [mp.MASK] and isinstance(BEFORE_SEEN[0], mp.SecretInput)
    assert repr(BEFORE_SEEN[0]) == repr(mp.MASK)


# ---- the JSON mask is refused as input ---------------------------------------


class Creds(BaseModel):
    password: memsafe.SecretStr
    key: memsafe.SecretBytes


def test_json_round_trip_refuses_the_mask() -> None:
    m = Creds(password=SECRET, key=b"k" * 16)
    dumped = m.model_dump_json()
    assert json.loads(dumped) == {"password": mp.MASK, "key": mp.MASK}
    with pytest.raises(ValidationError) as info:
        Creds.model_validate_json(dumped)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [("password",), ("key",)]
    assert all("memsafe's mask" in e["msg"] for e in errors)
    assert "model_validate(m.model_dump())" in errors[0]["msg"]
    for mask in (mp.MASK, mp.MASK.encode()):
        with pytest.raises(ValidationError, match="memsafe's mask"):
            Creds(password=mask, key=b"k")


def test_python_round_trip_is_the_documented_route() -> None:
    m = Creds(password=SECRET, key=b"k" * 16)
    again = Creds.model_validate(m.model_dump())
    assert again.password.reveal() == SECRET
    assert again.key.read(bytes) == b"k" * 16


# ---- FastAPI's real 422 body ---------------------------------------------------


def fastapi_client() -> Any:
    fastapi = pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    app = fastapi.FastAPI()

    @app.post("/short")
    def short(body: Short) -> dict[str, bool]:
        return {"ok": len(body.password) >= 20}

    @app.post("/after")
    def after(body: After) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/plain")
    def plain(body: Plain) -> dict[str, bool]:
        return {"ok": True}

    return TestClient(app)


@pytest.mark.parametrize("path", ["/short", "/after"])
def test_fastapi_422_body_has_no_secret(path: str) -> None:
    client = fastapi_client()
    r = client.post(path, json={"user": "alice", "password": SECRET})
    assert r.status_code == 422
    assert SECRET not in r.text
    detail = r.json()["detail"]
    assert [d["input"] for d in detail] == [mp.MASK]
    assert detail[0]["loc"] == ["body", "password"]


def test_fastapi_accepts_a_good_secret_and_control_echoes() -> None:
    client = fastapi_client()
    r = client.post("/short", json={"user": "alice", "password": "x" * 24})
    assert r.status_code == 200 and r.json() == {"ok": True}
    # Positive control: a plain BaseModel's 422 body carries the input.
    r = client.post("/plain", json={"password": SECRET})
    assert r.status_code == 422 and SECRET in r.text


# ---- the public module ------------------------------------------------------------


def test_public_module() -> None:
    assert mp.SecretModel is memsafe._pydantic.SecretModel  # type: ignore[attr-defined]
    assert mp.__doc__ and mp.SecretModel.__doc__
    pytest.importorskip("pydantic_settings")
    from pydantic_settings import SecretsSettingsSource

    from memsafe import _pydantic

    assert mp.SecretsDirSource is _pydantic.SecretsDirSource
    assert issubclass(mp.SecretsDirSource, SecretsSettingsSource)
    with pytest.raises(AttributeError):
        mp.NoSuchName  # noqa: B018


def test_settings_mix_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """class Settings(BaseSettings, SecretModel): an environment value that
    breaks a constraint is masked too."""
    pytest.importorskip("pydantic_settings")
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(BaseSettings, mp.SecretModel):
        model_config = SettingsConfigDict(env_prefix="MEMSAFE_T17_")
        token: Annotated[memsafe.SecretStr, Field(min_length=20)]

    monkeypatch.setenv("MEMSAFE_T17_TOKEN", SECRET)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert SECRET not in errors_text(info.value)
    assert info.value.errors()[0]["input"] == mp.MASK
    monkeypatch.setenv("MEMSAFE_T17_TOKEN", "t" * 20)
    assert Settings().token.reveal() == "t" * 20
