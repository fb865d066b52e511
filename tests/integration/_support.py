"""Values and helpers shared by the integration tests."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import memsafe

# 32 ASCII bytes: an AES-256/ChaCha20 key, a bcrypt-sized password, and
# valid UTF-8 for a SecretStr of the same text.
KEY = b"K3y-material-for-integration-32b"
PASSWORD = "p\xe4ss-w\xf6rd:with-colon"


def need(module: str) -> Any:
    """The installed module, or skip the test (the integration extra
    installs them all)."""
    return pytest.importorskip(module)


def kept(kind: str = "bytes") -> Any:
    """The consumer kept the plaintext: left intact, PlaintextWarning."""
    return pytest.warns(memsafe.PlaintextWarning, match=f"left its {kind} intact")


def has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
