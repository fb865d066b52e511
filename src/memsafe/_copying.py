"""copy.copy and copy.deepcopy of a secret subclass instance.

The C types copy the secret itself (into new secure memory, never through
a Python bytes); for a Python subclass this copies the instance's own
attributes too, so a copy has the same type *and* the same state, as
``copy.copy`` gives for any other object.
"""

from __future__ import annotations

import copy
import copyreg
from typing import Any


def copy_state(src: Any, dst: Any, memo: dict[int, Any] | None) -> None:
    """Copy src's ``__dict__`` and ``__slots__`` values onto dst: as they
    are (shallow, memo None) or through ``copy.deepcopy(value, memo)``."""
    deep = memo is not None
    if memo is not None:
        memo[id(src)] = dst  # a self-reference in the state maps to dst
    state = getattr(src, "__dict__", None)
    if state:
        dst.__dict__.update(copy.deepcopy(state, memo) if deep else state)
    for name in copyreg._slotnames(type(src)):  # type: ignore[attr-defined]
        if name in ("__dict__", "__weakref__"):
            continue
        try:
            value = getattr(src, name)
        except AttributeError:
            continue  # an unset slot stays unset
        setattr(dst, name, copy.deepcopy(value, memo) if deep else value)
