"""Uses every public name of memsafe; `mypy --strict` checks it in CI.

Run it too: `python examples/every_name.py` (needs no terminal).
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import warnings

import memsafe
from memsafe import (
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


def digest_of(secret: Secret) -> bytes:
    """SHA-256 of a secret, through a read window (closure form)."""
    result: bytes = secret.read(lambda view: hashlib.sha256(view).digest())
    return result


def main() -> None:
    """Exercise the whole public API once."""
    policy: str = get_lock_policy()
    set_lock_policy("warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LockWarning)
        buf = MemSafe(16)
    set_lock_policy("strict" if policy == "strict" else "warn")

    window: Window = buf.write()
    with window as view:
        view[:4] = b"abcd"
    n: int = buf.write(lambda v: len(v))
    buf.extend(b"more")
    assert len(buf) == n + 4 and buf.locked in (True, False)

    key = SecretBytes.random(32)
    with key.read() as view:
        mac = hashlib.blake2b(b"msg", key=view).digest()
    assert len(mac) == 64
    assert key == copy.copy(key) and compare_digest(key, copy.deepcopy(key))
    plain: bytes = key.reveal()
    assert compare_digest(key, plain)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "key")
        with open(path, "wb") as f:
            f.write(b"file secret")
        from_file = SecretBytes.from_file(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            from_fd = SecretBytes.from_fd(fd, size=4)
        finally:
            os.close(fd)
    assert digest_of(from_file) == hashlib.sha256(b"file secret").digest()
    assert from_fd == b"file"

    # from_writer(): fn writes the secret straight into secret memory (a
    # KDF's derive_into, an AEAD's decrypt_into; here a copy of key).
    def copy_key(view: memoryview) -> int:
        with key.read() as k:
            view[:] = k
        return len(view)

    written = SecretBytes.from_writer(32, copy_key)
    word = SecretStr.from_writer(
        4, lambda view: view.__setitem__(slice(None), b"w\xc3\xb6r")
    )
    assert written == key and word == "wör"

    text = SecretStr("pässword")
    text.append(SecretStr("!"))
    shown: str = text.reveal()
    assert len(text) == len(shown) and text == shown
    assert text.nbytes == len(shown.encode())

    # plaintext(): a fresh bytes/str for consumers that take nothing else,
    # wiped when the call or the block ends.
    size: int = key.plaintext(len)
    with text.plaintext() as t:
        upper: str = t.upper()
    assert size == 32 and upper == shown.upper()
    kept: list[bytes] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PlaintextWarning)
        key.plaintext(kept.append)  # kept: left intact, with a warning
    assert kept == [plain] and issubclass(caught[0].category, PlaintextWarning)
    reader = SecretStr.getpass  # needs a terminal: not called here
    assert callable(reader)

    try:
        raise LockError(12, "example")
    except OSError as e:
        assert isinstance(e, LockError)

    for s in (buf, key, from_file, from_fd, written, word, text):
        with s:
            pass
        assert s.closed
    print("every public name used:", memsafe.__version__)


if __name__ == "__main__":
    main()
