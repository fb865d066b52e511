"""pydantic and pydantic-settings, as an application uses them (the details
are in tests/test_pydantic.py)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

import memsafe

from . import _leak
from ._support import PASSWORD, need
from ._table import FIELD, row


@row(
    "pydantic",
    "class M(BaseModel): key: memsafe.SecretStr (also SecretBytes, MemSafe)",
    FIELD,
    "validation copies the input into a new secret (the caller's str/bytes "
    "stays where it was); masked in repr and JSON dumps; a rejected input is "
    "not shown; other fields' errors show the whole input unless "
    "hide_input_in_errors=True",
)
def test_pydantic_model(password: memsafe.SecretStr) -> None:
    pydantic = need("pydantic")

    class Login(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        model_config = pydantic.ConfigDict(hide_input_in_errors=True)
        user: str
        password: memsafe.SecretStr

    login = Login.model_validate_json(json.dumps({"user": "u", "password": PASSWORD}))
    assert login.password == password
    assert PASSWORD not in repr(login) and PASSWORD not in login.model_dump_json()
    with pytest.raises(pydantic.ValidationError) as info:
        Login(password=PASSWORD)  # user missing
    assert PASSWORD not in str(info.value)


def settings_class(secrets_dir: pathlib.Path | None, memsafe_source: bool) -> Any:
    settings = need("pydantic_settings")
    from memsafe import _pydantic

    class Settings(settings.BaseSettings):  # type: ignore[misc, name-defined]
        model_config = settings.SettingsConfigDict(
            env_prefix="MSINT_", secrets_dir=secrets_dir
        )
        api_key: memsafe.SecretStr

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: Any,
            init_settings: Any,
            env_settings: Any,
            dotenv_settings: Any,
            file_secret_settings: Any,
        ) -> Any:
            if memsafe_source:
                file_secret_settings = _pydantic.SecretsDirSource.like(
                    file_secret_settings
                )
            return init_settings, env_settings, dotenv_settings, file_secret_settings

    return Settings


@row(
    "pydantic-settings",
    "BaseSettings field memsafe.SecretStr from an environment variable",
    FIELD,
    "the value stays in os.environ (and the process's environment block) as "
    "a str: memsafe cannot wipe it",
)
def test_settings_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSINT_API_KEY", PASSWORD)
    s = settings_class(None, False)()
    assert s.api_key == PASSWORD
    assert PASSWORD not in repr(s)


@row(
    "pydantic-settings",
    "secrets_dir=... with the default file source",
    FIELD,
    "reads each file with Path.read_text().strip(): str copies left on the "
    "heap (the leak scan finds them)",
)
def test_settings_secrets_dir_default(tmp_path: pathlib.Path) -> None:
    (tmp_path / "msint_api_key").write_text(PASSWORD + "\n")
    assert settings_class(tmp_path, False)().api_key == PASSWORD
    res = _leak.scan_after(SETTINGS_SNIPPET.format(memsafe=False), tmp_path, _files)
    _leak.copy_found(res)


@row(
    "pydantic-settings",
    "secrets_dir=... with memsafe._pydantic.SecretsDirSource",
    FIELD,
    "reads the files of memsafe fields with read(2) straight into secret "
    "memory (other fields as usual): the leak scan finds no copy",
)
def test_settings_secrets_dir_memsafe(tmp_path: pathlib.Path) -> None:
    (tmp_path / "msint_api_key").write_text(PASSWORD + "\n")
    assert settings_class(tmp_path, True)().api_key == PASSWORD
    res = _leak.scan_after(SETTINGS_SNIPPET.format(memsafe=True), tmp_path, _files)
    _leak.no_copy(res)


def _files(secret: bytes, workdir: pathlib.Path) -> None:
    (workdir / "api_key").write_bytes(secret + b"\n")


SETTINGS_SNIPPET = """
key.close(); password.close()
from pydantic_settings import BaseSettings, SettingsConfigDict
from memsafe import _pydantic

class Settings(BaseSettings):
    model_config = SettingsConfigDict(secrets_dir=workdir)
    api_key: memsafe.SecretStr

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        if {memsafe}:
            file_secret_settings = _pydantic.SecretsDirSource.like(file_secret_settings)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

s = Settings()
assert len(s.api_key) == 32
"""
