"""memsafe.pydantic.SecretLength and SecretValidator: constraints and
after-validators on a memsafe field whose errors never echo the secret, on
every carrier pydantic validates - a plain BaseModel, a TypeAdapter, a
pydantic dataclass, a SecretModel, pydantic-settings - and in FastAPI's 422
body for body, query, header and cookie parameters (issue 17, point 6).

The positive controls use pydantic's own Field(min_length=...) /
AfterValidator / Query(min_length=...) on the same carriers: pydantic-core
records the raw input for those, and the same assertion finds the secret.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints'
# annotations, which name locally imported Query, Header, ...
import dataclasses
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest

import memsafe

pydantic = pytest.importorskip("pydantic")
if int(pydantic.VERSION.split(".")[0]) < 2:
    pytest.skip("pydantic v2 only", allow_module_level=True)

from pydantic import (  # noqa: E402
    AfterValidator,
    AliasChoices,
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticCustomError  # noqa: E402

import memsafe.pydantic as mp  # noqa: E402

SECRET = "s3cr3t-Lc7wQ"  # 12 characters (and 12 UTF-8 bytes)
ENV = "MEMSAFE_T17A_V"
TYPES = [memsafe.SecretStr, memsafe.SecretBytes, memsafe.MemSafe]
SEEN: list[Any] = []


def refuse(secret: Any) -> Any:
    SEEN.append(secret)
    raise ValueError("policy says no")


def accept(secret: Any) -> Any:
    SEEN.append(secret)
    return secret


def content(secret: Any) -> bytes:
    assert isinstance(secret, memsafe.Secret)
    return bytes(secret.read(bytes))


def errors_text(err: ValidationError) -> str:
    return repr(err) + str(err) + repr(err.errors()) + err.json()


# ---- the carriers ---------------------------------------------------------------

Validate = Callable[[Any], Any]


def _model(annotation: Any, base: type[Any] = BaseModel) -> Validate:
    model = create_model("M", __base__=base, v=(annotation, ...))
    return lambda value: model(v=value).v


def _adapter(annotation: Any) -> Validate:
    return TypeAdapter(annotation).validate_python


def _dataclass(annotation: Any) -> Validate:
    cls = pydantic.dataclasses.dataclass(
        dataclasses.make_dataclass("D", [("v", annotation)])
    )
    return lambda value: cls(v=value).v


def _secret_model(annotation: Any) -> Validate:
    return _model(annotation, mp.SecretModel)


def _settings(annotation: Any) -> Validate:
    settings = pytest.importorskip("pydantic_settings")

    class Settings(settings.BaseSettings):  # type: ignore[misc]
        model_config = settings.SettingsConfigDict(env_prefix="MEMSAFE_T17A_")
        v: annotation  # type: ignore[valid-type]

    def validate(value: Any) -> Any:
        with pytest.MonkeyPatch.context() as mp_env:
            mp_env.setenv(ENV, value)
            return Settings().v

    return validate


CARRIERS: dict[str, Callable[[Any], Validate]] = {
    "BaseModel": _model,
    "TypeAdapter": _adapter,
    "dataclass": _dataclass,
    "SecretModel": _secret_model,
    "BaseSettings": _settings,
}
# The carriers without SecretModel's conversion: where pydantic's own
# constraints echo the input.
PLAIN = ["BaseModel", "TypeAdapter", "dataclass", "BaseSettings"]


def kind(cls: type[Any]) -> str:
    return "string" if cls is memsafe.SecretStr else "bytes"


@pytest.fixture(autouse=True)
def clear_seen() -> Iterator[None]:
    SEEN.clear()
    yield
    SEEN.clear()


# ---- every carrier x (min, max, failing validator, passing) --------------------


FAILING: dict[
    str, tuple[Callable[[type[Any]], Any], Callable[[type[Any]], str], str]
] = {
    # annotation, error type, message
    "min": (
        lambda t: Annotated[t, mp.SecretLength(min_length=20)],
        lambda t: f"{kind(t)}_too_short",
        "at least 20",
    ),
    "max": (
        lambda t: Annotated[t, mp.SecretLength(max_length=4)],
        lambda t: f"{kind(t)}_too_long",
        "at most 4",
    ),
    "validator": (
        lambda t: Annotated[t, mp.SecretValidator(refuse)],
        lambda t: "value_error",
        "Value error, policy says no",
    ),
}


@pytest.mark.parametrize("case", list(FAILING))
@pytest.mark.parametrize("cls", TYPES)
@pytest.mark.parametrize("carrier", list(CARRIERS))
def test_failing_check_shows_only_the_mask(
    carrier: str, cls: type[Any], case: str
) -> None:
    annotation, error_type, message = FAILING[case]
    validate = CARRIERS[carrier](annotation(cls))
    with pytest.raises(ValidationError) as info:
        validate(SECRET)
    assert SECRET not in errors_text(info.value)
    (error,) = info.value.errors()
    assert error["input"] == mp.MASK
    assert error["type"] == error_type(cls)
    assert message in error["msg"]
    assert error["loc"] == (() if carrier == "TypeAdapter" else ("v",))
    if case == "validator":
        # The validator received the converted secret object.
        (seen,) = SEEN
        assert type(seen) is cls and content(seen) == SECRET.encode()
        # The user's exception (and its frames) is not chained to the error.
        assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize("cls", TYPES)
@pytest.mark.parametrize("carrier", list(CARRIERS))
def test_passing_value_is_the_exact_secret(carrier: str, cls: type[Any]) -> None:
    annotation = Annotated[
        cls,
        mp.SecretLength(min_length=12, max_length=12),
        mp.SecretValidator(accept),
    ]
    value = CARRIERS[carrier](annotation)(SECRET)
    assert type(value) is cls
    assert content(value) == SECRET.encode()
    (seen,) = SEEN
    assert seen is value


@pytest.mark.parametrize("carrier", PLAIN)
def test_positive_control_pydantic_constraints_echo(carrier: str) -> None:
    """pydantic's own Field(min_length=...) and AfterValidator on the same
    carriers put the raw input in the error: the assertion above would
    catch it (documented in docs/integration.md)."""
    for annotation in (
        Annotated[memsafe.SecretStr, Field(min_length=20)],
        Annotated[memsafe.SecretStr, Field(max_length=4)],
        Annotated[memsafe.SecretStr, AfterValidator(refuse)],
    ):
        with pytest.raises(ValidationError) as info:
            CARRIERS[carrier](annotation)(SECRET)
        assert SECRET in errors_text(info.value)


def test_lengths_count_characters_of_a_secretstr_and_bytes_otherwise() -> None:
    text = "\xe9" * 10  # 10 characters, 20 UTF-8 bytes
    chars = TypeAdapter(Annotated[memsafe.SecretStr, mp.SecretLength(max_length=10)])
    assert chars.validate_python(text).reveal() == text
    data = TypeAdapter(Annotated[memsafe.SecretBytes, mp.SecretLength(max_length=10)])
    with pytest.raises(ValidationError, match="at most 10 bytes"):
        data.validate_python(text)
    assert len(data.validate_python("\xe9" * 5)) == 10


def test_optional_and_order_of_annotations() -> None:
    adapter = TypeAdapter(
        Annotated[
            memsafe.SecretStr | None,
            mp.SecretLength(min_length=20),
            mp.SecretValidator(refuse),
        ]
    )
    assert adapter.validate_python(None) is None
    assert SEEN == []  # never called with None
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(SECRET)
    assert info.value.errors()[0]["type"] == "string_too_short"
    assert SEEN == []  # annotations apply in order: the length failed first

    class M(BaseModel):
        v: Annotated[memsafe.SecretStr, mp.SecretLength(min_length=20)] | None = None

    assert M().v is None and M(v=None).v is None
    with pytest.raises(ValidationError) as info:
        M(v=SECRET)
    assert SECRET not in errors_text(info.value)


def test_validator_errors_keep_pydantic_types() -> None:
    def custom(secret: Any) -> Any:
        raise PydanticCustomError("weak_password", "too weak: {why}", {"why": "short"})

    def asserting(secret: Any) -> Any:
        assert len(secret) > 20, "too short"
        return secret

    def known(secret: Any) -> Any:
        raise pydantic_core.PydanticKnownError("string_too_short", {"min_length": 99})

    import pydantic_core

    for func, error_type, msg in [
        (custom, "weak_password", "too weak: short"),
        (asserting, "assertion_error", "Assertion failed, too short"),
        (known, "string_too_short", "String should have at least 99 characters"),
    ]:
        adapter = TypeAdapter(Annotated[memsafe.SecretStr, mp.SecretValidator(func)])
        with pytest.raises(ValidationError) as info:
            adapter.validate_python(SECRET)
        assert SECRET not in errors_text(info.value)
        (error,) = info.value.errors()
        assert (error["type"], error["input"]) == (error_type, mp.MASK)
        # (pytest's assertion rewriting appends its own explanation)
        assert error["msg"].startswith(msg)


def test_validator_other_exceptions_propagate_and_return_value_is_used() -> None:
    def broken(secret: Any) -> Any:
        raise TypeError("a bug in the validator")

    with pytest.raises(TypeError, match="a bug in the validator"):
        TypeAdapter(
            Annotated[memsafe.SecretStr, mp.SecretValidator(broken)]
        ).validate_python(SECRET)
    replaced = TypeAdapter(
        Annotated[
            memsafe.SecretStr, mp.SecretValidator(lambda s: memsafe.SecretStr("other"))
        ]
    )
    assert replaced.validate_python(SECRET).reveal() == "other"


def test_limit_a_message_quoting_the_secret_shows_it() -> None:
    """Documented: the validator's message is kept as written."""

    def quoting(secret: Any) -> Any:
        raise ValueError(f"{secret.reveal()} is a dictionary word")

    adapter = TypeAdapter(Annotated[memsafe.SecretStr, mp.SecretValidator(quoting)])
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(SECRET)
    assert info.value.errors()[0]["input"] == mp.MASK
    assert SECRET in errors_text(info.value)


def test_a_validator_that_closes_the_secret_then_a_length_check() -> None:
    def closing(secret: Any) -> Any:
        secret.close()
        return secret

    adapter = TypeAdapter(
        Annotated[
            memsafe.SecretStr,
            mp.SecretValidator(closing),
            mp.SecretLength(min_length=1),
        ]
    )
    with pytest.raises(ValidationError, match="the secret is closed") as info:
        adapter.validate_python(SECRET)
    assert SECRET not in errors_text(info.value)


def test_rejected_input_is_still_masked() -> None:
    adapter = TypeAdapter(Annotated[memsafe.SecretStr, mp.SecretLength(min_length=1)])
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(b"\xff" + SECRET.encode())
    text = errors_text(info.value)
    assert "not valid UTF-8" in text and SECRET not in text
    with pytest.raises(ValidationError, match="memsafe's mask"):
        adapter.validate_python(mp.MASK)


def test_json_schema_has_min_and_max_length() -> None:
    class M(BaseModel):
        a: Annotated[memsafe.SecretStr, mp.SecretLength(min_length=8, max_length=64)]
        b: Annotated[memsafe.SecretBytes, mp.SecretLength(min_length=32)] | None = None
        c: Annotated[memsafe.SecretStr, mp.SecretValidator(accept)]

    props = M.model_json_schema()["properties"]
    assert props["a"] == {
        "title": "A",
        "type": "string",
        "format": "password",
        "writeOnly": True,
        "minLength": 8,
        "maxLength": 64,
    }
    assert props["b"]["anyOf"][0]["minLength"] == 32
    assert "maxLength" not in props["b"]["anyOf"][0]
    assert props["c"] == {
        "title": "C",
        "type": "string",
        "format": "password",
        "writeOnly": True,
    }
    # JSON serialization still masks.
    m = M(a="p" * 8, c="c")
    assert m.model_dump(mode="json") == {"a": mp.MASK, "b": None, "c": mp.MASK}


# ---- refused at construction / class creation -----------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "needs min_length, max_length or both"),
        ({"min_length": -1}, ValueError, "min_length must be 0 or more"),
        ({"max_length": -5}, ValueError, "max_length must be 0 or more"),
        ({"min_length": 5, "max_length": 4}, ValueError, "greater than max_length"),
        ({"min_length": True}, TypeError, "must be an int or None, not bool"),
        ({"max_length": 1.5}, TypeError, "must be an int or None, not float"),
        ({"min_length": "3"}, TypeError, "must be an int or None, not str"),
    ],
)
def test_secret_length_refuses_nonsense(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        mp.SecretLength(**kwargs)


def test_annotations_construction_and_targets() -> None:
    with pytest.raises(TypeError):
        mp.SecretLength(20)  # type: ignore[misc]  # keyword-only
    with pytest.raises(TypeError, match="takes a function"):
        mp.SecretValidator(3)  # type: ignore[arg-type]
    length = mp.SecretLength(min_length=0, max_length=3)
    assert repr(length) == "SecretLength(min_length=0, max_length=3)"
    assert length == mp.SecretLength(min_length=0, max_length=3)
    assert hash(length) == hash(mp.SecretLength(min_length=0, max_length=3))
    with pytest.raises(AttributeError, match="immutable"):
        length.min_length = 5  # type: ignore[misc]
    assert mp.SecretValidator(accept) == mp.SecretValidator(accept)
    assert "accept" in repr(mp.SecretValidator(accept))
    for target in (str, bytes, memsafe.SecretStr | str, list[memsafe.SecretStr]):
        for annotation in (mp.SecretLength(min_length=1), mp.SecretValidator(accept)):
            with pytest.raises(TypeError, match=r"applies to memsafe\.SecretStr"):
                TypeAdapter(Annotated[target, annotation])  # type: ignore[valid-type]


def test_public_names() -> None:
    for name in ("SecretLength", "SecretValidator"):
        assert name in mp.__all__
        assert getattr(mp, name).__doc__
        assert getattr(mp, name) is getattr(memsafe._pydantic, name)  # type: ignore[attr-defined]


# ---- SecretModel: aliases (AliasChoices, AliasPath, alias, by name) -------------


def swapped(data: Any, old: str, new: str) -> Any:
    """data with every str old replaced by new (containers copied)."""
    if isinstance(data, dict):
        return {k: swapped(v, old, new) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(swapped(v, old, new) for v in data)
    return new if data == old else data


class Choices(mp.SecretModel):
    model_config = ConfigDict(validate_by_name=True, extra="allow")
    password: Annotated[
        memsafe.SecretStr,
        Field(
            min_length=20,
            validation_alias=AliasChoices("pw", AliasPath("auth", "creds", 1), "pass"),
        ),
    ]


class Aliased(mp.SecretModel):
    model_config = ConfigDict(extra="allow")
    password: Annotated[memsafe.SecretStr, Field(alias="pw", max_length=4)]


@pytest.mark.parametrize(
    "data",
    [
        {"pw": SECRET},
        {"auth": {"creds": ["user", SECRET]}},
        {"auth": {"creds": ("user", SECRET)}},
        {"auth": {"creds": ["user"]}, "pass": SECRET},  # path absent: next choice
        {"password": SECRET},  # by name
        {"password": "x" * 30, "pass": SECRET},  # the alias wins over the name
    ],
)
def test_secret_model_alias_choices_and_paths_are_converted_first(
    data: dict[str, Any],
) -> None:
    before = repr(data)
    with pytest.raises(ValidationError) as info:
        Choices.model_validate(data)
    assert SECRET not in errors_text(info.value)
    (error,) = info.value.errors()
    assert error["input"] == mp.MASK
    assert repr(data) == before  # the caller's containers are not changed
    model = Choices.model_validate(swapped(data, SECRET, "g" * 24))
    assert model.password.reveal() == "g" * 24


def test_secret_model_converts_only_the_input_pydantic_reads() -> None:
    """Only the key pydantic uses is converted: with extra='allow' the
    other one stays in model_extra as given (not turned into a mask)."""
    m = Choices.model_validate({"pw": "p" * 20, "password": "n" * 20})
    assert m.password.reveal() == "p" * 20
    assert m.model_extra == {"password": "n" * 20}
    # alias only (validate_by_name off): the name is an extra, not converted.
    m = Aliased.model_validate({"pw": "abcd", "password": "name"})
    assert m.password.reveal() == "abcd" and m.model_extra == {"password": "name"}
    with pytest.raises(ValidationError) as info:
        Aliased.model_validate({"pw": SECRET})
    assert SECRET not in errors_text(info.value)


# ---- FastAPI: the real 422 body ---------------------------------------------------

GOOD = "g00d-secret-value-4567"  # 22 characters
Token = Annotated[memsafe.SecretStr, mp.SecretLength(min_length=20)]


class Login(BaseModel):  # a plain BaseModel
    user: str
    password: Annotated[memsafe.SecretStr, mp.SecretLength(min_length=20)]


def fastapi_client() -> Any:
    fastapi = pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi import Body, Cookie, Header, Query
    from fastapi.testclient import TestClient

    app = fastapi.FastAPI()

    def answer(secret: memsafe.SecretStr) -> dict[str, Any]:
        return {"type": type(secret).__name__, "exact": secret.reveal() == GOOD}

    @app.post("/body")
    def body(login: Login) -> dict[str, Any]:
        return answer(login.password)

    @app.post("/embed")
    def embed(token: Annotated[Token, Body(embed=True)]) -> dict[str, Any]:
        return answer(token)

    @app.get("/query")
    def query(token: Annotated[Token, Query()]) -> dict[str, Any]:
        return answer(token)

    @app.get("/validator")
    def validator(
        token: Annotated[memsafe.SecretStr, Query(), mp.SecretValidator(refuse)],
    ) -> dict[str, Any]:
        return answer(token)

    @app.get("/header")
    def header(x_token: Annotated[Token, Header()]) -> dict[str, Any]:
        return answer(x_token)

    @app.get("/cookie")
    def cookie(session: Annotated[Token, Cookie()]) -> dict[str, Any]:
        return answer(session)

    @app.get("/control-query")
    def control_query(
        token: Annotated[memsafe.SecretStr, Query(min_length=20)],
    ) -> dict[str, Any]:
        return answer(token)

    @app.get("/control-header")
    def control_header(
        x_token: Annotated[memsafe.SecretStr, Header(), AfterValidator(refuse)],
    ) -> dict[str, Any]:
        return answer(x_token)

    return TestClient(app)


def send(client: Any, route: str, value: str) -> Any:
    if route == "body":
        return client.post("/body", json={"user": "alice", "password": value})
    if route == "embed":
        return client.post("/embed", json={"token": value})
    if route in ("query", "validator", "control-query"):
        return client.get(f"/{route}", params={"token": value})
    if route in ("header", "control-header"):
        return client.get(f"/{route}", headers={"X-Token": value})
    assert route == "cookie"
    return client.get("/cookie", headers={"Cookie": f"session={value}"})


LOCS = {
    "body": ["body", "password"],
    "embed": ["body", "token"],
    "query": ["query", "token"],
    "validator": ["query", "token"],
    "header": ["header", "x-token"],
    "cookie": ["cookie", "session"],
}


@pytest.mark.parametrize("route", list(LOCS))
def test_fastapi_422_body_shows_only_the_mask(route: str) -> None:
    client = fastapi_client()
    r = send(client, route, SECRET)
    assert r.status_code == 422
    assert SECRET not in r.text
    (detail,) = r.json()["detail"]
    assert detail["input"] == mp.MASK
    assert detail["loc"] == LOCS[route]
    expected = "value_error" if route == "validator" else "string_too_short"
    assert detail["type"] == expected


@pytest.mark.parametrize("route", [r for r in LOCS if r != "validator"])
def test_fastapi_passes_the_exact_secret(route: str) -> None:
    client = fastapi_client()
    r = send(client, route, GOOD)
    assert r.status_code == 200, r.text
    assert r.json() == {"type": "SecretStr", "exact": True}


@pytest.mark.parametrize("route", ["control-query", "control-header"])
def test_fastapi_positive_control_pydantic_constraints_echo(route: str) -> None:
    """Query(min_length=...) and AfterValidator on a parameter: FastAPI's
    422 body carries the raw input (pydantic-core records it)."""
    client = fastapi_client()
    r = send(client, route, SECRET)
    assert r.status_code == 422 and SECRET in r.text


def test_fastapi_openapi_shows_the_lengths() -> None:
    client = fastapi_client()
    params = client.get("/openapi.json").json()["paths"]["/query"]["get"]["parameters"]
    (param,) = params
    assert param["schema"]["minLength"] == 20
    assert param["schema"]["format"] == "password"


def test_wrap_validator_error_shows_what_it_got() -> None:
    """Documented (docs/integration.md): a mode='wrap' validator's own error
    records the input it received - the raw secret on a plain model, the
    mask under SecretModel."""

    def wrap(value: Any, handler: Any) -> Any:
        raise ValueError("no")

    annotation = Annotated[memsafe.SecretStr, pydantic.WrapValidator(wrap)]
    with pytest.raises(ValidationError) as info:
        _model(annotation)(SECRET)
    assert SECRET in errors_text(info.value)
    with pytest.raises(ValidationError) as info:
        _secret_model(annotation)(SECRET)
    assert SECRET not in errors_text(info.value)


def test_validator_raising_a_validation_error_is_masked_too() -> None:
    """A validator that validates the plaintext itself (a TypeAdapter on
    reveal()) raises a ValidationError whose inputs are the plaintext:
    every input is replaced by the mask, types and messages kept."""
    longer = TypeAdapter(Annotated[str, Field(min_length=30)])

    class Policy(BaseModel):
        number: int
        word: str

        @pydantic.field_validator("word")
        @classmethod
        def no(cls, value: str) -> str:
            raise PydanticCustomError("policy_{n}", "policy {n} refused it", {"n": 7})

    def nested(secret: Any) -> Any:
        longer.validate_python(secret.reveal())
        return secret

    def model(secret: Any) -> Any:
        Policy(number=secret.reveal(), word=secret.reveal())
        return secret

    expected = {
        nested: [("string_too_short", (), "String should have at least 30 characters")],
        model: [
            ("int_parsing", ("number",), "Input should be a valid integer"),
            ("policy_{n}", ("word",), "policy 7 refused it"),
        ],
    }
    for func, errors in expected.items():
        adapter = TypeAdapter(Annotated[memsafe.SecretStr, mp.SecretValidator(func)])
        with pytest.raises(ValidationError) as info:
            adapter.validate_python(SECRET)
        assert SECRET not in errors_text(info.value)
        got = info.value.errors()
        assert [(e["type"], e["loc"]) for e in got] == [
            (t, loc) for t, loc, _ in errors
        ]
        assert all(
            e["msg"].startswith(msg) for e, (_, _, msg) in zip(got, errors, strict=True)
        )
        assert all(e["input"] == mp.MASK for e in got)


class Forbidding(mp.SecretModel):
    model_config = ConfigDict(extra="forbid")
    password: Annotated[
        memsafe.SecretStr, Field(validation_alias=AliasChoices("pw", "pass"))
    ]
    other: str = "x"


@pytest.mark.parametrize(
    "data",
    [
        {"pw": "good", "pass": SECRET},  # the unused choice is an extra
        {"pw": "good", "password": SECRET},  # the name, not read by alias
        {"password": SECRET},  # missing + extra
    ],
)
def test_secret_model_extra_forbidden_errors_show_the_mask(
    data: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError) as info:
        Forbidding.model_validate(data)
    assert SECRET not in errors_text(info.value)
    assert "extra_forbidden" in [e["type"] for e in info.value.errors()]


def test_secret_model_leaves_other_fields_inputs_alone() -> None:
    m = Forbidding.model_validate({"pw": "good", "other": SECRET})
    assert m.password.reveal() == "good" and m.other == SECRET
