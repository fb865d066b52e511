"""memsafe: keep secrets out of reach inside a Python process.

Secrets live in memory owned by a C extension: locked against swap, excluded
from core dumps, fenced by guard pages, wiped on free, and no-access except
inside explicit read or write windows::

    import hashlib, memsafe

    key = memsafe.SecretBytes.random(32)
    with key.read() as view:            # readable only inside the block
        digest = hashlib.sha256(view).digest()

What is protected, and what is not, is set out in the threat model of the
documentation; ``python -m memsafe`` reports which protections are active on
the machine it runs on (``python -m memsafe --help`` for its options).
"""

from __future__ import annotations

import atexit
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from memsafe import _memsafe, _mp
from memsafe._memsafe import (
    LockError,
    LockWarning,
    MemSafe,
    Plaintext,
    PlaintextWarning,
    Secret,
    SecretBytes,
    SecretStr,
    Window,
    compare_digest,
    get_default_storage,
    get_fork_policy,
    get_lock_policy,
    get_secretmem,
    harden,
    purge,
    purge_on_signals,
    set_default_storage,
    set_fork_policy,
    set_lock_policy,
    set_secretmem,
)

__version__ = "0.1.0"

__all__ = [
    "LockError",
    "LockWarning",
    "MemSafe",
    "Plaintext",
    "PlaintextWarning",
    "Secret",
    "SecretBytes",
    "SecretStr",
    "Window",
    "__version__",
    "compare_digest",
    "get_default_storage",
    "get_fork_policy",
    "get_lock_policy",
    "get_secretmem",
    "harden",
    "purge",
    "purge_on_signals",
    "set_default_storage",
    "set_fork_policy",
    "set_lock_policy",
    "set_secretmem",
]

POLICY_ENV = "MEMSAFE_LOCK_POLICY"
STORAGE_ENV = "MEMSAFE_STORAGE"
SECRETMEM_ENV = "MEMSAFE_SECRETMEM"
FORK_ENV = "MEMSAFE_FORK"

_Setting = tuple[str, tuple[str, ...], Callable[[Any], None], str]


def _settings() -> tuple[_Setting, ...]:
    """(variable, choices, setter, default) of each MEMSAFE_* setting.

    A function, not an annotated module global: that would show up as
    __annotations__ in help(memsafe).
    """
    return (
        (POLICY_ENV, ("strict", "warn", "off"), set_lock_policy, "strict"),
        (STORAGE_ENV, ("guarded", "sealed"), set_default_storage, "guarded"),
        (SECRETMEM_ENV, ("off", "prefer", "require"), set_secretmem, "off"),
        (FORK_ENV, ("wipe", "inherit"), set_fork_policy, "wipe"),
    )


def _settings_from_environment() -> None:
    """Apply MEMSAFE_LOCK_POLICY, MEMSAFE_STORAGE, MEMSAFE_SECRETMEM and
    MEMSAFE_FORK.

    An unknown value keeps the default and warns.
    """
    for name, choices, apply, default in _settings():
        value = os.environ.get(name, "").strip().lower()
        if not value:
            continue
        if value in choices:
            apply(value)
            continue
        listed = ", ".join(repr(c) for c in choices)
        warnings.warn(
            f"{name}={value!r} is not one of {listed}; keeping {default!r}",
            RuntimeWarning,
            stacklevel=2,
        )


# The settings are process-wide: a subinterpreter that imports memsafe after
# another interpreter did keeps what that one set (programmatically too).
if _memsafe._main_interpreter or _memsafe._process_setup:
    _settings_from_environment()

# Secrets given to multiprocessing (Process args, Pool, Queue, Connection,
# ProcessPoolExecutor) cross through a pipe, never as pickle bytes: see
# memsafe/_mp.py and docs/multiprocessing.md.
_mp.install()


class _AfterFork:
    """multiprocessing ends a fork-started worker with os._exit, which runs
    no atexit callback; it does run its finalizers first.  Before every
    fork (and once multiprocessing is loaded), purge() is put among the
    finalizers of the child to come."""

    registered = False

    def __call__(self, _obj: object = None) -> None:
        util = sys.modules.get("multiprocessing.util")
        if util is not None:
            util.Finalize(None, purge, exitpriority=0)

    def before_fork(self) -> None:
        util = sys.modules.get("multiprocessing.util")
        if util is not None and not self.registered:
            util.register_after_fork(self, _AfterFork.__call__)
            self.registered = True


_after_fork = _AfterFork()

# Every live secret is wiped when the interpreter exits: normal exit, an
# uncaught exception, sys.exit(), daemon threads still holding windows.  (A
# libc atexit handler in the extension wipes once more after finalization,
# for exit() called from C.)  os._exit() runs nothing: see docs/api.md.
# Only in the main interpreter: a subinterpreter that ends frees its own
# secrets and must not wipe those of the rest of the process (docs/api.md,
# "Subinterpreters"); the main interpreter's exit purges them all.
if _memsafe._main_interpreter:
    atexit.register(purge)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_after_fork.before_fork)
