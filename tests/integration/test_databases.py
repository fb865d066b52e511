"""Database drivers: psycopg (3) and PyMySQL.  No server is started: the
connection parameters are built and checked, and PyMySQL's connection is
deferred."""

from __future__ import annotations

import pathlib

import pytest

import memsafe

from . import _leak
from ._support import KEY, PASSWORD, kept, need
from ._table import DONT, PLAINTEXT, row


@row(
    "psycopg",
    "conninfo.make_conninfo(host=..., password=t)",
    PLAINTEXT,
    "the conninfo str holds the password (the leak scan finds it), and "
    "psycopg.connect() hands it to libpq, which keeps its own copy for the "
    "connection's lifetime (no server is started here); a view is formatted "
    "as '<memory at 0x...>'; passfile= (PGPASSFILE) keeps the password out "
    "of Python: libpq reads the file itself",
)
def test_psycopg_conninfo(password: memsafe.SecretStr, tmp_path: pathlib.Path) -> None:
    need("psycopg")
    from psycopg import conninfo

    def build(pw: object) -> str:
        return str(
            conninfo.make_conninfo("", host="db.invalid", user="app", password=pw)
        )

    info = password.plaintext(build)
    assert conninfo.conninfo_to_dict(info) == {
        "host": "db.invalid",
        "user": "app",
        "password": PASSWORD,
    }
    with password.read() as v:
        assert "<memory at" in build(v)
    res = _leak.scan_after(
        """
        from psycopg import conninfo
        info = password.plaintext(
            lambda t: conninfo.make_conninfo("", host="db.invalid", password=t))
        """,
        tmp_path,
    )
    _leak.copy_found(res)


@row(
    "PyMySQL",
    "pymysql.connect(host=..., password=pw) / Connection(..., defer_connect=True)",
    DONT,
    "the Connection keeps the password for reconnects: bytes as given "
    "(plaintext() leaves them intact, PlaintextWarning), a str as a latin-1 "
    "bytes copy (beyond latin-1 a UnicodeEncodeError, which carries the whole "
    "str: left intact); a view is kept released and fails at connect; an "
    "option file (read_default_file=) is read into a str too",
)
def test_pymysql_keeps_the_password(
    key: memsafe.SecretBytes, password: memsafe.SecretStr
) -> None:
    pymysql = need("pymysql")

    def deferred(pw: object) -> object:
        return pymysql.connections.Connection(
            host="127.0.0.1", user="app", password=pw, defer_connect=True
        )

    with kept("bytes"):
        conn = key.plaintext(deferred)
    assert conn.password == KEY  # type: ignore[attr-defined]
    conn = password.plaintext(deferred)  # its own copy: the str is wiped
    assert conn.password == PASSWORD.encode("latin-1")  # type: ignore[attr-defined]
    # The error carries the whole str (.object): kept, not wiped.
    with kept("str"), pytest.raises(UnicodeEncodeError) as info:
        memsafe.SecretStr("\u20ac").plaintext(deferred)
    assert info.value.object == "\u20ac"
    with password.read() as v:
        conn = deferred(v)
    with pytest.raises(ValueError, match="released"):
        bytes(conn.password)  # type: ignore[attr-defined]
