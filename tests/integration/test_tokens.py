"""Tokens and signed data: PyJWT, itsdangerous."""

from __future__ import annotations

from unittest import mock

import pytest

import memsafe

from ._support import KEY, kept, need
from ._table import PLAINTEXT, row

CLAIMS = {"sub": "user-1", "admin": False}


@row(
    "PyJWT",
    "jwt.encode(claims, key, algorithm='HS256'), jwt.decode(token, key, "
    "algorithms=['HS256'])",
    PLAINTEXT,
    "refuses a view (str or bytes); its HMAC key checks pass the key to "
    "json.loads, which decodes it into a str that is freed unwiped",
)
def test_pyjwt_hmac(key: memsafe.SecretBytes) -> None:
    jwt = need("jwt")
    import json

    with key.read() as v, pytest.raises(TypeError):
        jwt.encode(CLAIMS, v, algorithm="HS256")
    token = key.plaintext(lambda b: jwt.encode(CLAIMS, b, algorithm="HS256"))
    assert token == jwt.encode(CLAIMS, KEY, algorithm="HS256")
    assert key.plaintext(lambda b: jwt.decode(token, b, algorithms=["HS256"])) == CLAIMS
    with pytest.raises(jwt.InvalidSignatureError):
        memsafe.SecretBytes(b"w" * 32).plaintext(
            lambda b: jwt.decode(token, b, algorithms=["HS256"])
        )
    # Where the copy comes from: the key itself goes to json.loads.
    seen: list[bool] = []  # not the object itself: that would keep it
    loads = json.loads

    def spy(s: object, *args: object, **kwargs: object) -> object:
        seen.append(s == KEY)
        return loads(s, *args, **kwargs)  # type: ignore[arg-type]

    with mock.patch("json.loads", spy):
        key.plaintext(lambda b: jwt.encode(CLAIMS, b, algorithm="HS256"))
    assert True in seen


@row(
    "itsdangerous",
    "URLSafeTimedSerializer(key).dumps(obj) / .loads(s), made inside the call",
    PLAINTEXT,
    "refuses a view (TypeError); the serializer keeps the key: make it inside "
    "the call and drop it (one kept for later leaves the plaintext intact, "
    "PlaintextWarning); the derived HMAC keys it computes are bytes left on "
    "the heap",
)
def test_itsdangerous(key: memsafe.SecretBytes) -> None:
    itsdangerous = need("itsdangerous")
    make = itsdangerous.URLSafeTimedSerializer
    with key.read() as v, pytest.raises(TypeError):
        make(v).dumps(CLAIMS)
    signed = key.plaintext(lambda b: make(b).dumps(CLAIMS))
    assert make(KEY).loads(signed) == CLAIMS
    assert key.plaintext(lambda b: make(b).loads(signed, max_age=60)) == CLAIMS
    with kept("bytes"):
        serializer = key.plaintext(make)
    assert serializer.loads(signed) == CLAIMS
