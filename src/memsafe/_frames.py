"""Where a with-statement stores what ``__enter__`` returns.

``plaintext()``'s with-form may wipe its object at the end of the block
only if the one name the statement bound (its ``as`` target) is the only
reference left.  That name is read from the bytecode: the instruction
after the one that called ``__enter__`` (SETUP_WITH on 3.10, BEFORE_WITH on
3.11-3.13, CALL on 3.14) stores the result.  A store into a cell (a name a
closure shares), an attribute, an item or a tuple is not a name memsafe
can account for: the result is ``(NOTHING, None)`` and the object is then
left intact unless nothing at all holds it.
"""

from __future__ import annotations

import dis
import functools
import types

NOTHING = 0  # no name, or one that cannot be accounted for
FAST = 1  # a function's local variable (not a cell)
NAME = 2  # a module's or class body's namespace
GLOBAL = 3  # a ``global`` name in a function
POP = 4  # no ``as``: the result is dropped
CELL = 5  # a cell a closure may share: never accounted for

_STORES = {
    "STORE_FAST": FAST,
    "STORE_FAST_LOAD_FAST": FAST,
    "STORE_FAST_STORE_FAST": FAST,
    "STORE_NAME": NAME,
    "STORE_GLOBAL": GLOBAL,
    "STORE_DEREF": CELL,
}


def with_target(frame: types.FrameType) -> tuple[int, str | None]:
    """How frame, now calling ``__enter__``, stores its result."""
    return _target(frame.f_code, frame.f_lasti)


@functools.lru_cache(maxsize=512)
def _target(code: types.CodeType, lasti: int) -> tuple[int, str | None]:
    after = False
    for ins in dis.get_instructions(code):
        if after and ins.opname not in ("EXTENDED_ARG", "CACHE"):
            return _store(ins)
        after = after or ins.offset == lasti
    return NOTHING, None


def _store(ins: dis.Instruction) -> tuple[int, str | None]:
    if ins.opname == "POP_TOP":
        return POP, None
    kind = _STORES.get(ins.opname, NOTHING)
    if kind in (NOTHING, CELL):
        return kind, None
    name = ins.argval
    if isinstance(name, tuple):  # 3.13 superinstructions: stored first
        name = name[0]
    return (kind, name) if isinstance(name, str) else (NOTHING, None)
