"""multiprocessing transport: a secret crosses to another process through a
pipe, never through pickle bytes.

A reducer is registered with ``multiprocessing.reduction.ForkingPickler``
only (never with :mod:`copyreg`, so ``pickle.dumps(secret)`` stays a
TypeError).  It writes the secret into a fresh pipe straight from a read
window's view (``os.write`` of the view: no bytes object is made), closes the
write end and puts only the read end into the pickle, as
``multiprocessing.reduction.DupFd`` (passed with the child's other file
descriptors by spawn and forkserver, through SCM_RIGHTS by the resource
sharer otherwise).  The receiver reads the pipe straight into secret memory
with ``SecretBytes.from_fd``.  The pickle stream holds the type, the storage
engine, the length and the descriptor's reference: no plaintext.

The whole secret must fit in the pipe before the receiver reads it (the
sender cannot wait for a reader that may never come), so the size is
checked against the pipe's capacity first and a secret that does not fit is
refused in the sender (ValueError) before anything is written.  See
docs/multiprocessing.md.

``import memsafe`` stays cheap: the reducer is registered at once when
``multiprocessing.reduction`` is already loaded, else by a one-shot import
hook the moment it is (its first use is always after that import).
"""

from __future__ import annotations

import os
import sys
import weakref
from types import ModuleType
from typing import TYPE_CHECKING, Any

from memsafe._memsafe import (
    MemSafe,
    Secret,
    SecretBytes,
    SecretStr,
    _secretstr_from_utf8,
)

if TYPE_CHECKING:
    from memsafe._memsafe import ForkPolicy, Storage

# The most a secret may carry through multiprocessing: 1 MiB, Linux's default
# fs.pipe-max-size (the most an unprivileged process can make a pipe hold)
# and from_fd's default max_size.  A lower fs.pipe-max-size, or a user over
# fs.pipe-user-pages-soft, lowers it further (the sender says so).
MAX_SIZE = 1 << 20

_TYPES = (MemSafe, SecretBytes, SecretStr)
_REDUCTION = "multiprocessing.reduction"


def _nbytes(secret: Secret) -> int:
    """The length of the secret's stored bytes (UTF-8 for SecretStr)."""
    return secret.nbytes if isinstance(secret, SecretStr) else len(secret)


def _too_big(secret: Secret, n: int, limit: int, why: str) -> ValueError:
    return ValueError(
        f"cannot send this {type(secret).__name__} ({n} bytes) to another "
        f"process: {why} (at most {limit} bytes fit in the pipe that "
        "carries it); load a secret this large in the other process "
        "instead (from_file, from_fd)"
    )


def _make_room(secret: Secret, w: int, n: int) -> None:
    """Make the pipe (write end w) hold n bytes, or raise ValueError.

    Linux reports and sets the capacity (F_GETPIPE_SZ / F_SETPIPE_SZ); where
    it cannot be asked, the non-blocking write in _write_all decides."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    get = getattr(fcntl, "F_GETPIPE_SZ", None)
    put = getattr(fcntl, "F_SETPIPE_SZ", None)
    if get is None or put is None:
        return
    capacity = fcntl.fcntl(w, get)
    if capacity >= n:
        return
    try:
        capacity = fcntl.fcntl(w, put, n)
    except OSError as e:
        raise _too_big(
            secret,
            n,
            capacity,
            f"the pipe could not be enlarged ({e.strerror}; see the "
            "fs.pipe-max-size and fs.pipe-user-pages-soft sysctls)",
        ) from None
    if capacity < n:  # pragma: no cover - the kernel rounds up, never down
        raise _too_big(secret, n, capacity, "the pipe could not be enlarged")


def _write_all(secret: Secret, w: int, view: memoryview) -> None:
    """Write the whole view to the non-blocking pipe w, or raise ValueError
    if the pipe fills first (then nothing is ever sent: the caller closes
    both ends)."""
    done = 0
    while done < len(view):
        with view[done:] as rest:
            try:
                done += os.write(w, rest)
            except BlockingIOError:
                raise _too_big(secret, len(view), done, "the pipe is full") from None


def _fill_pipe(secret: Secret, n: int) -> int:
    """A pipe holding the secret's n bytes; return its read end (the write
    end is closed).  On any failure both ends are closed."""
    r, w = os.pipe()
    try:
        try:
            _make_room(secret, w, n)
            os.set_blocking(w, False)
            with secret.read() as view:
                _write_all(secret, w, view)
        finally:
            os.close(w)
    except BaseException:
        os.close(r)
        raise
    return r


def _close_with_copies(fd: int) -> None:
    """Close fd and every other descriptor of this process open on the same
    pipe.  Only called on failure: resource_sharer.DupFd dups the fd before
    starting its listener and loses the dup if that start fails (EMFILE)."""
    st = os.fstat(fd)
    os.close(fd)  # first: listing the descriptors needs one free
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            other = int(name)
            try:
                o = os.fstat(other)
            except OSError:
                continue
            if (o.st_dev, o.st_ino) == (st.st_dev, st.st_ino):
                os.close(other)
        return


def _share(fd: int) -> Any:
    """Wrap the pipe's read end for the pickle (multiprocessing's DupFd);
    fd is closed here, or, while a child is being spawned, when the spawner
    is gone (it passes this very descriptor number at launch)."""
    from multiprocessing import context, reduction

    popen = context.get_spawning_popen()
    try:
        wrapped = reduction.DupFd(fd)
    except BaseException:
        if popen is None:
            _close_with_copies(fd)
        else:
            os.close(fd)
        raise
    if popen is None:
        os.close(fd)  # the resource sharer holds its own copy
    else:
        weakref.finalize(popen, os.close, fd)
    return wrapped


def _reduce(secret: Secret) -> tuple[Any, ...]:
    """ForkingPickler's reducer for the three secret types."""
    n = _nbytes(secret)
    if n > MAX_SIZE:
        raise _too_big(secret, n, MAX_SIZE, "it is over the transport's maximum")
    fd = _fill_pipe(secret, n)
    return _rebuild, (type(secret), secret.storage, n, _share(fd), secret.fork)


def _rebuild(
    cls: type, storage: Storage, n: int, wrapped: Any, fork: ForkPolicy = "wipe"
) -> Secret:
    """Unpickling side: read the pipe straight into secret memory (with the
    sender's engine and fork policy)."""
    fd = wrapped.detach()
    try:
        raw = SecretBytes.from_fd(
            fd, size=n, max_size=None, storage=storage, fork=fork
        )
    finally:
        os.close(fd)
    if cls is SecretBytes:
        return raw
    try:
        if cls is MemSafe:
            return MemSafe(raw, storage=storage, fork=fork)
        if cls is SecretStr:
            return _secretstr_from_utf8(SecretStr, raw)
    finally:
        raw.close()
    raise TypeError(f"memsafe cannot rebuild a {cls!r} from a pipe")


def _refuse(secret: Secret) -> tuple[Any, ...]:
    """The reducer where multiprocessing passes no file descriptors."""
    raise TypeError(
        f"cannot send a {type(secret).__name__} to another process on "
        f"{sys.platform}: memsafe's multiprocessing transport passes a pipe "
        "file descriptor, which multiprocessing cannot carry here; load "
        "the secret in the other process instead (from_file, from_fd)"
    )


def register(reduction: ModuleType) -> None:
    """Register the reducer with this multiprocessing.reduction module's
    ForkingPickler (and nowhere else)."""
    reducer = _reduce if hasattr(reduction, "DupFd") else _refuse
    for cls in _TYPES:
        reduction.ForkingPickler.register(cls, reducer)


class _Loader:
    """Wraps the real loader of multiprocessing.reduction: registers the
    reducer right after the module runs, then steps aside."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        module.__loader__ = self._inner
        if module.__spec__ is not None:
            module.__spec__.loader = self._inner
        register(module)
        for finder in list(sys.meta_path):
            if isinstance(finder, _Hook):
                sys.meta_path.remove(finder)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Hook:
    """A sys.meta_path finder for multiprocessing.reduction: it lets the
    other finders find the module and wraps the loader; the wrapper removes
    this hook once the reducer is registered."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _REDUCTION:
            return None
        for finder in list(sys.meta_path):
            if isinstance(finder, _Hook):
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    """Called by ``import memsafe``: register now if multiprocessing.reduction
    is loaded, else as soon as it is."""
    reduction = sys.modules.get(_REDUCTION)
    if reduction is not None:
        register(reduction)
    elif not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
