"""cryptography, pycryptodome and PyNaCl."""

from __future__ import annotations

import base64
import pathlib

import helpers
import pytest

import memsafe

from . import _leak
from ._support import KEY, kept, need
from ._table import DONT, PLAINTEXT, VIEW, row

NONCE12 = bytes(range(12))
NONCE24 = bytes(range(24))
MSG = b"attack at dawn"


# ---- cryptography ----------------------------------------------------------


@row(
    "cryptography",
    "AESGCM(v), ChaCha20Poly1305(v), AESOCB3(v), AESSIV(v)",
    VIEW,
    "copies the key into OpenSSL at construction, then works after the window "
    "closes; the leak scan finds the copy while the object lives, and none "
    "once an AESGCM is freed (ChaCha20Poly1305 leaves one on the C stack)",
)
def test_cryptography_aeads(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    need("cryptography")
    from cryptography.hazmat.primitives.ciphers import aead

    key64 = memsafe.SecretBytes(KEY * 2)
    for cls, secret, k in [
        (aead.AESGCM, key, KEY),
        (aead.ChaCha20Poly1305, key, KEY),
        (aead.AESOCB3, key, KEY),
        (aead.AESSIV, key64, KEY * 2),
    ]:
        with secret.read() as v:
            cipher = cls(v)
        args = (MSG, None) if cls is aead.AESSIV else (NONCE12, MSG, None)
        assert cipher.encrypt(*args) == cls(k).encrypt(*args)  # type: ignore[arg-type]
    use = """
        from cryptography.hazmat.primitives.ciphers.aead import {cls}
        with key.read() as v:
            a = {cls}(v)
        c = a.encrypt(bytes(12), b"x", None)
        """
    _leak.copy_found(_leak.scan_after(use.format(cls="AESGCM"), tmp_path))
    freed = use + "del a\n"
    _leak.no_copy(_leak.scan_after(freed.format(cls="AESGCM"), tmp_path))
    _leak.copy_found(_leak.scan_after(freed.format(cls="ChaCha20Poly1305"), tmp_path))


@row(
    "cryptography",
    "AESCCM(v), algorithms.AES(v)",
    VIEW,
    "keep the view and read it again at each use: use them inside the window "
    "only; afterwards they raise (TypeError/ValueError), never crash; the "
    "secret object itself is refused (no buffer outside a window)",
)
def test_cryptography_objects_that_keep_the_key(key: memsafe.SecretBytes) -> None:
    need("cryptography")
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    with key.read() as v:
        ccm = AESCCM(v)
        inside = ccm.encrypt(NONCE12, MSG, None)
        algo = algorithms.AES(v)
        block = Cipher(algo, modes.ECB()).encryptor().update(bytes(16))
    assert inside == AESCCM(KEY).encrypt(NONCE12, MSG, None)
    assert block == Cipher(algorithms.AES(KEY), modes.ECB()).encryptor().update(
        bytes(16)
    )
    with pytest.raises(TypeError):
        ccm.encrypt(NONCE12, MSG, None)
    with pytest.raises(ValueError, match="released"):
        Cipher(algo, modes.ECB()).encryptor()
    with pytest.raises((TypeError, BufferError)):
        AESCCM(key)  # type: ignore[arg-type]


@row(
    "cryptography",
    "HKDF(...).derive(v), Scrypt(...).derive(v), hmac.HMAC(v, SHA256())",
    VIEW,
    "nothing after the call; the leak scan finds no copy",
)
def test_cryptography_kdfs(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    need("cryptography")
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    def derive(k: object) -> tuple[bytes, bytes, bytes]:
        mac = hmac.HMAC(k, hashes.SHA256())  # type: ignore[arg-type]
        mac.update(MSG)
        return (
            HKDF(hashes.SHA256(), 32, b"salt", b"info").derive(k),  # type: ignore[arg-type]
            Scrypt(b"salt", 32, 16, 8, 1).derive(k),  # type: ignore[arg-type]
            mac.finalize(),
        )

    assert key.read(derive) == derive(KEY)
    res = _leak.scan_after(
        """
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
        d = key.read(lambda v: (HKDF(hashes.SHA256(), 32, b"s", b"i").derive(v),
                                Scrypt(b"s", 32, 16, 8, 1).derive(v)))
        """,
        tmp_path,
    )
    _leak.no_copy(res)


@row(
    "cryptography",
    "serialization.load_pem_private_key(data, password=v)",
    VIEW,
    "the password is used during the call only; the loaded key lives in "
    "OpenSSL (not memsafe memory)",
)
def test_cryptography_encrypted_private_key(key: memsafe.SecretBytes) -> None:
    need("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY),
    )
    with key.read() as v:
        loaded = serialization.load_pem_private_key(pem, password=v)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert loaded.public_key().public_bytes(*raw) == private.public_key().public_bytes(
        *raw
    )


@row(
    "cryptography",
    "Fernet(base64_key)",
    VIEW,
    "decodes the key and keeps both halves as bytes for the Fernet object's "
    "lifetime (the leak scan finds them): memsafe cannot wipe those",
)
def test_cryptography_fernet(tmp_path: pathlib.Path) -> None:
    need("cryptography")
    from cryptography.fernet import Fernet

    b64 = base64.urlsafe_b64encode(KEY)
    secret = memsafe.SecretBytes(b64)
    with secret.read() as v:
        f = Fernet(v)  # type: ignore[arg-type]
    assert Fernet(b64).decrypt(f.encrypt(MSG)) == MSG
    res = _leak.scan_after(
        """
        import base64
        from cryptography.fernet import Fernet
        with key.read() as v:
            b64 = memsafe.SecretBytes(base64.urlsafe_b64encode(v))
        with b64.read() as v:
            f = Fernet(v)
        """,
        tmp_path,
    )
    _leak.copy_found(res)


# ---- pycryptodome ----------------------------------------------------------

# pycryptodome loads its C modules with RTLD_DEEPBIND, which ASan refuses.
cryptodome = pytest.mark.skipif(
    helpers.SANITIZED, reason="pycryptodome's RTLD_DEEPBIND breaks ASan"
)


@cryptodome
@row(
    "pycryptodome",
    "AES.new(v, AES.MODE_GCM, nonce=n) (also EAX, ChaCha20_Poly1305.new(key=v))",
    VIEW,
    "expands the key into the cipher's C state at construction and works "
    "after the window closes; that state is freed unwiped: the leak scan "
    "finds the key after the cipher is deleted",
)
def test_pycryptodome_ciphers(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    need("Crypto")
    from Crypto.Cipher import AES, ChaCha20_Poly1305

    with key.read() as v:
        gcm = AES.new(v, AES.MODE_GCM, nonce=NONCE12)
        eax = AES.new(v, AES.MODE_EAX, nonce=NONCE12)
        chacha = ChaCha20_Poly1305.new(key=v, nonce=NONCE12)
    assert gcm.encrypt_and_digest(MSG) == AES.new(
        KEY, AES.MODE_GCM, nonce=NONCE12
    ).encrypt_and_digest(MSG)
    assert eax.encrypt_and_digest(MSG) == AES.new(
        KEY, AES.MODE_EAX, nonce=NONCE12
    ).encrypt_and_digest(MSG)
    assert chacha.encrypt_and_digest(MSG) == ChaCha20_Poly1305.new(
        key=KEY, nonce=NONCE12
    ).encrypt_and_digest(MSG)
    res = _leak.scan_after(
        """
        from Crypto.Cipher import AES
        with key.read() as v:
            c = AES.new(v, AES.MODE_GCM, nonce=bytes(12))
        ct = c.encrypt_and_digest(b"x")
        del c
        """,
        tmp_path,
    )
    _leak.copy_found(res)


@cryptodome
@row(
    "pycryptodome",
    "HMAC.new(v, msg, SHA256), PBKDF2(v, salt, ..., hmac_hash_module=SHA256), "
    "scrypt(v, ...), HKDF(v, ...)",
    VIEW,
    "accept the view, but HMAC (also inside PBKDF2 and HKDF) turns it into "
    "bytes (tobytes()) and pads it: copies freed unwiped, which the leak scan "
    "finds",
)
def test_pycryptodome_kdfs(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    need("Crypto")
    from Crypto.Hash import HMAC, SHA256
    from Crypto.Protocol.KDF import HKDF, PBKDF2, scrypt

    def derive(k: object) -> tuple[object, ...]:
        return (
            HMAC.new(k, MSG, SHA256).digest(),  # type: ignore[arg-type]
            PBKDF2(k, b"salt", 16, count=10, hmac_hash_module=SHA256),  # type: ignore[arg-type]
            scrypt(k, b"salt", 16, N=16, r=8, p=1),  # type: ignore[arg-type]
            HKDF(k, 16, b"salt", SHA256),  # type: ignore[arg-type]
        )

    assert key.read(derive) == derive(KEY)
    res = _leak.scan_after(
        """
        from Crypto.Hash import HMAC, SHA256
        from Crypto.Protocol.KDF import PBKDF2
        d = key.read(lambda v: (HMAC.new(v, b"m", SHA256).digest(),
                                PBKDF2(v, b"s", 16, count=10, hmac_hash_module=SHA256)))
        """,
        tmp_path,
    )
    _leak.copy_found(res)


# ---- PyNaCl ----------------------------------------------------------------


@row(
    "PyNaCl",
    "nacl.bindings.crypto_secretbox(msg, nonce, key); SecretBox(key).encrypt(...) "
    "inside the call",
    PLAINTEXT,
    "refuses a view (bytes only); used within the call nothing is left: the "
    "leak scan finds no copy",
)
def test_pynacl_secretbox(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    need("nacl")
    import nacl.bindings
    import nacl.secret

    with key.read() as v:
        with pytest.raises(TypeError):
            nacl.secret.SecretBox(v)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            nacl.bindings.crypto_secretbox(MSG, NONCE24, v)  # type: ignore[arg-type]
    box = key.plaintext(lambda b: nacl.bindings.crypto_secretbox(MSG, NONCE24, b))
    assert box == nacl.bindings.crypto_secretbox(MSG, NONCE24, KEY)
    sealed = key.plaintext(lambda b: nacl.secret.SecretBox(b).encrypt(MSG, NONCE24))
    assert nacl.secret.SecretBox(KEY).decrypt(sealed) == MSG
    res = _leak.scan_after(
        """
        import nacl.bindings, nacl.secret
        c = key.plaintext(lambda b: nacl.bindings.crypto_secretbox(b"m", bytes(24), b))
        d = key.plaintext(lambda b: nacl.secret.SecretBox(b).encrypt(b"m", bytes(24)))
        """,
        tmp_path,
    )
    _leak.no_copy(res)


@row(
    "PyNaCl",
    "SecretBox(key), SigningKey(seed), PrivateKey(key) kept for later use",
    DONT,
    "these objects keep the key bytes for their lifetime (a SigningKey's "
    "signing key contains the seed): plaintext() leaves them intact with "
    "PlaintextWarning; build them inside the call and drop them",
)
def test_pynacl_objects_keep_the_key(key: memsafe.SecretBytes) -> None:
    need("nacl")
    import nacl.public
    import nacl.secret
    import nacl.signing

    for cls in (nacl.secret.SecretBox, nacl.signing.SigningKey, nacl.public.PrivateKey):
        with kept("bytes"):
            obj = key.plaintext(cls)
        assert bytes(obj)[:32] == KEY if cls is not nacl.secret.SecretBox else True
    with kept("bytes"):
        box = key.plaintext(nacl.secret.SecretBox)
    assert box.decrypt(box.encrypt(MSG, NONCE24)) == MSG
