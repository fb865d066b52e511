"""pydantic v2 support for memsafe's secret types.

``memsafe.SecretStr``, ``memsafe.SecretBytes`` and ``memsafe.MemSafe`` are
field types as they are, in ``BaseModel`` and pydantic-settings'
``BaseSettings`` alike, without ``arbitrary_types_allowed``::

    class Settings(BaseSettings):
        api_key: memsafe.SecretStr

The C types' ``__get_pydantic_core_schema__`` and
``__get_pydantic_json_schema__`` import this module the first time pydantic
asks for them; nothing else in memsafe imports pydantic.

- Validation accepts str, bytes-like objects, pydantic's own ``SecretStr``
  and ``SecretBytes``, and memsafe secrets (an instance of the field's type
  is taken as it is, like any pydantic field; another kind is copied into a
  new secret).  A str for a bytes field is stored as UTF-8, a bytes-like
  object for a SecretStr field must be UTF-8.
- A rejected input never appears in the ``ValidationError``: the validator
  replaces it by ``HiddenInput`` (a str subclass that reads
  ``'**********'``) before the error is raised, so ``str(err)``,
  ``err.errors()`` and ``err.json()`` show only the mask and the input's
  type.  Other fields' errors (``missing``, ``extra_forbidden``, a model
  validator) may still show the whole input dict, secrets included: set
  ``hide_input_in_errors=True`` on models that take secrets.
- Serialized to JSON (``model_dump_json()``, ``model_dump(mode='json')``) a
  secret is ``'**********'``; ``model_dump()`` in Python mode keeps the
  secret object, whose repr is masked; ``repr(model)`` shows the mask.
- JSON schema: ``{'type': 'string', 'format': 'password', 'writeOnly':
  True}``.
- ``model_copy(deep=True)`` gives an independent secure copy
  (``__deepcopy__``); a shallow ``model_copy()`` shares the secret.

``SecretsDirSource`` is pydantic-settings' ``secrets_dir`` source reading
the files of memsafe fields straight into secret memory
(``SecretBytes.from_file``) instead of through ``Path.read_text()``.
"""

from __future__ import annotations

import types
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    ValidationError,
    model_validator,
)
from pydantic import SecretBytes as PydanticSecretBytes
from pydantic import SecretStr as PydanticSecretStr
from pydantic_core import (
    InitErrorDetails,
    PydanticCustomError,
    PydanticKnownError,
    core_schema,
)

from memsafe._memsafe import MemSafe, Secret, SecretBytes, SecretStr
from memsafe._memsafe import _secretstr_from_utf8 as secretstr_from_utf8

MASK = "**********"
MASK_BYTES = MASK.encode()

# What str.strip() removes from ASCII text (pydantic-settings strips secret
# files); non-ASCII whitespace at the ends is kept.
ASCII_WHITESPACE = frozenset(b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")


class HiddenInput(str):
    """Stands in for a rejected input in a ValidationError: reads as the
    mask, carries only the input's type name and why it was refused."""

    type_name: str
    reason: str

    def __new__(cls, type_name: str, reason: str) -> HiddenInput:
        self = super().__new__(cls, MASK)
        self.type_name = type_name
        self.reason = reason
        return self

    def __repr__(self) -> str:
        return repr(MASK)

    def __reduce__(self) -> tuple[Any, ...]:
        return (HiddenInput, (self.type_name, self.reason))


class SecretInput(str):
    """A field's input after ``SecretModel`` converted it: reads as the
    mask (so every error pydantic records for the field, and FastAPI's
    422 body, shows only ``'**********'``) and carries the secret the
    field's validation then takes."""

    secret: Secret

    def __new__(cls, secret: Secret) -> SecretInput:
        self = super().__new__(cls, MASK)
        self.secret = secret
        return self

    def __repr__(self) -> str:
        return repr(MASK)

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a memsafe SecretInput cannot be pickled")


class _Reject(Exception):
    """A reason to refuse an input; never carries the input itself."""


MASK_REFUSED = (
    "the input is memsafe's mask '**********', not a secret: JSON from "
    "model_dump_json() masks every secret, so it cannot be validated back "
    "(round-trip in Python mode with model_validate(m.model_dump()), or "
    "supply the secrets again)"
)


def type_name(obj: object) -> str:
    t = type(obj)
    module = getattr(t, "__module__", "builtins")
    qualname = getattr(t, "__qualname__", t.__name__)
    return qualname if module == "builtins" else f"{module}.{qualname}"


def _expected(cls: type[Secret]) -> str:
    if issubclass(cls, SecretStr):
        return (
            "a str, UTF-8 bytes, a memsafe secret or pydantic's SecretStr/SecretBytes"
        )
    return (
        "bytes, a bytes-like object, a str (stored as UTF-8), a memsafe "
        "secret or pydantic's SecretBytes/SecretStr"
    )


def _text_copy(cls: type[Any], text: str) -> Any:
    """A str stored in a bytes-kind secret as UTF-8, without a bytes copy
    on the Python heap (SecretStr encodes straight into secret memory)."""
    tmp = SecretStr(text)
    try:
        return cls(tmp)
    finally:
        tmp.close()


def to_secret(cls: type[Any], value: object) -> Any:
    """value converted to cls; _Reject with a content-free reason if it
    cannot be."""
    text = issubclass(cls, SecretStr)
    if type(value) is SecretInput:
        return to_secret(cls, value.secret)
    if (isinstance(value, str) and value == MASK) or (
        isinstance(value, bytes) and value == MASK_BYTES
    ):
        raise _Reject(MASK_REFUSED)
    if isinstance(value, Secret) and value.closed:
        raise _Reject("the secret is closed")
    if isinstance(value, cls):
        return value
    try:
        if isinstance(value, Secret):
            if text and not isinstance(value, SecretStr):
                return secretstr_from_utf8(cls, value)
            return cls(value)
        if isinstance(value, (PydanticSecretStr, PydanticSecretBytes)):
            return to_secret(cls, value.get_secret_value())
        if isinstance(value, str):
            return cls(value) if text else _text_copy(cls, value)
        if isinstance(value, (bool, int, float)) or value is None:
            raise _Reject(f"Input should be {_expected(cls)}")
        try:
            view = memoryview(value)  # type: ignore[arg-type]
        except TypeError:
            raise _Reject(f"Input should be {_expected(cls)}") from None
        with view:
            if not view.c_contiguous:
                raise _Reject("the buffer is not contiguous")
            if text:
                return secretstr_from_utf8(cls, view)
            return cls(view)
    except ValueError as exc:
        # memsafe's own messages carry offsets and indices, never content.
        raise _Reject(str(exc)) from None
    except BufferError:
        raise _Reject("the buffer could not be read") from None


def _converter(cls: type[Secret]) -> Callable[[object], object]:
    def convert(value: object) -> object:
        try:
            return to_secret(cls, value)
        except _Reject as exc:
            return HiddenInput(type_name(value), str(exc))

    return convert


def _refuse(value: object) -> object:
    if type(value) is HiddenInput:
        raise PydanticCustomError(
            "memsafe_secret",
            "{reason} (got {input_type}; the input is not shown)",
            {"reason": value.reason, "input_type": value.type_name},
        )
    return value


def _mask(value: object) -> str:
    return MASK


def get_core_schema(cls: type[Secret], source: Any, handler: Any) -> Any:
    """The core schema behind cls.__get_pydantic_core_schema__."""
    # The first step never fails: it turns a bad input into HiddenInput, so
    # the error the second step raises records the mask as its input.
    return core_schema.chain_schema(
        [
            core_schema.no_info_plain_validator_function(_converter(cls)),
            core_schema.no_info_plain_validator_function(_refuse),
        ],
        serialization=core_schema.plain_serializer_function_ser_schema(
            _mask, when_used="json", return_schema=core_schema.str_schema()
        ),
    )


def get_json_schema(cls: type[Secret], schema: Any, handler: Any) -> dict[str, Any]:
    """The JSON schema behind cls.__get_pydantic_json_schema__."""
    return {"type": "string", "format": "password", "writeOnly": True}


# ---- converting first: SecretModel ----------------------------------------


def _alias_paths(alias: object) -> list[tuple[str | int, ...]]:
    """The input paths a str alias, AliasPath or AliasChoices looks at, in
    pydantic's lookup order."""
    if alias is None:
        return []
    if isinstance(alias, str):
        return [(alias,)]
    if isinstance(alias, AliasPath):
        return [tuple(alias.path)]
    if isinstance(alias, AliasChoices):
        return [path for choice in alias.choices for path in _alias_paths(choice)]
    raise TypeError(
        f"memsafe.pydantic.SecretModel: unsupported validation alias {alias!r} "
        "(use a str, AliasPath or AliasChoices)"
    )


def input_paths(
    model: type[BaseModel], name: str, field: Any
) -> list[tuple[str | int, ...]]:
    """Where pydantic looks for the field's input, first match wins: the
    validation alias (or alias), then the field's name when the model
    validates by name (or has no alias)."""
    config = model.model_config
    by_alias = config.get("validate_by_alias", True)
    by_name = bool(config.get("validate_by_name") or config.get("populate_by_name"))
    alias = (
        field.validation_alias if field.validation_alias is not None else field.alias
    )
    paths = _alias_paths(alias) if by_alias else []
    if alias is None or by_name or not by_alias:
        paths.append((name,))
    unique: list[tuple[str | int, ...]] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique


_MISSING = object()


def _step(container: object, key: str | int) -> object:
    if isinstance(key, str):
        if isinstance(container, dict) and key in container:
            return container[key]
        return _MISSING
    if isinstance(container, (list, tuple)) and -len(container) <= key < len(container):
        return container[key]
    return _MISSING


def _replaced(container: Any, path: tuple[str | int, ...], value: object) -> Any:
    """A copy of container with the item at path replaced (the containers on
    the path are copied; container itself is not changed)."""
    key, rest = path[0], path[1:]
    new = value if not rest else _replaced(container[key], rest, value)
    if isinstance(container, dict):
        out = dict(container)
        out[key] = new
        return out
    items = list(container)
    items[key] = new  # type: ignore[index]
    return items if isinstance(container, list) else tuple(items)


def _value_at(data: object, path: tuple[str | int, ...]) -> object:
    for key in path:
        data = _step(data, key)
        if data is _MISSING:
            break
    return data


def convert_secret_fields(model: type[BaseModel], data: Any) -> Any:
    """data with the input of each memsafe field converted to its secret
    type and wrapped in a SecretInput (a new dict, the containers on an
    AliasPath copied; data is not changed).  The input converted is the
    one pydantic will use: the first of the field's alias paths found,
    then its name.  Under ``extra='forbid'`` the field's other top-level
    keys present (an unused alias choice, the name when validating by alias
    only) are converted too, so that their ``extra_forbidden`` errors show
    the mask; under ``extra='allow'`` they stay as given (they are the
    model's extras).  An input that cannot be converted is left for the
    field to refuse."""
    if not isinstance(data, dict):
        return data
    fields = model.model_fields
    paths = {name: input_paths(model, name, field) for name, field in fields.items()}
    forbid = model.model_config.get("extra") == "forbid"
    out = data
    for name, field in fields.items():
        target = secret_field_type(field.annotation)
        if target is None:
            continue
        candidates = list(paths[name])
        if forbid and (name,) not in candidates:
            candidates.append((name,))
        others = {p[0] for other, ps in paths.items() if other != name for p in ps}
        read = False
        for path in candidates:
            value = _value_at(out, path)
            if value is _MISSING:
                continue
            if read and (len(path) != 1 or path[0] in others or not forbid):
                continue
            was_read, read = read, True
            if value is None or type(value) is SecretInput:
                continue
            try:
                secret = to_secret(target, value)
            except _Reject:
                continue
            out = _replaced(out, path, SecretInput(secret))
            if was_read is False and not forbid:
                break
    return out


# Without pydantic installed (the static-analysis venv), BaseModel is Any.
class SecretModel(BaseModel):  # type: ignore[misc,unused-ignore]
    """A ``BaseModel`` whose memsafe fields are converted to secrets before
    pydantic validates anything else about them.

    pydantic applies ``Field(min_length=...)``/``max_length``,
    ``AfterValidator`` and ``@field_validator`` (mode ``'after'``) around a
    field type's own validation, and records the field's *raw input* in
    their errors - so on a plain ``BaseModel`` a too-short password ends up
    in ``ValidationError.errors()`` and in FastAPI's 422 body.  Deriving
    from ``SecretModel`` replaces each memsafe field's input by the secret
    first (wrapped in a str that reads ``'**********'``): constraints and
    after-validators see the secret object (lengths are its ``len()``), and
    every error shows the mask.  A ``mode='before'`` field validator sees
    that mask, not the input.  Mix it into settings classes too:
    ``class Settings(BaseSettings, SecretModel)``.

    The input converted is the one pydantic will read: a field's ``alias``,
    a str ``validation_alias``, each ``AliasPath`` and ``AliasChoices``
    choice in pydantic's order (the containers along a path are copied,
    the caller's data is not changed), then the field's name
    (``validate_by_name``, or no alias); the field's other keys present
    are converted too under ``extra='forbid'`` (their ``extra_forbidden``
    errors show the mask).  Only dict input is converted
    (``from_attributes`` objects are not): outside that, or for
    constraints on anything but a memsafe field, use ``SecretLength`` and
    ``SecretValidator``, which mask on any model.
    """

    @model_validator(mode="before")  # type: ignore[untyped-decorator,unused-ignore]
    @classmethod
    def _memsafe_secrets_first(cls, data: Any) -> Any:
        return convert_secret_fields(cls, data)


# ---- annotations that mask anywhere: SecretLength, SecretValidator ---------
#
# pydantic applies its own Field(min_length=...) and AfterValidator around
# the field type's schema, as function-after validators, and pydantic-core
# records the field's raw input in any error they raise.  These annotations
# wrap the memsafe type's schema instead: the wrapped handler converts the
# input to the secret, the check runs on the secret, and a failure is raised
# as a ValidationError whose own line error carries the mask as its input -
# pydantic-core keeps that input.  An exception of any other kind escaping
# the wrap function would be recorded with the raw input, so every
# ValueError is caught here.


def _masked(
    error_type: str | PydanticCustomError, ctx: dict[str, Any] | None = None
) -> ValidationError:
    detail: InitErrorDetails = {"type": error_type, "loc": (), "input": MASK}
    if ctx is not None:
        detail["ctx"] = ctx
    return ValidationError.from_exception_data("memsafe", [detail])


def _remasked(err: ValidationError) -> ValidationError:
    """err (raised by a validator's own validation, whose inputs may be the
    plaintext) with every input replaced by the mask; types, locations,
    messages and contexts kept (exceptions in a context as their str)."""
    details: list[InitErrorDetails] = []
    for line in err.errors(include_url=False, include_input=False):
        ctx = {
            key: str(value) if isinstance(value, BaseException) else value
            for key, value in (line.get("ctx") or {}).items()
        }
        detail: InitErrorDetails = {
            "type": line["type"],
            "loc": line["loc"],
            "input": MASK,
        }
        if ctx:
            detail["ctx"] = ctx
        try:
            ValidationError.from_exception_data("memsafe", [detail])
        except (KeyError, TypeError, ValueError):
            # Not one of pydantic's error types: a custom one, kept with
            # its rendered message (no context to format it again with).
            detail = {
                "type": PydanticCustomError(line["type"], line["msg"]),
                "loc": line["loc"],
                "input": MASK,
            }
        details.append(detail)
    return ValidationError.from_exception_data("memsafe", details)


def _annotated_target(owner: str, source: object) -> type[Secret]:
    """The memsafe type an annotation is applied to: source must be one, or
    Optional of one; TypeError otherwise (at class creation)."""
    bare = _unannotated(source)
    if isinstance(bare, type) and issubclass(bare, Secret):
        return bare
    if typing.get_origin(bare) in (typing.Union, types.UnionType):
        args = [_unannotated(a) for a in typing.get_args(bare)]
        found = [a for a in args if isinstance(a, type) and issubclass(a, Secret)]
        if len(found) == 1 and all(a is found[0] or a is type(None) for a in args):
            return found[0]
    raise TypeError(
        f"memsafe.pydantic.{owner} applies to memsafe.SecretStr, "
        f"memsafe.SecretBytes or memsafe.MemSafe (or Optional of one), not "
        f"{source!r}: write Annotated[memsafe.SecretStr, {owner}(...)]"
    )


def _check_size(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"memsafe.pydantic.SecretLength: {name} must be an int or None, "
            f"not {type(value).__name__}"
        )
    if value < 0:
        raise ValueError(
            f"memsafe.pydantic.SecretLength: {name} must be 0 or more, not {value}"
        )
    return int(value)


class SecretLength:
    """``Annotated[memsafe.SecretStr, SecretLength(min_length=12)]``: a
    length constraint checked on the secret, whose error never shows the
    input.

    Usable wherever pydantic validates an annotation: a plain ``BaseModel``,
    a ``TypeAdapter``, a pydantic dataclass, pydantic-settings, FastAPI
    ``Query``/``Header``/``Cookie``/``Body`` parameters.  The input is
    converted to the memsafe type first; the length is the secret's
    ``len()``: characters of a ``SecretStr``, bytes of a ``SecretBytes`` or
    ``MemSafe``.  A failure is pydantic's own error type
    (``string_too_short``/``string_too_long`` for a ``SecretStr``,
    ``bytes_too_short``/``bytes_too_long`` for the bytes kinds) with the
    input ``'**********'``.  The JSON schema gets ``minLength`` and
    ``maxLength``.

    Unlike pydantic's ``Field(min_length=...)``, which records the raw
    input in its error (and FastAPI's 422 body) on any model but a
    ``SecretModel``.
    """

    __slots__ = ("max_length", "min_length")

    min_length: int | None
    max_length: int | None

    def __init__(
        self, *, min_length: int | None = None, max_length: int | None = None
    ) -> None:
        low = _check_size("min_length", min_length)
        high = _check_size("max_length", max_length)
        if low is None and high is None:
            raise ValueError(
                "memsafe.pydantic.SecretLength needs min_length, max_length or both"
            )
        if low is not None and high is not None and low > high:
            raise ValueError(
                f"memsafe.pydantic.SecretLength: min_length ({low}) is greater "
                f"than max_length ({high}); no secret could pass"
            )
        object.__setattr__(self, "min_length", low)
        object.__setattr__(self, "max_length", high)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("memsafe.pydantic.SecretLength is immutable")

    def __repr__(self) -> str:
        parts = [
            f"{name}={getattr(self, name)}"
            for name in ("min_length", "max_length")
            if getattr(self, name) is not None
        ]
        return f"SecretLength({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not SecretLength:
            return NotImplemented
        return (self.min_length, self.max_length) == (
            other.min_length,
            other.max_length,
        )

    def __hash__(self) -> int:
        return hash((SecretLength, self.min_length, self.max_length))

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        """The memsafe type's schema, wrapped by the length check."""
        target = _annotated_target("SecretLength", source)
        kind = "string" if issubclass(target, SecretStr) else "bytes"
        low, high = self.min_length, self.max_length

        def secret_length(
            value: Any, inner: core_schema.ValidatorFunctionWrapHandler
        ) -> Any:
            secret = inner(value)
            if secret is None:
                return None
            if not isinstance(secret, Secret):
                raise TypeError(
                    "memsafe.pydantic.SecretLength got "
                    f"{type(secret).__name__}, not a memsafe secret (a validator "
                    "before it returned something else)"
                )
            if secret.closed:
                raise _masked(
                    PydanticCustomError("memsafe_secret", "the secret is closed")
                )
            size = len(secret)
            if low is not None and size < low:
                raise _masked(f"{kind}_too_short", {"min_length": low})
            if high is not None and size > high:
                raise _masked(f"{kind}_too_long", {"max_length": high})
            return secret

        return core_schema.no_info_wrap_validator_function(
            secret_length, handler(source)
        )

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        """The memsafe type's JSON schema with minLength/maxLength."""
        js = handler(schema)
        target = handler.resolve_ref_schema(js)
        members = target.get("anyOf", [target])
        for member in members:
            if member.get("type") == "string":
                if self.min_length is not None:
                    member["minLength"] = self.min_length
                if self.max_length is not None:
                    member["maxLength"] = self.max_length
        return js


class SecretValidator:
    """``Annotated[memsafe.SecretStr, SecretValidator(func)]``: an
    after-validator that receives the secret object, and whose error never
    shows the input.

    Usable wherever pydantic validates an annotation (plain ``BaseModel``,
    ``TypeAdapter``, pydantic dataclass, pydantic-settings, FastAPI
    parameters).  ``func(secret)`` is called with the converted secret
    (never with ``None`` on an ``Optional`` field) and returns the field's
    value, as for pydantic's ``AfterValidator`` (return the secret it got).
    A ``ValueError``, ``AssertionError``, ``PydanticCustomError`` or
    ``PydanticKnownError`` it raises becomes a ``ValidationError`` with
    pydantic's usual type and message (``value_error``: ``'Value error,
    <message>'``) and the input ``'**********'``; a ``ValidationError`` it
    raises (from validating something itself) keeps its errors with every
    input replaced by the mask; any other exception propagates unchanged.
    The message is kept as written: a message that quotes the secret shows
    it, which memsafe cannot prevent.

    Named apart from ``pydantic.AfterValidator`` on purpose: that one, on
    any model but a ``SecretModel``, records the raw input in its error.
    """

    __slots__ = ("func",)

    func: Callable[[Any], Any]

    def __init__(self, func: Callable[[Any], Any]) -> None:
        if not callable(func):
            raise TypeError(
                "memsafe.pydantic.SecretValidator takes a function of one "
                f"argument (the secret), not {type(func).__name__}"
            )
        object.__setattr__(self, "func", func)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("memsafe.pydantic.SecretValidator is immutable")

    def __repr__(self) -> str:
        return f"SecretValidator({getattr(self.func, '__qualname__', self.func)!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not SecretValidator:
            return NotImplemented
        return self.func == other.func

    def __hash__(self) -> int:
        return hash((SecretValidator, self.func))

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        """The memsafe type's schema, wrapped by the call to func."""
        _annotated_target("SecretValidator", source)
        func = self.func

        def secret_validator(
            value: Any, inner: core_schema.ValidatorFunctionWrapHandler
        ) -> Any:
            secret = inner(value)
            if secret is None:
                return None
            failure: ValidationError
            try:
                return func(secret)
            # ValidationError, PydanticCustomError and PydanticKnownError are
            # ValueErrors: they come first.
            except ValidationError as exc:
                failure = _remasked(exc)
            except PydanticCustomError as exc:
                failure = _masked(exc)
            except PydanticKnownError as exc:
                failure = _masked(exc.type, exc.context)
            except ValueError as exc:
                failure = _masked("value_error", {"error": str(exc)})
            except AssertionError as exc:
                failure = _masked("assertion_error", {"error": str(exc)})
            # Raised outside the except clause: the user's exception (and
            # its traceback's frames) is not chained to the error.
            raise failure

        return core_schema.no_info_wrap_validator_function(
            secret_validator, handler(source)
        )


# ---- pydantic-settings: secrets_dir files straight into secret memory -------


def _unannotated(annotation: object) -> object:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def secret_field_type(annotation: object) -> type[Secret] | None:
    """The memsafe type of a field annotated X or Optional[X] (either one
    possibly Annotated[X, ...])."""
    annotation = _unannotated(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Secret):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [
            a
            for a in map(_unannotated, typing.get_args(annotation))
            if isinstance(a, type) and issubclass(a, Secret)
        ]
        if len(found) == 1:
            return found[0]
    return None


def read_secret_file(cls: type[Any], path: str | Path) -> Any:
    """The file's content, ASCII whitespace stripped at both ends (as
    pydantic-settings strips), as a cls - read with read(2) into secret
    memory, no Python bytes or str of it made.  Text that is not UTF-8
    comes back as a SecretBytes, which validation then refuses with a
    content-free error."""
    raw = SecretBytes.from_file(path)
    try:
        with raw.read() as view:
            start, end = 0, len(view)
            while start < end and view[start] in ASCII_WHITESPACE:
                start += 1
            while end > start and view[end - 1] in ASCII_WHITESPACE:
                end -= 1
            with view[start:end] as piece:
                if not issubclass(cls, SecretStr):
                    return cls(piece)
                try:
                    return secretstr_from_utf8(cls, piece)
                except ValueError:
                    return SecretBytes(piece)
    finally:
        raw.close()


def _make_secrets_dir_source() -> type:
    from pydantic_settings import SecretsSettingsSource

    class SecretsDirSource(SecretsSettingsSource):  # type: ignore[misc, unused-ignore]
        """pydantic-settings' ``secrets_dir`` source, except that the file
        of a field typed with a memsafe secret (or Optional of one) is read
        straight into secret memory.  Other fields are read as usual.

        Use it in place of the default one::

            @classmethod
            def settings_customise_sources(cls, settings_cls, init_settings,
                                           env_settings, dotenv_settings,
                                           file_secret_settings):
                return (init_settings, env_settings, dotenv_settings,
                        SecretsDirSource.like(file_secret_settings))
        """

        @classmethod
        def like(cls, source: Any) -> Any:
            """A SecretsDirSource with the configuration of source (the
            default secrets source pydantic-settings built, with any
            ``_secrets_dir=`` given to the settings' constructor)."""
            new = cls.__new__(cls)
            new.__dict__.update(vars(source))
            return new

        def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
            target = secret_field_type(field.annotation)
            if target is None:
                return super().get_field_value(field, field_name)  # type: ignore[no-any-return, unused-ignore]
            roots = getattr(self, "_resolved_secrets_paths", {})
            field_key = field_name
            for field_key, env_name, _complex in self._extract_field_info(
                field, field_name
            ):
                for secrets_path in reversed(self.secrets_paths):
                    path = self.find_case_path(
                        secrets_path, env_name, self.case_sensitive
                    )
                    if not path:
                        continue
                    try:
                        resolved = path.resolve()
                    except (OSError, RuntimeError) as e:
                        warnings.warn(
                            f'attempted to load secret file "{path}" but it '
                            f"could not be resolved: {e}",
                            stacklevel=4,
                        )
                        continue
                    if not path.is_file():
                        warnings.warn(
                            f'attempted to load secret file "{path}" but it is '
                            "not a file",
                            stacklevel=4,
                        )
                        continue
                    root = roots.get(secrets_path) or secrets_path.resolve()
                    if root not in resolved.parents:
                        warnings.warn(
                            f'attempted to load secret file "{path}" but it '
                            f'resolves outside of "{secrets_path}".',
                            stacklevel=4,
                        )
                        continue
                    return read_secret_file(target, resolved), field_key, False
            return None, field_key, False

    return SecretsDirSource


def __getattr__(name: str) -> Any:
    # pydantic-settings is optional: built on first use.
    if name == "SecretsDirSource":
        cls = _make_secrets_dir_source()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MASK",
    "HiddenInput",
    "MemSafe",
    "SecretInput",
    "SecretLength",
    "SecretModel",
    "SecretValidator",
    "SecretsDirSource",  # noqa: F822 - made by __getattr__
    "convert_secret_fields",
    "get_core_schema",
    "get_json_schema",
    "input_paths",
    "read_secret_file",
]
