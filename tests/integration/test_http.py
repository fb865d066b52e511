"""HTTP clients: requests and httpx.  No network: requests are prepared,
and httpx's auth flow is run by hand."""

from __future__ import annotations

import base64
import pathlib
import warnings

import memsafe

from . import _leak
from ._support import PASSWORD, kept, need
from ._table import DONT, PLAINTEXT, VIEW, row

URL = "http://service.invalid/api"
USER = "user"
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode("latin-1")).decode()
EXPECTED_UTF8 = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@row(
    "requests",
    "Request('GET', url, auth=(user, t)).prepare() (HTTPBasicAuth)",
    PLAINTEXT,
    "the prepared request keeps the Authorization header, base64 of "
    "user:password, for its lifetime (a Session(auth=...) keeps the password "
    "itself); requests encodes a str password as latin-1",
)
def test_requests_basic_auth(password: memsafe.SecretStr) -> None:
    requests = need("requests")

    def prepared(auth: object) -> str:
        req = requests.Request("GET", URL, auth=auth).prepare()
        return str(req.headers["Authorization"])

    assert password.plaintext(lambda t: prepared((USER, t))) == EXPECTED
    basic = requests.auth.HTTPBasicAuth
    assert password.plaintext(lambda t: prepared(basic(USER, t))) == EXPECTED
    with kept("str"):
        session_auth = password.plaintext(lambda t: basic(USER, t))
    assert session_auth.password == PASSWORD


@row(
    "requests",
    "HTTPBasicAuth(user, v) with a view",
    DONT,
    "formats the view with str(): the header carries '<memory at 0x...>' "
    "(DeprecationWarning), so the wrong credentials are sent",
)
def test_requests_view_sends_garbage(password: memsafe.SecretStr) -> None:
    requests = need("requests")
    with password.read() as v, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        req = requests.Request("GET", URL, auth=(USER, v)).prepare()
    header = req.headers["Authorization"]
    assert header not in (EXPECTED, EXPECTED_UTF8)
    assert b"<memory at" in base64.b64decode(header.split()[1])
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


@row(
    "httpx",
    "BasicAuth(user, v) then its auth flow",
    VIEW,
    "builds the Authorization header at construction and keeps only that "
    "(base64 of user:password, UTF-8); the joined user:password bytes are "
    "freed unwiped: the leak scan finds them",
)
def test_httpx_basic_auth(password: memsafe.SecretStr, tmp_path: pathlib.Path) -> None:
    httpx = need("httpx")

    def header(auth: object) -> str:
        request = httpx.Request("GET", URL)
        flow = auth.sync_auth_flow(request)  # type: ignore[attr-defined]
        return str(next(flow).headers["Authorization"])

    with password.read() as v:
        auth = httpx.BasicAuth(USER, v)  # type: ignore[arg-type]
    assert header(auth) == EXPECTED_UTF8  # usable after the window closed
    assert (
        password.plaintext(lambda t: header(httpx.BasicAuth(USER, t))) == EXPECTED_UTF8
    )
    res = _leak.scan_after(
        """
        import httpx
        with password.read() as v:
            auth = httpx.BasicAuth("user", v)
        """,
        tmp_path,
    )
    _leak.copy_found(res)
