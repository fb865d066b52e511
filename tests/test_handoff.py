"""Handing a secret to hashlib, hmac and cryptography without copies.

Inside a read window the view (a read-only memoryview of format "B") goes
straight to the consumer, which must give the same result as on the plain
bytes - with either storage engine (every test here runs as [guarded] and
[sealed]).  Only the view exports a buffer: the secret object itself is
refused (BufferError; cryptography wraps it in TypeError) inside a window
and outside one alike, so a consumer that keeps the object, or a view, and
reads it later (cryptography's AESCCM, algorithms.AES) gets a clean error
and never crashes the interpreter - those cases run in a child process.
"""

from __future__ import annotations

import contextlib
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


def assert_refused(info: pytest.ExceptionInfo[BaseException]) -> None:
    """The secret's own refusal is a BufferError that says to pass the
    view; cryptography reports it as "Cannot convert ... to a buffer"."""
    e = info.value
    if isinstance(e, BufferError):
        assert "view" in str(e), e
    else:
        assert isinstance(e, TypeError) and "buffer" in str(e).lower(), e


@pytest.mark.parametrize("name", sorted(CONSUMERS))
@pytest.mark.parametrize("kind", ["SecretBytes", "MemSafe", "random"])
def test_consumer_on_view_equals_plain_bytes(
    name: str, kind: str, raw: bytes, storage: str
) -> None:
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
    assert secret.storage == storage
    with secret.read() as view:
        assert view.format == "B" and view.readonly and view.contiguous
        got = consume(view)
    assert got == consume(plain)
    # Closure form.
    assert secret.read(consume) == got
    # The secret object itself is no buffer, inside a window or not.
    with secret.read() as view:
        with pytest.raises((BufferError, TypeError)) as info:
            consume(secret)
        assert_refused(info)
        assert consume(view) == got  # the window is still fine
    with pytest.raises((BufferError, TypeError)) as info:
        consume(secret)
    assert_refused(info)
    secret.close()


def test_hmac_compare_digest_on_views(raw: bytes) -> None:
    k = memsafe.SecretBytes(raw)
    same = memsafe.SecretBytes(raw)
    other = memsafe.SecretBytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with k.read() as view:
        assert hmac.compare_digest(view, raw)
        assert not hmac.compare_digest(view, raw[:-1] + bytes([raw[-1] ^ 1]))
        assert not hmac.compare_digest(view, raw[:-1])
        assert hmac.compare_digest(view, view)
        # Two views: of two secrets, and of two windows on one secret.
        with same.read() as a, other.read() as b, k.read() as again:
            assert hmac.compare_digest(view, a)
            assert hmac.compare_digest(a, view)
            assert not hmac.compare_digest(view, b)
            assert not hmac.compare_digest(b, a)
            assert hmac.compare_digest(view, again)
        # The secret object is no buffer, not even inside its window:
        # memsafe.compare_digest (or ==) is the way to compare it.
        with pytest.raises(BufferError, match="view"):
            hmac.compare_digest(k, raw)
        assert memsafe.compare_digest(k, raw)
    with pytest.raises(BufferError, match="view"):
        hmac.compare_digest(raw, k)
    assert memsafe.compare_digest(k, same)
    assert not memsafe.compare_digest(k, other)


@pytest.mark.parametrize("left", [bytes, bytearray, memoryview])
def test_bytes_like_on_the_left_of_eq_uses_the_secret(raw: bytes, left: Any) -> None:
    """bytearray == secret (and bytes, memoryview) cannot read the secret's
    buffer, so it defers to the secret's constant-time __eq__ and gives the
    right answer, inside a window and outside."""
    k = memsafe.SecretBytes(raw)
    wrong = raw[:-1] + bytes([raw[-1] ^ 1])
    for inside in (False, True):
        with k.read() if inside else contextlib.nullcontext():
            assert (left(raw) == k) is True
            assert (left(raw) != k) is False
            assert (left(wrong) == k) is False
            assert (left(raw[:-1]) == k) is False
            assert (left(wrong) != k) is True
    k.close()
    with pytest.raises(ValueError):
        left(raw) == k  # noqa: B015


def test_secretstr_view_as_password() -> None:
    password = "correct horse battery staple é€"
    p = memsafe.SecretStr(password)
    with p.read() as view:
        got = hashlib.pbkdf2_hmac("sha256", view, SALT, 1000)
        got2 = hashlib.scrypt(view, salt=SALT, n=16, r=8, p=1)
    assert got == hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, 1000)
    assert got2 == hashlib.scrypt(password.encode(), salt=SALT, n=16, r=8, p=1)
    with pytest.raises(BufferError, match="view"):
        hashlib.pbkdf2_hmac("sha256", p, SALT, 1000)  # type: ignore[arg-type]


def test_os_write_of_a_view() -> None:
    raw = os.urandom(64)
    k = memsafe.SecretBytes(raw)
    r, w = os.pipe()
    try:
        with k.read() as view:
            assert os.write(w, view) == 64
            with pytest.raises(BufferError, match="view"):
                os.write(w, k)  # type: ignore[arg-type]
        assert os.read(r, 100) == raw
    finally:
        os.close(r)
        os.close(w)


REFUSING: dict[str, Consumer] = {
    "sha256": lambda k: hashlib.sha256(k),
    "hmac": lambda k: hmac.digest(k, b"m", "sha256"),
    "memoryview": lambda k: memoryview(k),
    "bytes": lambda k: bytes(k),
    "bytearray": lambda k: bytearray(k),
    "AESGCM": lambda k: AESGCM(k),
    "AESCCM": lambda k: AESCCM(k),
    "Ed25519": lambda k: Ed25519PrivateKey.from_private_bytes(k),
    "HKDF": lambda k: HKDF(hashes.SHA256(), 32, None, None).derive(k),
}


@pytest.mark.parametrize("where", ["outside", "inside"])
@pytest.mark.parametrize("name", sorted(REFUSING))
def test_secret_object_is_refused_in_and_out_of_windows(name: str, where: str) -> None:
    k = memsafe.SecretBytes.random(32)
    with k.read() if where == "inside" else contextlib.nullcontext():
        with pytest.raises((BufferError, TypeError)) as info:
            REFUSING[name](k)
        assert_refused(info)
    assert not k.closed
    with k.read() as view:
        assert len(view) == 32
    k.close()


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


print("storage", k.storage)

# AESCCM(secret) outside any window, and inside one: the object is no buffer.
outcome("ccm-outside", lambda: AESCCM(k))
with k.read():
    outcome("ccm-inside", lambda: AESCCM(k))
    outcome("aes-inside", lambda: algorithms.AES(k))

# AESCCM keeps the key object it was given - here the view - and re-reads
# it on every call: inside the window it works, after it the view is
# released and the call fails cleanly, also inside a later window (whose
# view is another object).
with k.read() as view:
    ccm = AESCCM(view)
    inside = ccm.encrypt(NONCE, b"msg", None)
print("ccm-inside-right-key", inside == AESCCM(raw).encrypt(NONCE, b"msg", None))
outcome("ccm-view-after", lambda: ccm.encrypt(NONCE, b"msg", None))
outcome("ccm-view-decrypt-after", lambda: ccm.decrypt(NONCE, inside, None))
with k.read():
    outcome("ccm-view-later-window", lambda: ccm.encrypt(NONCE, b"msg", None))

# AESGCM and ChaCha20Poly1305 copy the key when they are constructed (into
# their own memory, out of memsafe's reach): they keep working after the
# window, with the right key.
k2 = memsafe.SecretBytes(raw + raw)
with k2.read() as view:
    gcm = AESGCM(view)
k2.close()
expect = AESGCM(raw + raw).encrypt(NONCE, b"m", None)
print("gcm-after", gcm.encrypt(NONCE, b"m", None) == expect)

k32 = memsafe.SecretBytes.random(32)
with k32.read() as view:
    chacha = ChaCha20Poly1305(view)
expect = ChaCha20Poly1305(k32.reveal()).encrypt(NONCE, b"m", None)
print("chacha-after", chacha.encrypt(NONCE, b"m", None) == expect)

# algorithms.AES keeps the key object; the cipher context reads it later.
with k.read() as view:
    alg = algorithms.AES(view)
outcome("aes-cipher-after", lambda: Cipher(alg, modes.ECB()).encryptor())

# hashlib on the object after the window.
outcome("sha256-after", lambda: hashlib.sha256(k))

# Nothing above left plaintext reachable: guarded pages are no-access again,
# a sealed secret has no plaintext slot.
info = k._region_info()
if info["storage"] == "guarded":
    print("at-rest", _kernel.perms_at(info["data"]) in ("---p", "---s"))
else:
    print("at-rest", info["plaintext"] == 0)
print("still-right", k.reveal() == raw)
k.close()
k32.close()
print("closed", k.closed, k32.closed)
"""


@helpers.linux_only
def test_late_readers_fail_cleanly_in_a_child(storage: str) -> None:
    proc = helpers.run_child(LATE_READERS, timeout=60)
    out = helpers.ok(proc)
    assert b"Fatal Python error" not in proc.stderr
    results = dict(line.split(" ", 1) for line in out.splitlines())
    assert results["storage"] == storage  # MEMSAFE_STORAGE reached the child
    for name in (
        "ccm-outside",
        "ccm-inside",
        "aes-inside",
        "ccm-view-after",
        "ccm-view-decrypt-after",
        "ccm-view-later-window",
        "aes-cipher-after",
        "sha256-after",
    ):
        assert results[name] in ("BufferError", "TypeError", "ValueError"), (
            name,
            results[name],
        )
    assert results["ccm-inside-right-key"] == "True"
    assert results["gcm-after"] == "True"
    assert results["chacha-after"] == "True"
    assert results["at-rest"] == "True"
    assert results["still-right"] == "True"
    assert results["closed"] == "True True"


def test_view_kept_past_the_window_in_a_child(storage: str) -> None:
    # A consumer that keeps the view itself: closing the window reports it,
    # the memory stays readable until the view goes, and nothing crashes.
    out = helpers.ok(
        helpers.run_child(
            """
            import hashlib
            import memsafe
            k = memsafe.SecretBytes(b"k" * 32)
            print(k.storage)
            kept = []
            try:
                with k.read() as view:
                    kept.append(memoryview(view))
            except BufferError:
                print("BufferError")
            print(bytes(kept[0]) == b"k" * 32)
            digest = hashlib.sha256(b"k" * 32).digest()
            print(hashlib.sha256(kept[0]).digest() == digest)
            try:
                k.close()
            except BufferError:
                print("close-refused")
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
    assert out.split() == [
        storage,
        "BufferError",
        "True",
        "True",
        "close-refused",
        "refused",
        "True",
    ]
