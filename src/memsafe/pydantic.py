"""pydantic support for memsafe: the public names.

The secret types are pydantic field types as they are (``api_key:
memsafe.SecretStr``); this module holds what goes beyond that:

- ``SecretModel``: a ``BaseModel`` base that converts each memsafe field's
  input to the secret *first*, so that ``Field(min_length=...)``,
  ``AfterValidator`` and ``@field_validator`` see the secret object and no
  ``ValidationError`` (nor FastAPI's 422 body) ever contains the raw input.
- ``SecretLength`` and ``SecretValidator``: annotations
  (``Annotated[memsafe.SecretStr, SecretLength(min_length=12)]``) that
  check the secret and mask their errors anywhere pydantic validates - a
  plain ``BaseModel``, a ``TypeAdapter``, a pydantic dataclass,
  pydantic-settings, FastAPI query/header/cookie/body parameters - where
  pydantic's own ``Field(min_length=...)`` and ``AfterValidator`` echo the
  raw input (outside ``SecretModel``).
- ``SecretsDirSource``: pydantic-settings' ``secrets_dir`` source reading
  the files of memsafe fields straight into secret memory (needs
  pydantic-settings; built on first access).
- ``MASK``: what a secret serializes to in JSON (``'**********'``); it is
  refused as an input, so ``model_validate_json(m.model_dump_json())``
  fails clearly instead of storing the mask as the secret.

Importing this module imports pydantic; ``import memsafe`` does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memsafe._pydantic import (
    MASK,
    SecretInput,
    SecretLength,
    SecretModel,
    SecretValidator,
)

if TYPE_CHECKING:
    from pydantic_settings import SecretsSettingsSource

    SecretsDirSource: type[SecretsSettingsSource]


def __getattr__(name: str) -> Any:
    # pydantic-settings is optional: SecretsDirSource is built on first use.
    if name == "SecretsDirSource":
        from memsafe import _pydantic

        cls = _pydantic.SecretsDirSource
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MASK",
    "SecretInput",
    "SecretLength",
    "SecretModel",
    "SecretValidator",
    "SecretsDirSource",
]
