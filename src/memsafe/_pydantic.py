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

from pydantic import BaseModel, model_validator
from pydantic import SecretBytes as PydanticSecretBytes
from pydantic import SecretStr as PydanticSecretStr
from pydantic_core import PydanticCustomError, core_schema

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


def _input_keys(name: str, field: Any) -> list[str]:
    keys = [name]
    for alias in (field.alias, field.validation_alias):
        if isinstance(alias, str) and alias not in keys:
            keys.append(alias)
    return keys


def convert_secret_fields(model: type[BaseModel], data: Any) -> Any:
    """data with the input of each memsafe field converted to its secret
    type and wrapped in a SecretInput (a new dict; data is not changed).
    An input that cannot be converted is left for the field to refuse."""
    if not isinstance(data, dict):
        return data
    out = None
    for name, field in model.model_fields.items():
        target = secret_field_type(field.annotation)
        if target is None:
            continue
        for key in _input_keys(name, field):
            value = data.get(key)
            if value is None or type(value) is SecretInput:
                continue
            try:
                secret = to_secret(target, value)
            except _Reject:
                continue
            if out is None:
                out = dict(data)
            out[key] = SecretInput(secret)
    return data if out is None else out


class SecretModel(BaseModel):
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
    """

    @model_validator(mode="before")
    @classmethod
    def _memsafe_secrets_first(cls, data: Any) -> Any:
        return convert_secret_fields(cls, data)


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
    "SecretModel",
    "SecretsDirSource",  # noqa: F822 - made by __getattr__
    "convert_secret_fields",
    "get_core_schema",
    "get_json_schema",
    "read_secret_file",
]
