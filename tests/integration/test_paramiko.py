"""paramiko: SSH messages and encrypted private keys."""

from __future__ import annotations

import io
import pathlib

import pytest

import memsafe

from . import _leak
from ._support import KEY, PASSWORD, need
from ._table import PLAINTEXT, VIEW, row


def ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@row(
    "paramiko",
    "Message().add_string(v)",
    VIEW,
    "writes the bytes into the message's buffer (a BytesIO never wiped; the "
    "leak scan finds it after the message is deleted); a SecretStr's view "
    "gives the SSH length prefix in UTF-8 bytes (nbytes), as a plaintext str "
    "does",
)
def test_paramiko_message(
    key: memsafe.SecretBytes, password: memsafe.SecretStr, tmp_path: pathlib.Path
) -> None:
    paramiko = need("paramiko")

    def packet(value: object) -> bytes:
        m = paramiko.Message()
        m.add_string(value)
        return bytes(m.asbytes())

    utf8 = PASSWORD.encode()
    assert password.nbytes == len(utf8) > len(password)
    assert key.read(packet) == ssh_string(KEY)
    assert password.read(packet) == ssh_string(utf8)
    assert key.plaintext(packet) == ssh_string(KEY)
    assert password.plaintext(packet) == ssh_string(utf8)
    res = _leak.scan_after(
        """
        import paramiko
        m = paramiko.Message()
        with key.read() as v:
            m.add_string(v)
        del m
        """,
        tmp_path,
    )
    _leak.copy_found(res)


@row(
    "paramiko",
    "Ed25519Key.from_private_key(f, password=pw) (also RSAKey, ECDSAKey)",
    PLAINTEXT,
    "refuses a view (str or bytes); the loaded key object holds the private "
    "key for its lifetime",
)
def test_paramiko_encrypted_key(key: memsafe.SecretBytes) -> None:
    paramiko = need("paramiko")
    need("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(KEY),
    ).decode()
    with key.read() as v, pytest.raises(TypeError):
        paramiko.Ed25519Key.from_private_key(io.StringIO(pem), password=v)
    loaded = key.plaintext(
        lambda b: paramiko.Ed25519Key.from_private_key(io.StringIO(pem), password=b)
    )
    assert (
        loaded.get_base64()
        == paramiko.Ed25519Key.from_private_key(
            io.StringIO(pem), password=KEY
        ).get_base64()
    )
    with pytest.raises(paramiko.SSHException):
        memsafe.SecretBytes(b"wrong").plaintext(
            lambda b: paramiko.Ed25519Key.from_private_key(io.StringIO(pem), password=b)
        )
