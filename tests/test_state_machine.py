"""Stateful property test: random sequences of operations on several secrets,
checked step by step against an oracle model and the kernel's own view.

It runs once per storage engine (``[guarded]``, ``[sealed]``: the default
engine of the run), and some secrets are made with an explicit ``storage=``
of either engine, so the two also meet (copies, ``extend``, comparisons).

The model tracks, per secret: its kind, its engine, its content (bytes;
UTF-8 for SecretStr) and character count, whether it is closed, the windows
open on it and its live buffer exports.  An export is one managed buffer: the
with-block view of a window together with the slices and
``memoryview(view)`` copies that share it (plus ``pickle.PickleBuffer`` pins
on the view).  The secret object itself never exports a buffer
(``memoryview(secret)``, ``hashlib.sha256(secret)``, ``bytes(secret)`` ...
raise ``BufferError`` in every state).

After every step the invariant compares with the truth:

* ``closed``, ``len()``, ``storage`` and the content (through the
  constant-time ``==``, ``reveal()`` or an open window's view);
* guarded secrets: ``/proc/self/maps`` permissions of the data pages:
  ``---p`` when nothing is open, ``r--p`` with only read windows / read-only
  exports, ``rw-p`` with a write window or a writable export; guard pages
  always ``---p``;
* sealed secrets: the cipher arena is mapped ``rw-p`` and holds the slot,
  the slot holds ciphertext (never the content), and a plaintext copy
  exists (holding exactly the content) exactly while windows or views are
  alive;
* after ``close()`` or ``extend()`` the old memory is released: a guarded
  secret's pages are unmapped, a sealed secret's slot is wiped (all zero).

Which operations must raise ``BufferError`` (read while a write window or
writable export is alive; write while anything is open; close or extend
while anything is open; a window's exit while views of that same window are
alive - never because of another window's views) or ``ValueError``
(anything on a closed secret) is part of the model.  A window entered by
hand and then dropped closes when its last view goes.  One rule runs read
windows (and write-window attempts) from a small thread pool concurrently.

Profiles (environment variable ``HYPOTHESIS_PROFILE``), per engine:

* ``ci``   - derandomized (fixed seed), no example database; about 10-25 s.
* ``dev``  - the default: random, same size as ``ci``.
* ``long`` - random, 2000 examples of up to 80 steps: for local hunting,
  ``HYPOTHESIS_PROFILE=long python -m pytest tests/test_state_machine.py``
  (tens of minutes).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import gc
import hashlib
import hmac
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import SANITIZED, linux_only
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import memsafe
from memsafe import _kernel

pytestmark = linux_only

PAGE = os.sysconf("SC_PAGESIZE") if hasattr(os, "sysconf") else 4096
# AEAD framing of a sealed slot: [nonce 12 | ciphertext | tag 16].
SLOT_OVERHEAD = 12 + 16
# The sealed engine's biggest pooled slot (src/core/pool.c); a bigger slot
# gets an arena of its own, unmapped when it is freed.
LARGEST_SLOT_CLASS = 4096
# Sizes around the interesting edges: empty, one byte, the canary filling the
# rest of a page (page - 16), exactly a page, just over; a sealed slot that
# just fills the biggest class, and one byte more.
EDGE_SIZES = [0, 1, 15, 16, 17, PAGE - 17, PAGE - 16, PAGE - 15, PAGE, PAGE + 1]
EDGE_SIZES += [
    LARGEST_SLOT_CLASS - SLOT_OVERHEAD,
    LARGEST_SLOT_CLASS - SLOT_OVERHEAD + 1,
]
SIZES = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 300))
MAX_SECRETS = 7
THREADS = 4
# storage= for the constructors that take one: mostly the run's default
# (None), sometimes either engine explicitly.
ENGINE = st.sampled_from([None, None, None, "guarded", "sealed"])

_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
PROFILES = {
    "ci": settings(
        max_examples=50,
        stateful_step_count=40,
        derandomize=True,
        database=None,
        print_blob=True,
        **_COMMON,
    ),
    "dev": settings(max_examples=50, stateful_step_count=40, **_COMMON),
    # The older interpreters of CI's test matrix: the same machine, fewer
    # programs (the main run and 3.14/3.14t use "ci").
    "quick": settings(
        max_examples=12, stateful_step_count=30, derandomize=True, database=None,
        **_COMMON,
    ),
    "long": settings(max_examples=2000, stateful_step_count=80, **_COMMON),
}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
if os.environ.get("CI") and PROFILE not in PROFILES:
    PROFILE = "ci"
ACTIVE = PROFILES.get(PROFILE, PROFILES["dev"])
if SANITIZED:
    # ASan/valgrind runs: the same machine, far fewer steps (valgrind is
    # ~50x slower); fixed seed.
    ACTIVE = settings(
        ACTIVE, max_examples=8, stateful_step_count=25, derandomize=True, database=None
    )

_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """One small thread pool for the whole module."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="props")
    return _pool


# ---- the model -------------------------------------------------------------


@dataclass(eq=False)
class Group:
    """One buffer export of a secret: views sharing one managed buffer."""

    writable: bool
    views: list[tuple[memoryview, int]] = field(default_factory=list)
    pins: list[pickle.PickleBuffer] = field(default_factory=list)
    window: Win | None = None

    def alive(self) -> bool:
        return bool(self.views)


@dataclass(eq=False)
class Win:
    """A window opened by hand (``w.__enter__()``)."""

    write: bool
    obj: Any
    view: memoryview
    group: Group
    open: bool = True


@dataclass(eq=False)
class Entry:
    """One secret and what the model expects of it."""

    obj: Any
    kind: str  # "MemSafe" | "SecretBytes" | "SecretStr"
    engine: str  # "guarded" | "sealed"
    content: bytearray
    nchars: int
    closed: bool = False
    windows: list[Win] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    def open_windows(self) -> list[Win]:
        return [w for w in self.windows if w.open]

    def live_groups(self) -> list[Group]:
        return [g for g in self.groups if g.alive()]

    def writer(self) -> bool:
        return any(w.write for w in self.open_windows())

    def rw_exports(self) -> bool:
        return any(g.writable for g in self.live_groups())

    def read_blocked(self) -> bool:
        return self.writer() or self.rw_exports()

    def idle(self) -> bool:
        return not self.open_windows() and not self.live_groups()

    def expected_perms(self) -> str:
        if self.read_blocked():
            return "rw-p"
        if self.open_windows() or self.live_groups():
            return "r--p"
        return "---p"

    def length(self) -> int:
        return self.nchars if self.kind == "SecretStr" else len(self.content)


def flip(data: bytes) -> bytes:
    """data with its last byte changed (or one byte longer when empty)."""
    if not data:
        return b"\x00"
    return data[:-1] + bytes([data[-1] ^ 0x01])


def expect(exc: type[BaseException] | None, fn: Callable[[], Any]) -> Any:
    """Call fn; it must raise exactly exc (or nothing when exc is None)."""
    if exc is None:
        return fn()
    with pytest.raises(exc):
        fn()
    return None


def source_error(e: Entry) -> type[BaseException] | None:
    """What reading e through an internal read window raises, if anything."""
    if e.closed:
        return ValueError
    if e.read_blocked():
        return BufferError
    return None


def peek(addr: int, n: int) -> bytes | None:
    """n bytes of this process's memory at addr, read the way a debugger
    would (/proc/self/mem); None where nothing readable is mapped."""
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        return os.pread(fd, n, addr)
    except OSError as e:
        if e.errno not in (errno.EIO, errno.EFAULT):
            raise
        return None
    finally:
        os.close(fd)


def mapping_in(maps: list[Any], addr: int) -> Any:
    """The mapping of a /proc/self/maps snapshot that holds addr, or None."""
    for m in maps:
        if m.covers(addr):
            return m
    return None


def storage_kw(storage: str | None) -> dict[str, str]:
    return {} if storage is None else {"storage": storage}


def assert_released(info: dict[str, Any]) -> None:
    """The secret's old memory holds nothing any more.

    Guarded: nothing is mapped at the data page, or only something else
    that reused the address range (Python's allocator may map an arena into
    a hole that merged with it) - secret pages are the only ones marked
    'dd' (MADV_DONTDUMP).  Sealed: the freed slot is wiped at once (all
    zero) - or, for a slot too big for the size classes, its own arena is
    gone the same way as guarded pages."""
    if info["storage"] == "guarded":
        if _kernel.perms_at(info["data"]) is None:
            return
        m = _kernel.mapping_at(info["data"])
        assert m is None or "dd" not in m.vmflags, f"old secret pages still mapped: {m}"
        return
    assert info["storage"] == "sealed", info
    m = _kernel.mapping_at(info["slot"])
    if m is None or "dd" not in m.vmflags:
        assert info["slot_len"] > LARGEST_SLOT_CLASS, f"pooled arena unmapped: {info}"
        return
    slot = peek(info["slot"], info["slot_len"])
    assert slot == bytes(info["slot_len"]), f"freed slot not wiped: {slot!r}"


def assert_plaintext_gone(addr: int, n: int) -> None:
    """A sealed secret's plaintext slot (addr, n bytes) was wiped when its
    last window closed and its last view went (or its arena went away)."""
    if not addr:
        return
    got = peek(addr, n)
    assert got is None or got == bytes(n), f"plaintext slot not wiped: {got!r}"


def utf8_chars(data: bytes) -> int:
    return len(data.decode("utf-8"))


class SecretMachine(RuleBasedStateMachine):
    """Drives MemSafe, SecretBytes and SecretStr against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Entry] = []
        # The run's engine (set by the conftest's storage fixture).
        self.default = memsafe.get_default_storage()
        self.devnull = os.open(os.devnull, os.O_WRONLY)
        self.tmpdir = tempfile.TemporaryDirectory(prefix="memsafe-props-")

    # ---- helpers ----------------------------------------------------------

    def pick(self, i: int, pred: Callable[[Entry], bool]) -> Entry | None:
        cands = [e for e in self.entries if pred(e)]
        return cands[i % len(cands)] if cands else None

    def live(self) -> list[Entry]:
        return [e for e in self.entries if not e.closed]

    def add(
        self,
        obj: Any,
        kind: str,
        content: bytes,
        nchars: int = 0,
        *,
        storage: str | None = None,
    ) -> None:
        """Track a new secret; storage: the engine it must have (None: the
        run's default)."""
        assert type(obj).__name__ == kind
        engine = storage or self.default
        assert obj.storage == engine
        assert obj._region_info()["storage"] == engine
        self.entries.append(Entry(obj, kind, engine, bytearray(content), nchars))

    def can_create(self) -> bool:
        return len(self.entries) < MAX_SECRETS + 3 and len(self.live()) < MAX_SECRETS

    def all_windows(self) -> list[tuple[Entry, Win]]:
        return [(e, w) for e in self.entries for w in e.open_windows()]

    def all_groups(self) -> list[tuple[Entry, Group]]:
        return [(e, g) for e in self.entries for g in e.live_groups()]

    def check_idle_transition(self, e: Entry, before: dict[str, Any]) -> None:
        """After a window closed or views went: once nothing is open, a
        sealed secret has no plaintext slot any more, and the one it had
        is wiped.  (Guarded pages going back to no-access is the
        invariant's business.)"""
        if e.engine != "sealed" or not e.idle() or e.closed:
            return
        assert e.obj._region_info()["plaintext"] == 0
        assert_plaintext_gone(before["plaintext"], len(e.content))

    # ---- creation ---------------------------------------------------------

    @initialize(
        data=st.binary(max_size=64),
        text=st.text(min_size=1, max_size=20),
    )
    def one_of_each(self, data: bytes, text: str) -> None:
        """Start with one secret of each type, so every rule has a target."""
        self.add(memsafe.MemSafe(data), "MemSafe", data)
        self.add(memsafe.SecretBytes(data), "SecretBytes", data)
        self.add(memsafe.SecretStr(text), "SecretStr", text.encode(), len(text))

    @precondition(lambda self: self.can_create())
    @rule(n=SIZES, storage=ENGINE)
    def create_memsafe_size(self, n: int, storage: str | None) -> None:
        m = memsafe.MemSafe(n, **storage_kw(storage))
        self.add(m, "MemSafe", bytes(n), storage=storage)

    @precondition(lambda self: self.can_create())
    @rule(
        data=st.binary(max_size=300) | st.sampled_from(EDGE_SIZES).map(os.urandom),
        kind=st.sampled_from(["MemSafe", "SecretBytes"]),
        how=st.sampled_from(["bytes", "bytearray", "wipe", "memoryview"]),
        storage=ENGINE,
    )
    def create_from_buffer(
        self, data: bytes, kind: str, how: str, storage: str | None
    ) -> None:
        cls = getattr(memsafe, kind)
        kw = storage_kw(storage)
        if how == "bytes":
            obj = cls(data, **kw)
        elif how == "memoryview":
            obj = cls(memoryview(data), **kw)
        elif how == "bytearray":
            src = bytearray(data)
            obj = cls(src, **kw)
            assert src == data, "source changed without wipe_source"
        else:
            src = bytearray(data)
            obj = cls(src, wipe_source=True, **kw)
            assert src == bytes(len(data)), "wipe_source=True left the source"
        self.add(obj, kind, data, storage=storage)

    @precondition(lambda self: self.can_create())
    @rule(data=st.binary(max_size=4))
    def create_from_readonly_with_wipe(self, data: bytes) -> None:
        for cls in (memsafe.MemSafe, memsafe.SecretBytes):
            with pytest.raises(TypeError):
                cls(data, wipe_source=True)

    @precondition(lambda self: self.can_create())
    @rule(n=SIZES, storage=ENGINE)
    def create_random(self, n: int, storage: str | None) -> None:
        sb = memsafe.SecretBytes.random(n, **storage_kw(storage))
        self.add(sb, "SecretBytes", sb.reveal(), storage=storage)
        if n >= 16:
            assert sb != bytes(n)

    @precondition(lambda self: self.can_create())
    @rule(n=SIZES, sized=st.booleans(), via_file=st.booleans())
    def create_from_fd_or_file(self, n: int, sized: bool, via_file: bool) -> None:
        data = os.urandom(n)
        if via_file:
            path = os.path.join(self.tmpdir.name, "secret")
            with open(path, "wb") as f:
                f.write(data)
            sb = memsafe.SecretBytes.from_file(path)
            os.unlink(path)
        else:
            r, w = os.pipe()
            try:
                os.write(w, data)  # fits in the pipe buffer (<= 64 KiB)
                os.close(w)
                w = -1
                sb = memsafe.SecretBytes.from_fd(r, size=n if sized else None)
            finally:
                os.close(r)
                if w >= 0:
                    os.close(w)
        self.add(sb, "SecretBytes", data)

    @precondition(lambda self: self.can_create())
    @rule(text=st.text(max_size=60), storage=ENGINE)
    def create_secretstr(self, text: str, storage: str | None) -> None:
        s = memsafe.SecretStr(text, **storage_kw(storage))
        self.add(s, "SecretStr", text.encode("utf-8"), len(text), storage=storage)

    @precondition(lambda self: self.can_create())
    @rule(i=st.integers(0, 99), how=st.sampled_from(["copy", "deepcopy", "ctor"]))
    def create_copy(self, i: int, how: str) -> None:
        e = self.pick(i, lambda e: True)
        if e is None:
            return
        if how == "copy":
            make: Callable[[], Any] = lambda: copy.copy(e.obj)  # noqa: E731
        elif how == "deepcopy":
            make = lambda: copy.deepcopy(e.obj)  # noqa: E731
        else:
            make = lambda: type(e.obj)(e.obj)  # noqa: E731
        err = source_error(e)
        c = expect(err, make)
        if err is None:
            assert c is not e.obj
            # A copy keeps its source's engine; the constructor uses the
            # default.
            engine = e.engine if how != "ctor" else None
            self.add(c, e.kind, bytes(e.content), e.nchars, storage=engine)

    @precondition(lambda self: self.can_create())
    @rule(i=st.integers(0, 99), kind=st.sampled_from(["MemSafe", "SecretBytes"]))
    def create_cross_type(self, i: int, kind: str) -> None:
        e = self.pick(i, lambda e: True)
        if e is None:
            return
        err = source_error(e)
        c = expect(err, lambda: getattr(memsafe, kind)(e.obj))
        if err is None:
            self.add(c, kind, bytes(e.content))

    # ---- windows ----------------------------------------------------------

    @rule(i=st.integers(0, 99))
    def open_read(self, i: int) -> None:
        e = self.pick(i, lambda e: True)
        if e is None:
            return
        if e.closed:
            with pytest.raises(ValueError):
                e.obj.read()  # refused at once, before any window exists
            return
        w = e.obj.read()
        if e.read_blocked():
            with pytest.raises(BufferError):
                w.__enter__()
            return
        view = w.__enter__()
        assert isinstance(view, memoryview)
        assert view.readonly and view.format == "B" and len(view) == len(e.content)
        # Neither the window nor its view is hashable (a cached hash of
        # the plaintext would outlive the window).
        with pytest.raises(TypeError):
            hash(view)
        with pytest.raises(TypeError):
            hash(w)
        g = Group(writable=False, views=[(view, 0)])
        win = Win(False, w, view, g)
        g.window = win
        e.windows.append(win)
        e.groups.append(g)

    @rule(i=st.integers(0, 99))
    def open_write(self, i: int) -> None:
        e = self.pick(i, lambda e: True)
        if e is None:
            return
        if e.kind != "MemSafe":
            assert not hasattr(e.obj, "write")
            with pytest.raises(TypeError):
                memsafe.MemSafe.write(e.obj)
            return
        if e.closed:
            with pytest.raises(ValueError):
                e.obj.write()  # refused at once, before any window exists
            return
        w = e.obj.write()
        if not e.idle():
            with pytest.raises(BufferError):
                w.__enter__()
            return
        view = w.__enter__()
        assert not view.readonly and len(view) == len(e.content)
        with pytest.raises(ValueError):
            hash(view)  # memoryview's own refusal: writable
        with pytest.raises(TypeError):
            hash(w)
        g = Group(writable=True, views=[(view, 0)])
        win = Win(True, w, view, g)
        g.window = win
        e.windows.append(win)
        e.groups.append(g)

    @precondition(lambda self: bool(self.all_windows()))
    @rule(i=st.integers(0, 99), with_exc=st.booleans())
    def close_window(self, i: int, with_exc: bool) -> None:
        wins = self.all_windows()
        e, win = wins[i % len(wins)]
        g = win.group
        pinned = bool(g.pins)
        if not pinned:
            g.views = [(v, o) for v, o in g.views if v is not win.view]
        win.open = False
        # Only this window's own views make its exit fail; views leaked
        # from other windows of the secret are not its business.
        own = g.alive()
        before = e.obj._region_info()
        args: tuple[Any, Any, Any] = (None, None, None)
        if with_exc:
            exc = KeyError("x")
            args = (KeyError, exc, None)
        if own and with_exc:
            # The block's exception propagates (__exit__ returns False);
            # the leak is a note on it, not a BufferError (issue 17).
            assert win.obj.__exit__(*args) is False
            assert "still alive" in args[1].__notes__[-1]
        elif own:
            with pytest.raises(BufferError, match="still alive"):
                win.obj.__exit__(*args)
        else:
            assert win.obj.__exit__(*args) is False
        self.check_idle_transition(e, before)
        if not pinned:
            with pytest.raises(ValueError):
                bytes(win.view)  # the with-block's view is released
        # Exit is idempotent; a window cannot be entered again.
        assert win.obj.__exit__(None, None, None) is False
        with pytest.raises(RuntimeError):
            win.obj.__enter__()

    @rule(
        i=st.integers(0, 99),
        write=st.booleans(),
        leak=st.booleans(),
        fail=st.booleans(),
    )
    def closure_window(self, i: int, write: bool, leak: bool, fail: bool) -> None:
        e = self.pick(i, lambda e: True)
        if e is None or (write and e.kind != "MemSafe"):
            return
        leaked: list[memoryview] = []

        def fn(view: memoryview) -> bytes:
            if leak:
                leaked.append(view[1:])
            if fail:
                raise KeyError("from fn")
            return bytes(view)

        meth = e.obj.write if write else e.obj.read
        if e.closed:
            with pytest.raises(ValueError):
                meth(fn)
            return
        if (write and not e.idle()) or (not write and e.read_blocked()):
            with pytest.raises(BufferError):
                meth(fn)
            return
        # Exit fails when fn leaked a view of this window, and only then.
        if leak:
            # fn's own exception propagates, the leak noted on it (issue 17).
            expected: type[BaseException] = KeyError if fail else BufferError
            with pytest.raises(expected) as info:
                meth(fn)
            if fail:
                assert "still alive" in info.value.__notes__[-1]
            else:
                assert "still alive" in str(info.value)
            del info  # breaks the frame <-> traceback cycle
            off = min(1, len(e.content))
            e.groups.append(Group(writable=write, views=[(leaked[0], off)]))
            leaked.clear()
        elif fail:
            with pytest.raises(KeyError):
                meth(fn)
        else:
            assert meth(fn) == bytes(e.content)

    # ---- views and exports ------------------------------------------------

    @precondition(lambda self: bool(self.all_windows()))
    @rule(
        i=st.integers(0, 99),
        a=st.integers(0, 5000),
        b=st.integers(0, 5000),
        how=st.sampled_from(["slice", "memoryview", "cast", "pin"]),
    )
    def leak_from_window(self, i: int, a: int, b: int, how: str) -> None:
        wins = self.all_windows()
        e, win = wins[i % len(wins)]
        n = len(e.content)
        a, b = sorted((a % (n + 1), b % (n + 1)))
        if how == "slice":
            win.group.views.append((win.view[a:b], a))
        elif how == "memoryview":
            win.group.views.append((memoryview(win.view), 0))
        elif how == "cast":
            win.group.views.append((win.view.cast("B"), 0))
        else:
            win.group.pins.append(pickle.PickleBuffer(win.view))

    @rule(
        i=st.integers(0, 99),
        how=st.sampled_from(
            ["memoryview", "sha256", "bytes", "bytearray", "pin", "hmac", "os.write"]
        ),
    )
    def secret_exports_no_buffer(self, i: int, how: str) -> None:
        """Only a window's view exports a buffer: the secret object itself
        refuses in every state (window open or not, closed, other threads'
        windows), and says to pass the view."""
        e = self.pick(i, lambda e: True)
        if e is None:
            return
        fns: dict[str, Callable[[Any], Any]] = {
            "memoryview": memoryview,
            "sha256": hashlib.sha256,
            "bytes": bytes,
            "bytearray": bytearray,
            "pin": pickle.PickleBuffer,
            "hmac": lambda k: hmac.digest(k, b"m", "sha256"),
            "os.write": lambda k: os.write(self.devnull, k),
        }
        with pytest.raises(BufferError, match="view"):
            fns[how](e.obj)

    @precondition(lambda self: bool(self.all_windows()))
    @rule(i=st.integers(0, 99))
    def drop_window(self, i: int) -> None:
        """A window entered by hand and never exited closes as soon as its
        last reference goes - the views of it (slices, pins) hold one - with
        no garbage collection needed."""
        wins = self.all_windows()
        e, win = wins[i % len(wins)]
        g = win.group
        before = e.obj._region_info()
        win.open = False
        win.obj = None
        win.view = None  # type: ignore[assignment]
        g.views.clear()
        g.pins.clear()
        self.check_idle_transition(e, before)

    @precondition(lambda self: bool(self.all_groups()))
    @rule(i=st.integers(0, 99), how=st.sampled_from(["release", "del"]))
    def release_group(self, i: int, how: str) -> None:
        groups = self.all_groups()
        _e, g = groups[i % len(groups)]
        if g.window is not None and g.window.open:
            return  # the window's own view goes with the window
        before = _e.obj._region_info()
        if how == "release":
            for pb in g.pins:
                pb.release()
            for v, _ in g.views:
                v.release()
        g.pins.clear()
        g.views.clear()
        if g.window is not None:
            g.window.view = None  # type: ignore[assignment]
        if how == "del":
            # A view can sit in a reference cycle (an exception's traceback
            # holding the frame that holds the view): collect it.
            gc.collect()
        self.check_idle_transition(_e, before)

    @precondition(lambda self: bool(self.all_groups()))
    @rule(i=st.integers(0, 99))
    def read_through_views(self, i: int) -> None:
        groups = self.all_groups()
        e, g = groups[i % len(groups)]
        for v, off in g.views:
            assert bytes(v) == bytes(e.content[off : off + len(v)])

    @precondition(lambda self: any(g.writable for _, g in self.all_groups()))
    @rule(i=st.integers(0, 99), j=st.integers(0, 99), data=st.binary(max_size=40))
    def write_through_view(self, i: int, j: int, data: bytes) -> None:
        groups = [(e, g) for e, g in self.all_groups() if g.writable]
        e, g = groups[i % len(groups)]
        v, off = g.views[j % len(g.views)]
        data = data[: len(v)]
        at = (j * 7) % (len(v) - len(data) + 1)
        v[at : at + len(data)] = data
        e.content[off + at : off + at + len(data)] = data

    @precondition(lambda self: any(not g.writable for _, g in self.all_groups()))
    @rule(i=st.integers(0, 99))
    def write_through_readonly_view(self, i: int) -> None:
        groups = [(e, g) for e, g in self.all_groups() if not g.writable]
        _e, g = groups[i % len(groups)]
        v, _ = g.views[0]
        if len(v) == 0:
            return
        with pytest.raises(TypeError):
            v[0] = 0

    # ---- growing ----------------------------------------------------------

    @rule(
        i=st.integers(0, 99),
        j=st.integers(0, 99),
        how=st.sampled_from(["bytes", "bytearray", "memoryview", "secret", "self"]),
        data=st.binary(max_size=100),
    )
    def extend(self, i: int, j: int, how: str, data: bytes) -> None:
        e = self.pick(i, lambda e: e.kind == "MemSafe")
        if e is None:
            return
        src: Any
        src_err: type[BaseException] | None = None
        if how == "bytes":
            src = data
        elif how == "bytearray":
            src = bytearray(data)
        elif how == "memoryview":
            src = memoryview(data)
        elif how == "secret":
            other = self.pick(j, lambda x: x is not e)
            if other is None:
                return
            src, data = other.obj, bytes(other.content)
            src_err = source_error(other)
        else:
            src, data = e.obj, bytes(e.content)
        if src_err is not None:
            err: type[BaseException] | None = src_err
        elif e.closed:
            err = ValueError
        elif not e.idle():
            err = BufferError
        else:
            err = None
        old = None if e.closed else e.obj._region_info()
        expect(err, lambda: e.obj.extend(src))
        if err is None:
            e.content += data
            assert old is not None
            assert_released(old)

    @rule(
        i=st.integers(0, 99),
        j=st.integers(0, 99),
        how=st.sampled_from(["str", "secret", "self", "surrogate", "bytes"]),
        text=st.text(max_size=30),
    )
    def append(self, i: int, j: int, how: str, text: str) -> None:
        e = self.pick(i, lambda e: e.kind == "SecretStr")
        if e is None:
            return
        src: Any = text
        nchars = len(text)
        data = text.encode("utf-8")
        src_err: type[BaseException] | None = None
        if how == "surrogate":
            src = text + "\ud800"
            src_err = ValueError
        elif how == "bytes":
            src = data
            src_err = TypeError
        elif how == "secret":
            other = self.pick(j, lambda x: x is not e and x.kind == "SecretStr")
            if other is None:
                return
            src, data, nchars = other.obj, bytes(other.content), other.nchars
            src_err = source_error(other)
        elif how == "self":
            src, data, nchars = e.obj, bytes(e.content), e.nchars
        if src_err is not None:
            err: type[BaseException] | None = src_err
        elif e.closed:
            err = ValueError
        elif not e.idle():
            err = BufferError
        else:
            err = None
        expect(err, lambda: e.obj.append(src))
        if err is None:
            e.content += data
            e.nchars += nchars

    # ---- comparing --------------------------------------------------------

    @rule(
        i=st.integers(0, 99),
        j=st.integers(0, 99),
        how=st.sampled_from(["eq", "ne", "digest", "reflected"]),
        other_kind=st.sampled_from(["secret", "bytes", "bytearray", "flipped"]),
    )
    def compare(self, i: int, j: int, how: str, other_kind: str) -> None:
        a = self.pick(i, lambda e: True)
        if a is None:
            return
        err = source_error(a)
        other: Any
        if other_kind == "secret":
            b = self.entries[j % len(self.entries)]
            other, other_content = b.obj, bytes(b.content)
            if err is None:
                err = source_error(b)
        elif other_kind == "flipped":
            other_content = flip(bytes(a.content))
            other = other_content
        else:
            other_content = bytes(a.content) if j % 2 else os.urandom(j % 5)
            other = other_content if other_kind == "bytes" else bytearray(other_content)
        same = bytes(a.content) == other_content
        fns: dict[str, Callable[[], Any]] = {
            "eq": lambda: a.obj == other,
            "ne": lambda: a.obj != other,
            "digest": lambda: memsafe.compare_digest(a.obj, other),
            "reflected": lambda: other == a.obj,
        }
        if how == "reflected" and other_kind == "secret":
            # other is the left operand: its checks come first.
            err = source_error(b) or source_error(a)
        # bytearray.__eq__ cannot get a buffer from the secret (not even
        # inside a window) and defers to the secret's constant-time __eq__,
        # as bytes.__eq__ does: the reflected forms follow the same rules.
        got = expect(err, fns[how])
        if err is None:
            assert got is ((not same) if how == "ne" else same)

    @rule(
        i=st.integers(0, 99),
        how=st.sampled_from(["same", "other", "surrogate", "prefix"]),
        text=st.text(max_size=20),
    )
    def compare_with_str(self, i: int, how: str, text: str) -> None:
        """SecretStr == str compares the text in constant time; other
        secrets do not compare equal to a str; compare_digest refuses str."""
        e = self.pick(i, lambda e: True)
        if e is None:
            return
        if how == "same" and e.kind == "SecretStr":
            text = e.content.decode("utf-8")
        elif how == "surrogate":
            text += "\udc80"
        elif how == "prefix" and e.kind == "SecretStr":
            text = e.content.decode("utf-8")[:-1]
        with pytest.raises(TypeError):
            memsafe.compare_digest(e.obj, text)  # type: ignore[arg-type]
        if e.kind != "SecretStr":
            assert (e.obj == text) is False
            assert (e.obj != text) is True
            return
        if e.closed:
            ops: list[Callable[[], Any]] = [
                lambda: e.obj == text,
                lambda: text == e.obj,
                lambda: e.obj != text,
            ]
            for op in ops:
                with pytest.raises(ValueError):
                    op()
            return
        same = text.encode("utf-8", "surrogatepass") == bytes(e.content)
        assert (e.obj == text) is same
        assert (text == e.obj) is same
        assert (e.obj != text) is (not same)

    # ---- closing ----------------------------------------------------------

    @rule(i=st.integers(0, 99), how=st.sampled_from(["close", "exit"]))
    def close(self, i: int, how: str) -> None:
        e = self.pick(i, lambda e: True)
        if e is None:
            return
        fn = e.obj.close if how == "close" else lambda: e.obj.__exit__(None, None, None)
        if e.closed:
            fn()  # idempotent
            return
        if not e.idle():
            with pytest.raises(BufferError):
                fn()
            return
        info = e.obj._region_info()
        fn()
        e.closed = True
        assert_released(info)

    @precondition(lambda self: any(e.closed for e in self.entries))
    @rule(i=st.integers(0, 99))
    def use_after_close(self, i: int) -> None:
        e = self.pick(i, lambda e: e.closed)
        assert e is not None
        s = e.obj
        assert s.closed is True
        assert "closed" in repr(s)
        s.close()
        ops: list[Callable[[], Any]] = [
            lambda: len(s),
            lambda: s.locked,
            lambda: s._region_info(),
            lambda: s.read().__enter__(),
            lambda: s.read(bytes),
            lambda: s == b"",
            lambda: s == b"",
            lambda: s != b"",
            lambda: memsafe.compare_digest(s, b""),
            lambda: memsafe.compare_digest(b"", s),
            lambda: copy.copy(s),
            lambda: copy.deepcopy(s),
            lambda: memsafe.MemSafe(s),
            lambda: memsafe.SecretBytes(s),
            lambda: s.__enter__(),
        ]
        if e.kind == "MemSafe":
            ops += [
                lambda: s.write().__enter__(),
                lambda: s.write(bytes),
                lambda: s.extend(b"x"),
                lambda: s.extend(s),
            ]
            live = [x for x in self.live() if x.kind == "MemSafe" and x.idle()]
            if live:
                target = live[0].obj
                ops.append(lambda: target.extend(s))
        elif e.kind == "SecretBytes":
            ops.append(lambda: s.reveal())
        else:
            ops += [
                lambda: s.reveal(),
                lambda: s.append("x"),
                lambda: s.append(s),
                lambda: memsafe.SecretStr(s),
            ]
        for k, op in enumerate(ops):
            try:
                op()
            except ValueError:
                continue
            raise AssertionError(f"operation #{k} on a closed {e.kind} did not raise")
        with pytest.raises(TypeError):
            pickle.dumps(s)
        # Buffer requests are refused as in every state.
        for buf in (memoryview, hashlib.sha256, bytes):
            with pytest.raises(BufferError):
                buf(s)

    # ---- other threads ----------------------------------------------------

    @rule(i=st.integers(0, 99))
    def threads_read(self, i: int) -> None:
        """THREADS threads open read windows at once, read, close."""
        e = self.pick(i, lambda e: not e.closed)
        if e is None:
            return
        blocked = e.read_blocked()
        content = bytes(e.content)
        digest = hashlib.sha256(content).digest()
        before = e.obj._region_info()
        held = threading.Barrier(THREADS, timeout=20)

        def worker() -> tuple[str, Any]:
            w = e.obj.read()
            try:
                view = w.__enter__()
            except BufferError:
                return "refused", None
            try:
                assert bytes(view) == content
                assert hashlib.sha256(view).digest() == digest
                # Another thread's window gives the secret object no buffer.
                with pytest.raises(BufferError):
                    hashlib.sha256(e.obj)
                held.wait()  # every thread holds its window now
                if e.engine == "guarded":
                    seen: Any = _kernel.perms_at(before["data"])
                else:
                    # Read windows share one plaintext copy.
                    seen = e.obj._region_info()["plaintext"]
                held.wait()
            finally:
                del view
            try:
                w.__exit__(None, None, None)
            except BufferError:
                return "exit-error", seen
            return "ok", seen

        results = [
            f.result(timeout=60)
            for f in [pool().submit(worker) for _ in range(THREADS)]
        ]
        if blocked:
            assert [r for r, _ in results] == ["refused"] * THREADS
            return
        # Each window kept nothing: none of the exits fails, whatever other
        # windows' views are alive.
        assert [r for r, _ in results] == ["ok"] * THREADS
        seen = {s for _, s in results}
        if e.engine == "guarded":
            assert seen == {"r--p"}, seen
        else:
            assert len(seen) == 1 and 0 not in seen, seen
            p = seen.pop()
            if e.idle():
                assert_plaintext_gone(p, len(content))
            else:
                # Windows or views opened before are still on that copy.
                assert before["plaintext"] == p
        self.check_idle_transition(e, before)

    @rule(i=st.integers(0, 99))
    def threads_race_for_write(self, i: int) -> None:
        """THREADS threads try to open a write window at once: one wins."""
        e = self.pick(i, lambda e: not e.closed and e.kind == "MemSafe")
        if e is None:
            return
        idle = e.idle()
        tried = threading.Barrier(THREADS, timeout=20)

        def worker() -> bool:
            w = e.obj.write()
            try:
                view = w.__enter__()
            except BufferError:
                tried.wait()
                return False
            tried.wait()  # everybody has tried while this one holds it
            view.release()
            w.__exit__(None, None, None)
            return True

        wins = [
            f.result(timeout=60)
            for f in [pool().submit(worker) for _ in range(THREADS)]
        ]
        assert sum(wins) == (1 if idle else 0)

    # ---- the check after every step ---------------------------------------

    @invariant()
    def matches_model(self) -> None:
        maps = _kernel.maps()  # one read of /proc/self/maps per step
        for e in self.entries:
            s = e.obj
            assert s.closed is e.closed
            if e.closed:
                continue
            assert len(s) == e.length()
            assert s.storage == e.engine
            info = s._region_info()
            assert info["storage"] == e.engine
            assert info["len"] == len(e.content)
            if e.engine == "guarded":
                self.check_guarded(e, info, maps)
            else:
                self.check_sealed(e, info, maps)
            if not e.read_blocked():
                assert s == bytes(e.content)
                assert s != flip(bytes(e.content))
                if e.kind == "SecretBytes":
                    assert s.reveal() == e.content
                elif e.kind == "SecretStr":
                    assert s.reveal() == e.content.decode("utf-8")
                    assert e.nchars == utf8_chars(bytes(e.content))
            for w in e.open_windows():
                assert bytes(w.view) == e.content

    @staticmethod
    def check_guarded(e: Entry, info: dict[str, Any], maps: list[Any]) -> None:
        """The data pages' protection follows the windows and views; the
        guard pages are never accessible."""

        def perms(addr: int) -> str | None:
            m = mapping_in(maps, addr)
            return None if m is None else m.perms

        assert perms(info["base"]) == "---p"
        assert perms(info["base"] + info["total"] - 1) == "---p"
        want = e.expected_perms()
        assert perms(info["data"]) == want
        assert perms(info["data"] + info["data_len"] - 1) == want
        assert info["data_len"] % PAGE == 0

    @staticmethod
    def check_sealed(e: Entry, info: dict[str, Any], maps: list[Any]) -> None:
        """The arena is plain read-write memory holding only ciphertext; a
        plaintext copy exists exactly while windows or views are alive."""
        n = len(e.content)
        arena, arena_len = info["arena"], info["arena_len"]
        slot, slot_len = info["slot"], info["slot_len"]
        assert slot_len == n + SLOT_OVERHEAD
        assert arena <= slot and slot + slot_len <= arena + arena_len
        m = mapping_in(maps, arena)
        assert m is not None and m.perms == "rw-p", m
        assert m.start <= arena and arena + arena_len <= m.end, (m, info)
        sealed = peek(slot, slot_len)
        assert sealed is not None and len(sealed) == slot_len
        assert sealed[12:].strip(b"\0"), "no ciphertext in the slot"
        if n >= 8:
            # 64 bits or more of plaintext showing up by chance in the
            # ciphertext and tag: never.  (The nonce is a counter: zeros.)
            assert bytes(e.content) not in sealed[12:]
        plaintext = info["plaintext"]
        if e.idle():
            assert plaintext == 0
            return
        assert plaintext != 0
        pm = mapping_in(maps, plaintext)
        assert pm is not None and pm.perms == "rw-p", pm
        assert plaintext + n <= pm.end
        assert not (arena <= plaintext < arena + arena_len), "plaintext in the arena"
        assert peek(plaintext, n) == e.content

    def teardown(self) -> None:
        # Best effort: after a failed step the model may be off, and an
        # error here would hide the real failure.
        with contextlib.suppress(Exception):
            self._release_all()
        self.entries.clear()
        self.tmpdir.cleanup()
        os.close(self.devnull)

    def _release_all(self) -> None:
        for e in self.entries:
            for g in e.groups:
                for pb in g.pins:
                    pb.release()
                for v, _ in g.views:
                    v.release()
                g.pins.clear()
                g.views.clear()
            for w in e.windows:
                if w.open:
                    w.open = False
                    with contextlib.suppress(BufferError):
                        w.obj.__exit__(None, None, None)
                w.view = None  # type: ignore[assignment]
        for e in self.entries:
            e.obj.close()


def test_secret_machine(storage: str) -> None:
    """The machine over the run's engine (conftest: [guarded], [sealed])."""
    assert memsafe.get_default_storage() == storage
    run_state_machine_as_test(SecretMachine, settings=ACTIVE)
