"""hashlib, hmac and ssl from the standard library."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import pathlib
import ssl
import sys

import pytest

import memsafe

from . import _leak
from ._support import KEY, PASSWORD, kept, need
from ._table import PLAINTEXT, VIEW, row

MSG = b"message"
SALT = b"salt-salt-salt-salt"


@row(
    "hashlib",
    "hashlib.sha256(v), pbkdf2_hmac(...), scrypt(...)",
    VIEW,
    "nothing: they read the view in place; the leak scan finds no copy",
)
def test_hashlib_reads_the_view(
    key: memsafe.SecretBytes, tmp_path: pathlib.Path
) -> None:
    with key.read() as v:
        got = (
            hashlib.sha256(v).digest(),
            hashlib.pbkdf2_hmac("sha256", v, SALT, 100),
            hashlib.scrypt(v, salt=SALT, n=16, r=8, p=1, dklen=32),
        )
    assert got == (
        hashlib.sha256(KEY).digest(),
        hashlib.pbkdf2_hmac("sha256", KEY, SALT, 100),
        hashlib.scrypt(KEY, salt=SALT, n=16, r=8, p=1, dklen=32),
    )
    _leak.no_copy(
        _leak.scan_after(
            """
            import hashlib
            with key.read() as v:
                d = (hashlib.sha256(v).digest(),
                     hashlib.pbkdf2_hmac("sha256", v, b"s", 100),
                     hashlib.scrypt(v, salt=b"s", n=16, r=8, p=1))
            """,
            tmp_path,
        )
    )


# CPython 3.14 moved BLAKE2 to HACL*: a keyed hash object keeps its own copy
# of the key in a malloc'd block and frees it without wiping.
BLAKE2_KEEPS_KEY = sys.version_info >= (3, 14)


@row(
    "hashlib",
    "hashlib.blake2b(msg, key=v)",
    VIEW,
    "nothing up to CPython 3.13; from 3.14 (HACL* BLAKE2) a copy of the key "
    "stays in the freed heap: prefer hmac.digest(v, msg, 'blake2b') there",
)
def test_hashlib_blake2_key(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    with key.read() as v:
        assert (
            hashlib.blake2b(MSG, key=v).digest()
            == hashlib.blake2b(MSG, key=KEY).digest()
        )
    res = _leak.scan_after(
        """
        import hashlib
        with key.read() as v:
            d = hashlib.blake2b(b"m", key=v).digest()
        """,
        tmp_path,
    )
    if BLAKE2_KEEPS_KEY:
        _leak.copy_found(res)
    else:
        _leak.no_copy(res)


@row(
    "hmac",
    "hmac.digest(v, msg, 'sha256'), hmac.compare_digest(v, other)",
    VIEW,
    "nothing: they read the view in place; the leak scan (hmac.digest) finds no copy",
)
def test_hmac_digest_reads_the_view(
    key: memsafe.SecretBytes, tmp_path: pathlib.Path
) -> None:
    mac = hmac.digest(KEY, MSG, "sha256")
    with key.read() as v:
        assert hmac.digest(v, MSG, "sha256") == mac
        assert hmac.compare_digest(v, KEY)
    _leak.no_copy(
        _leak.scan_after(
            "import hmac\nd = key.read(lambda v: hmac.digest(v, b'm', 'sha256'))",
            tmp_path,
        )
    )


@row(
    "hmac",
    "hmac.new(key, msg, 'sha256')",
    PLAINTEXT,
    "refuses a view (bytes or bytearray only); OpenSSL's HMAC context holds "
    "the key while the HMAC object lives; the leak scan finds no copy after it "
    "is gone",
)
def test_hmac_new_needs_plaintext(
    key: memsafe.SecretBytes, tmp_path: pathlib.Path
) -> None:
    with key.read() as v, pytest.raises(TypeError):
        hmac.new(v, MSG, "sha256")  # type: ignore[arg-type]
    got = key.plaintext(lambda b: hmac.new(b, MSG, "sha256").hexdigest())
    assert got == hmac.new(KEY, MSG, "sha256").hexdigest()
    _leak.no_copy(
        _leak.scan_after(
            "import hmac\n"
            "d = key.plaintext(lambda b: hmac.new(b, b'm', 'sha256').digest())",
            tmp_path,
        )
    )


def _cert_and_key(secret: str, workdir: pathlib.Path) -> None:
    """A self-signed certificate and its private key, encrypted with secret."""
    need("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "memsafe test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1))
        .not_valid_after(datetime.datetime(2100, 1, 1))
        .sign(private, hashes.SHA256())
    )
    (workdir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "key.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(secret.encode()),
        )
    )


@row(
    "ssl",
    "SSLContext.load_cert_chain(cert, key, password=t)",
    PLAINTEXT,
    "refuses a view (str, bytes or a callable); copies the password into a "
    "buffer of its own for OpenSSL: the leak scan finds copies on the heap and "
    "the stack after the call; a password= callable that returns a plaintext "
    "keeps it (PlaintextWarning)",
)
def test_ssl_password(password: memsafe.SecretStr, tmp_path: pathlib.Path) -> None:
    _cert_and_key(PASSWORD, tmp_path)
    cert, keyfile = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with password.read() as v, pytest.raises(TypeError):
        ctx.load_cert_chain(cert, keyfile, password=v)  # type: ignore[arg-type]
    with password.plaintext() as t:
        ctx.load_cert_chain(cert, keyfile, password=t)
    with pytest.raises(ssl.SSLError):
        memsafe.SecretStr("wrong").plaintext(
            lambda t: ctx.load_cert_chain(cert, keyfile, password=t)
        )
    with kept("str"):
        ctx.load_cert_chain(cert, keyfile, password=lambda: password.plaintext(str))
    res = _leak.scan_after(
        """
        import os, ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        files = [os.path.join(workdir, n) for n in ("cert.pem", "key.pem")]
        password.plaintext(lambda t: ctx.load_cert_chain(*files, password=t))
        """,
        tmp_path,
        prepare=lambda secret, d: _cert_and_key(secret.decode(), d),
    )
    _leak.copy_found(res)
