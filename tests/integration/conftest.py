"""Fixtures shared by the integration tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

import memsafe

from ._support import KEY, PASSWORD


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: a test of a third-party library (tests/integration)"
    )


@pytest.fixture(autouse=True)
def _kept_plaintext_fails_the_test() -> Iterator[None]:
    """A consumer that keeps a plaintext() object must be expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", memsafe.PlaintextWarning)
        yield


@pytest.fixture
def key() -> memsafe.SecretBytes:
    return memsafe.SecretBytes(KEY)


@pytest.fixture
def password() -> memsafe.SecretStr:
    return memsafe.SecretStr(PASSWORD)
