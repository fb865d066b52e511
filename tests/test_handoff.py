"""Handing a secret to hashlib, hmac and cryptography without copies.

Inside a read window the view (a read-only memoryview of format "B") goes
straight to the consumer, which must give the same result as on the plain
bytes.  The secret object itself exports a buffer only while a window is
open: a consumer that keeps the object and reads it later, outside any
window (cryptography's AESCCM, algorithms.AES), must get a clean
BufferError (cryptography wraps it in TypeError) and never crash the
interpreter - those cases run in a child process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

import helpers
import pytest

import memsafe

cryptography = pytest.importorskip("cryptography")

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: E402
    Ed25519PrivateKey,
)
from cryptography.hazmat.primitives.ciphers.aead import (  # noqa: E402
    AESCCM,
    AESGCM,
    ChaCha20Poly1305,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: E402

NONCE = bytes(range(12))
MESSAGE = b"attack at dawn"
AAD = b"header"
SALT = b"0123456789abcdef"

Consumer = Callable[[Any], bytes]


def _ed25519(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    private = Ed25519PrivateKey.from_private_bytes(key)
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return public + private.sign(MESSAGE)


CONSUMERS: dict[str, Consumer] = {
    "sha256": lambda k: hashlib.sha256(k).digest(),
    "sha256-update": lambda k: _update(hashlib.sha256(), k),
    "sha3_256": lambda k: hashlib.sha3_256(k).digest(),
    "blake2b-key": lambda k: hashlib.blake2b(MESSAGE, key=k).digest(),
    "blake2s-key": lambda k: hashlib.blake2s(MESSAGE, key=k).digest(),
    "pbkdf2_hmac": lambda k: hashlib.pbkdf2_hmac("sha256", k, SALT, 1000),
    "scrypt": lambda k: hashlib.scrypt(k, salt=SALT, n=16, r=8, p=1, dklen=32),
    "hmac.digest": lambda k: hmac.digest(k, MESSAGE, "sha256"),
    "hmac.digest-as-msg": lambda k: hmac.digest(b"mac key", k, "sha512"),
    "AESGCM": lambda k: AESGCM(k).encrypt(NONCE, MESSAGE, AAD),
    "AESCCM": lambda k: AESCCM(k).encrypt(NONCE, MESSAGE, AAD),
    "ChaCha20Poly1305": lambda k: ChaCha20Poly1305(k).encrypt(NONCE, MESSAGE, AAD),
    "Ed25519.from_private_bytes": _ed25519,
    "HKDF.derive": lambda k: HKDF(hashes.SHA256(), 42, SALT, b"info").derive(k),
    "AESGCM-decrypt": lambda k: AESGCM(k).decrypt(
        NONCE, AESGCM(k).encrypt(NONCE, MESSAGE, AAD), AAD
    ),
}


def _update(h: Any, k: Any) -> bytes:
    h.update(b"prefix")
    h.update(k)
    return bytes(h.digest())


@pytest.fixture(scope="module")
def raw() -> bytes:
    return os.urandom(32)


@pytest.mark.parametrize("name", sorted(CONSUMERS))
@pytest.mark.parametrize("kind", ["SecretBytes", "MemSafe", "random"])
def test_consumer_on_view_equals_plain_bytes(name: str, kind: str, raw: bytes) -> None:
    consume = CONSUMERS[name]
    if kind == "SecretBytes":
        secret: memsafe.Secret = memsafe.SecretBytes(raw)
        plain = raw
    elif kind == "MemSafe":
        secret = memsafe.MemSafe(raw)
        plain = raw
    else:
        secret = memsafe.SecretBytes.random(32)
        plain = secret.reveal()
    with secret.read() as view:
        assert view.format == "B" and view.readonly and view.contiguous
        got = consume(view)
    assert got == consume(plain)
    # Closure form.
    assert secret.read(consume) == got
    # The secret object itself, inside a window.
    with secret.read():
        assert consume(secret) == got
    secret.close()


def test_hmac_compare_digest_on_views(raw: bytes) -> None:
    k = memsafe.SecretBytes(raw)
    with k.read() as view:
        assert hmac.compare_digest(view, raw)
        assert not hmac.compare_digest(view, raw[:-1] + bytes([raw[-1] ^ 1]))
        assert not hmac.compare_digest(view, raw[:-1])
        assert hmac.compare_digest(view, view)
        assert hmac.compare_digest(k, raw)


def test_secretstr_view_as_password() -> None:
    password = "correct horse battery staple é€"
    p = memsafe.SecretStr(password)
    with p.read() as view:
        got = hashlib.pbkdf2_hmac("sha256", view, SALT, 1000)
        got2 = hashlib.scrypt(view, salt=SALT, n=16, r=8, p=1)
    assert got == hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, 1000)
    assert got2 == hashlib.scrypt(password.encode(), salt=SALT, n=16, r=8, p=1)


def test_os_write_of_a_view() -> None:
    raw = os.urandom(64)
    k = memsafe.SecretBytes(raw)
    r, w = os.pipe()
    try:
        with k.read() as view:
            assert os.write(w, view) == 64
        assert os.read(r, 100) == raw
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize(
    "consume",
    [
        lambda k: hashlib.sha256(k),
        lambda k: hmac.digest(k, b"m", "sha256"),
        lambda k: memoryview(k),
        lambda k: bytes(k),
        lambda k: AESGCM(k),
        lambda k: Ed25519PrivateKey.from_private_bytes(k),
        lambda k: HKDF(hashes.SHA256(), 32, None, None).derive(k),
    ],
    ids=["sha256", "hmac", "memoryview", "bytes", "AESGCM", "Ed25519", "HKDF"],
)
def test_secret_object_outside_a_window_is_refused(consume: Consumer) -> None:
    k = memsafe.SecretBytes.random(32)
    with pytest.raises((BufferError, TypeError)) as info:
        consume(k)
    # cryptography reports "Cannot convert ... to a buffer"; the secret's
    # own refusal is a BufferError.
    assert isinstance(info.value, BufferError) or "buffer" in str(info.value).lower()
    assert not k.closed
    with k.read() as view:
        assert len(view) == 32


# ---- objects that keep the secret and read it later (in a child) -----------

LATE_READERS = r"""
import hashlib, os, sys
import memsafe
from memsafe import _kernel
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

NONCE = bytes(12)
raw = os.urandom(16)
k = memsafe.SecretBytes(raw)
CLEAN = (BufferError, TypeError, ValueError)


def outcome(name, fn):
    try:
        fn()
    except CLEAN as e:
        print(name, type(e).__name__, flush=True)
    else:
        print(name, "no-error", flush=True)


# AESCCM(secret) outside any window.
outcome("ccm-outside", lambda: AESCCM(k))

# Constructed inside a window, used after it.
with k.read():
    ccm = AESCCM(k)
    inside = ccm.encrypt(NONCE, b"msg", None)
outcome("ccm-after", lambda: ccm.encrypt(NONCE, b"msg", None))
outcome("ccm-decrypt-after", lambda: ccm.decrypt(NONCE, inside, None))
# ... and usable again inside a later window, with the right key.
with k.read():
    again = ccm.encrypt(NONCE, b"msg", None)
print("ccm-later-window", again == inside == AESCCM(raw).encrypt(NONCE, b"msg", None))

# AESGCM and ChaCha20Poly1305 copy the key when they are constructed (into
# their own memory, out of memsafe's reach): they keep working after the
# window, with the right key.
k2 = memsafe.SecretBytes(raw + raw)
with k2.read():
    gcm = AESGCM(k2)
k2.close()
expect = AESGCM(raw + raw).encrypt(NONCE, b"m", None)
print("gcm-after", gcm.encrypt(NONCE, b"m", None) == expect)

k32 = memsafe.SecretBytes.random(32)
with k32.read():
    chacha = ChaCha20Poly1305(k32)
expect = ChaCha20Poly1305(k32.reveal()).encrypt(NONCE, b"m", None)
print("chacha-after", chacha.encrypt(NONCE, b"m", None) == expect)

# algorithms.AES keeps the key object; the cipher context reads it later.
with k.read():
    alg = algorithms.AES(k)
outcome("aes-cipher-after", lambda: Cipher(alg, modes.ECB()).encryptor())

# A view handed over inside the window is released when it closes.
with k.read() as view:
    ccm_view = AESCCM(view)
outcome("ccm-view-after", lambda: ccm_view.encrypt(NONCE, b"msg", None))

# hashlib on the object after the window.
outcome("sha256-after", lambda: hashlib.sha256(k))

# Nothing above left the pages readable.
info = k._region_info()
print("perms", _kernel.perms_at(info["data"]))
k.close()
k32.close()
print("closed", k.closed, k32.closed)
"""


@helpers.linux_only
def test_late_readers_fail_cleanly_in_a_child() -> None:
    proc = helpers.run_child(LATE_READERS, timeout=60)
    out = helpers.ok(proc)
    assert b"Fatal Python error" not in proc.stderr
    results = dict(line.split(" ", 1) for line in out.splitlines())
    for name in (
        "ccm-outside",
        "ccm-after",
        "ccm-decrypt-after",
        "aes-cipher-after",
        "ccm-view-after",
        "sha256-after",
    ):
        assert results[name] in ("BufferError", "TypeError", "ValueError"), (
            name,
            results[name],
        )
    assert results["ccm-later-window"] == "True"
    assert results["gcm-after"] == "True"
    assert results["chacha-after"] == "True"
    assert results["perms"] in ("---p", "---s")
    assert results["closed"] == "True True"


def test_view_kept_past_the_window_in_a_child() -> None:
    # A consumer that keeps the view itself: closing the window reports it,
    # the memory stays readable until the view goes, and nothing crashes.
    out = helpers.ok(
        helpers.run_child(
            """
            import hashlib
            import memsafe
            k = memsafe.SecretBytes(b"k" * 32)
            kept = []
            try:
                with k.read() as view:
                    kept.append(memoryview(view))
            except BufferError:
                print("BufferError")
            print(bytes(kept[0]) == b"k" * 32)
            kept[0].release()
            try:
                hashlib.sha256(k)
            except BufferError:
                print("refused")
            k.close()
            print(k.closed)
            """
        )
    )
    assert out.split() == ["BufferError", "True", "refused", "True"]
