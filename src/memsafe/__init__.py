"""memsafe: keep secrets out of reach inside a Python process.

Secrets live in memory owned by a C extension: locked against swap, excluded
from core dumps, fenced by guard pages, wiped on free, and no-access except
inside explicit read or write windows::

    import hashlib, memsafe

    key = memsafe.SecretBytes.random(32)
    with key.read() as view:            # readable only inside the block
        digest = hashlib.sha256(view).digest()

See README.md and docs/ for what is protected and what is not.
"""

from __future__ import annotations

import os
import warnings
from typing import Literal

from memsafe._memsafe import (
    LockError,
    LockWarning,
    MemSafe,
    PlaintextWarning,
    Secret,
    SecretBytes,
    SecretStr,
    Window,
    compare_digest,
    get_lock_policy,
    set_lock_policy,
)

__version__ = "0.1.0"

__all__ = [
    "LockError",
    "LockWarning",
    "MemSafe",
    "PlaintextWarning",
    "Secret",
    "SecretBytes",
    "SecretStr",
    "Window",
    "__version__",
    "compare_digest",
    "get_lock_policy",
    "set_lock_policy",
]

POLICY_ENV = "MEMSAFE_LOCK_POLICY"

_POLICIES: dict[str, Literal["strict", "warn", "off"]] = {
    "strict": "strict",
    "warn": "warn",
    "off": "off",
}


def _policy_from_environment() -> None:
    """Apply MEMSAFE_LOCK_POLICY; an unknown value keeps 'strict' and warns."""
    value = os.environ.get(POLICY_ENV, "").strip().lower()
    if not value:
        return
    if value in _POLICIES:
        set_lock_policy(_POLICIES[value])
        return
    warnings.warn(
        f"{POLICY_ENV}={value!r} is not 'strict', 'warn' or 'off'; "
        "keeping the 'strict' lock policy",
        RuntimeWarning,
        stacklevel=2,
    )


_policy_from_environment()
