"""Password hashing: argon2-cffi, bcrypt, passlib."""

from __future__ import annotations

import pathlib

import helpers
import pytest

import memsafe

from . import _leak
from ._support import KEY, PASSWORD, need
from ._table import PLAINTEXT, row


@row(
    "argon2-cffi",
    "PasswordHasher().hash(pw), .verify(hash, pw)",
    PLAINTEXT,
    "refuses a view (str or bytes); copies the password into a cffi buffer "
    "that is freed unwiped: the leak scan finds it; a str is encoded first "
    "(one more copy): use bytes",
)
def test_argon2(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    argon2 = need("argon2")
    ph = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    stored = key.plaintext(ph.hash)
    with key.read() as v, pytest.raises((TypeError, AttributeError)):
        ph.verify(stored, v)
    assert key.plaintext(lambda b: ph.verify(stored, b)) is True
    assert ph.verify(stored, KEY)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        memsafe.SecretBytes(b"wrong").plaintext(lambda b: ph.verify(stored, b))
    res = _leak.scan_after(
        """
        import argon2
        ph = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
        stored = key.plaintext(ph.hash)
        ok = key.plaintext(lambda b: ph.verify(stored, b))
        """,
        tmp_path,
    )
    _leak.copy_found(res)


@pytest.mark.filterwarnings("ignore:.*bcrypt.kdf.. called with only")
@row(
    "bcrypt",
    "bcrypt.hashpw(pw, salt), bcrypt.checkpw(pw, hashed), bcrypt.kdf(pw, ...)",
    PLAINTEXT,
    "refuses a view and a bytearray (bytes only); nothing is left: the leak "
    "scan finds no copy; passwords over 72 bytes raise ValueError (bcrypt 5)",
)
def test_bcrypt(key: memsafe.SecretBytes, tmp_path: pathlib.Path) -> None:
    bcrypt = need("bcrypt")
    hashed = key.plaintext(lambda b: bcrypt.hashpw(b, bcrypt.gensalt(4)))
    with key.read() as v, pytest.raises(TypeError):
        bcrypt.checkpw(v, hashed)
    assert key.plaintext(lambda b: bcrypt.checkpw(b, hashed)) is True
    assert bcrypt.checkpw(KEY, hashed)
    assert not memsafe.SecretBytes(b"wrong").plaintext(
        lambda b: bcrypt.checkpw(b, hashed)
    )
    derived = key.plaintext(lambda b: bcrypt.kdf(b, b"salt", 32, 4))
    assert derived == bcrypt.kdf(KEY, b"salt", 32, 4)
    res = _leak.scan_after(
        """
        import bcrypt
        hashed = key.plaintext(lambda b: bcrypt.hashpw(b, bcrypt.gensalt(4)))
        ok = key.plaintext(lambda b: bcrypt.checkpw(b, hashed))
        d = key.plaintext(lambda b: bcrypt.kdf(b, b"salt", 32, 4))
        """,
        tmp_path,
    )
    _leak.no_copy(res)


@pytest.mark.skipif(
    helpers.SANITIZED, reason="passlib imports crypt, which faults under ASan"
)
@pytest.mark.filterwarnings("ignore:'crypt' is deprecated:DeprecationWarning")
@row(
    "passlib",
    "pbkdf2_sha256.hash(pw), .verify(pw, hash)",
    PLAINTEXT,
    "refuses a view (str or bytes); with bytes nothing is left (the leak scan "
    "finds no copy); a str is encoded to bytes first (a copy): give a "
    "SecretStr's text as SecretBytes(pw).plaintext(...)",
)
def test_passlib(password: memsafe.SecretStr, tmp_path: pathlib.Path) -> None:
    need("passlib")
    from passlib.hash import pbkdf2_sha256

    handler = pbkdf2_sha256.using(rounds=1000)
    as_bytes = memsafe.SecretBytes(password)  # UTF-8, in secret memory
    stored = as_bytes.plaintext(handler.hash)
    with as_bytes.read() as v, pytest.raises(TypeError):
        handler.verify(v, stored)
    assert as_bytes.plaintext(lambda b: handler.verify(b, stored)) is True
    assert password.plaintext(lambda t: handler.verify(t, stored)) is True
    assert handler.verify(PASSWORD, stored)
    res = _leak.scan_after(
        """
        from passlib.hash import pbkdf2_sha256
        h = pbkdf2_sha256.using(rounds=1000)
        stored = key.plaintext(h.hash)
        ok = key.plaintext(lambda b: h.verify(b, stored))
        """,
        tmp_path,
    )
    _leak.no_copy(res)
