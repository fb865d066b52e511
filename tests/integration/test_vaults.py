"""Secret stores: hvac (against an in-process fake Vault behind a requests
transport adapter) and keyring (an in-process backend)."""

from __future__ import annotations

import json
from typing import Any

import memsafe

from ._support import kept, need
from ._table import DONT, INGEST, PLAINTEXT, row

VAULT = "http://vault.invalid:8200"


def fake_vault() -> tuple[Any, list[Any]]:
    """A requests Session whose every request is answered in-process."""
    requests = need("requests")
    seen: list[Any] = []

    class FakeVault(requests.adapters.BaseAdapter):  # type: ignore[misc]
        def send(self, request: Any, **kwargs: Any) -> Any:
            seen.append(request)
            response = requests.Response()
            response.status_code = 200
            response.url = request.url
            response.request = request
            response.headers["Content-Type"] = "application/json"
            response._content = json.dumps(
                {"auth": {"client_token": "s.issued-token"}, "data": {"id": "x"}}
            ).encode()
            return response

        def close(self) -> None:
            pass

    session = requests.Session()
    session.mount("http://", FakeVault())
    return session, seen


@row(
    "hvac",
    "Client(url, token=t)",
    DONT,
    "the client keeps the token and sends it with every request "
    "(X-Vault-Token): plaintext() leaves it intact with PlaintextWarning",
)
def test_hvac_client_keeps_the_token() -> None:
    hvac = need("hvac")
    session, seen = fake_vault()
    token = memsafe.SecretStr("s.static-token")
    with kept("str"):
        client = token.plaintext(
            lambda t: hvac.Client(url=VAULT, token=t, session=session)
        )
    assert client.is_authenticated()
    assert seen[-1].headers["X-Vault-Token"] == "s.static-token"


@row(
    "hvac",
    "client.auth.approle.login(role_id=..., secret_id=t)",
    PLAINTEXT,
    "the secret_id goes into the JSON request body (a copy) and is not "
    "kept; the client then keeps the token Vault issued",
)
def test_hvac_approle_login() -> None:
    hvac = need("hvac")
    session, seen = fake_vault()
    client = hvac.Client(url=VAULT, session=session)
    secret_id = memsafe.SecretStr("approle-secret-id")
    secret_id.plaintext(lambda t: client.auth.approle.login(role_id="r", secret_id=t))
    assert json.loads(seen[-1].body) == {
        "role_id": "r",
        "secret_id": "approle-secret-id",
    }
    assert client.token == "s.issued-token"


def memory_keyring() -> Any:
    keyring = need("keyring")
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):  # type: ignore[misc]
        """Stores UTF-8 bytes, as real backends hand over their own copy."""

        priority = 1

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], bytes] = {}

        def get_password(self, service: str, username: str) -> str | None:
            value = self.items.get((service, username))
            return None if value is None else value.decode()

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password.encode()

        def delete_password(self, service: str, username: str) -> None:
            del self.items[(service, username)]

    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    return keyring, backend, previous


@row(
    "keyring",
    "keyring.set_password(service, user, t)",
    PLAINTEXT,
    "the backend receives the str and stores or sends its own copy "
    "(D-Bus, a file, ...); a backend that kept the str itself would trigger "
    "PlaintextWarning",
)
def test_keyring_set_password(password: memsafe.SecretStr) -> None:
    keyring, backend, previous = memory_keyring()
    try:
        password.plaintext(lambda t: keyring.set_password("svc", "me", t))
        assert backend.items[("svc", "me")] == password.reveal().encode()
    finally:
        keyring.set_keyring(previous)


@row(
    "keyring",
    "SecretStr(keyring.get_password(service, user))",
    INGEST,
    "returns a str made by the backend: wrap it at once and drop it; that str "
    "(and the backend's copies) cannot be wiped",
)
def test_keyring_get_password(password: memsafe.SecretStr) -> None:
    keyring, backend, previous = memory_keyring()
    try:
        backend.items[("svc", "me")] = password.reveal().encode()
        secret = memsafe.SecretStr(keyring.get_password("svc", "me"))
        assert secret == password
    finally:
        keyring.set_keyring(previous)
