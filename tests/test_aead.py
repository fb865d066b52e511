"""The core's ChaCha20-Poly1305 (src/core/chacha20poly1305.c) from Python.

Through the test hooks ``memsafe._memsafe._chacha20poly1305_seal`` and
``_chacha20poly1305_open``, against:

- RFC 8439's AEAD vectors (2.8.2, A.5);
- every ChaCha20Poly1305 vector file of the ``cryptography-vectors``
  package (``ciphers/ChaCha20Poly1305/*.txt``: BoringSSL's and OpenSSL's),
  sealing every vector and, for the ones marked as failures, checking that
  opening raises;
- every vector of Project Wycheproof's ChaCha20-Poly1305 file (shipped in
  ``tests/vectors/wycheproof/``), the vectors with nonces the core does not
  take (not 96 bits) checked to be refused;
- ``cryptography``'s ChaCha20Poly1305 over random keys, nonces, associated
  data and messages of 0 to 5000 bytes (hypothesis), including tampered
  tags, ciphertexts, associated data and nonces, which must fail in both.

The C tests (tests/c/test_aead.c, run by scripts/aead-check) cover the
RFC's ChaCha20 and Poly1305 vectors, the block-counter limit and the
constant-time check; this file is the cross-implementation check.
Without cryptography or cryptography-vectors (free-threaded builds may
lack wheels) those parts skip.
"""

from __future__ import annotations

import array
import hashlib
import importlib.resources
import json
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsafe import _memsafe

seal = _memsafe._chacha20poly1305_seal
open_ = _memsafe._chacha20poly1305_open

TAG = 16

pytestmark = pytest.mark.storage("any")  # engine-independent


def _h(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", " "))


# ---- RFC 8439 ---------------------------------------------------------------

SUNSCREEN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only "
    b"one tip for the future, sunscreen would be it."
)
DRAFTS = (
    b"Internet-Drafts are draft documents valid for a maximum of six months "
    b"and may be updated, replaced, or obsoleted by other documents at any "
    b"time. It is inappropriate to use Internet-Drafts as reference "
    b"material or to cite them other than as /\xe2\x80\x9cwork in "
    b"progress./\xe2\x80\x9d"
)

RFC_VECTORS = {
    "2.8.2": dict(
        key=bytes(range(0x80, 0xA0)),
        nonce=_h("07 00 00 00 40 41 42 43 44 45 46 47"),
        ad=_h("50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7"),
        pt=SUNSCREEN,
        ct=_h(
            "d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2"
            "a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6"
            "3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b"
            "1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36"
            "92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58"
            "fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc"
            "3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b"
            "61 16"
        ),
        tag=_h("1a:e1:0b:59:4f:09:e2:6a:7e:90:2e:cb:d0:60:06:91"),
    ),
    "A.5": dict(
        key=_h(
            "1c 92 40 a5 eb 55 d3 8a f3 33 88 86 04 f6 b5 f0"
            "47 39 17 c1 40 2b 80 09 9d ca 5c bc 20 70 75 c0"
        ),
        nonce=_h("00 00 00 00 01 02 03 04 05 06 07 08"),
        ad=_h("f3 33 88 86 00 00 00 00 00 00 4e 91"),
        pt=DRAFTS,
        ct=_h(
            "64 a0 86 15 75 86 1a f4 60 f0 62 c7 9b e6 43 bd"
            "5e 80 5c fd 34 5c f3 89 f1 08 67 0a c7 6c 8c b2"
            "4c 6c fc 18 75 5d 43 ee a0 9e e9 4e 38 2d 26 b0"
            "bd b7 b7 3c 32 1b 01 00 d4 f0 3b 7f 35 58 94 cf"
            "33 2f 83 0e 71 0b 97 ce 98 c8 a8 4a bd 0b 94 81"
            "14 ad 17 6e 00 8d 33 bd 60 f9 82 b1 ff 37 c8 55"
            "97 97 a0 6e f4 f0 ef 61 c1 86 32 4e 2b 35 06 38"
            "36 06 90 7b 6a 7c 02 b0 f9 f6 15 7b 53 c8 67 e4"
            "b9 16 6c 76 7b 80 4d 46 a5 9b 52 16 cd e7 a4 e9"
            "90 40 c5 a4 04 33 22 5e e2 82 a1 b0 a0 6c 52 3e"
            "af 45 34 d7 f8 3f a1 15 5b 00 47 71 8c bc 54 6a"
            "0d 07 2b 04 b3 56 4e ea 1b 42 22 73 f5 48 27 1a"
            "0b b2 31 60 53 fa 76 99 19 55 eb d6 31 59 43 4e"
            "ce bb 4e 46 6d ae 5a 10 73 a6 72 76 27 09 7a 10"
            "49 e6 17 d9 1d 36 10 94 fa 68 f0 ff 77 98 71 30"
            "30 5b ea ba 2e da 04 df 99 7b 71 4d 6c 6f 2c 29"
            "a6 ad 5c b4 02 2b 02 70 9b"
        ),
        tag=_h("ee ad 9d 67 89 0c bb 22 39 23 36 fe a1 85 1f 38"),
    ),
}


@pytest.mark.parametrize("name", sorted(RFC_VECTORS))
def test_rfc8439_vector(name: str) -> None:
    v = RFC_VECTORS[name]
    assert len(v["ct"]) == len(v["pt"])
    assert seal(v["key"], v["nonce"], v["ad"], v["pt"]) == v["ct"] + v["tag"]
    assert open_(v["key"], v["nonce"], v["ad"], v["ct"] + v["tag"]) == v["pt"]


@pytest.mark.parametrize("name", sorted(RFC_VECTORS))
def test_rfc8439_vector_tampered_fails(name: str) -> None:
    v = RFC_VECTORS[name]
    data = bytearray(v["ct"] + v["tag"])
    for i in (0, len(v["ct"]) - 1, len(v["ct"]), len(data) - 1):
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(ValueError, match="authentication failed"):
            open_(v["key"], v["nonce"], v["ad"], bad)
    with pytest.raises(ValueError):
        open_(v["key"], v["nonce"], v["ad"][:-1], data)
    with pytest.raises(ValueError):
        open_(v["key"], v["nonce"][::-1], v["ad"], data)


# ---- the hooks' interface -------------------------------------------------------

KEY = bytes(range(32))
NONCE = bytes(range(12))


def test_result_types_and_lengths() -> None:
    for n in (0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000):
        pt = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
        out = seal(KEY, NONCE, b"ad", pt)
        assert type(out) is bytes and len(out) == n + TAG
        back = open_(KEY, NONCE, b"ad", out)
        assert type(back) is bytes and back == pt


def test_empty_message_and_ad() -> None:
    out = seal(KEY, NONCE, b"", b"")
    assert len(out) == TAG
    assert open_(KEY, NONCE, b"", out) == b""
    with pytest.raises(ValueError):
        open_(KEY, NONCE, b"x", out)


def test_any_bytes_like() -> None:
    pt = b"attack at dawn" * 10
    want = seal(KEY, NONCE, b"hdr", pt)
    arr = array.array("B", pt)
    assert seal(bytearray(KEY), memoryview(NONCE), b"hdr", arr) == want
    assert seal(memoryview(KEY), NONCE, bytearray(b"hdr"), memoryview(pt)) == want
    # A view of part of a buffer, and a multi-byte item format.
    big = b"\0" * 5 + pt + b"\0" * 3
    assert seal(KEY, NONCE, b"hdr", memoryview(big)[5:-3]) == want
    assert open_(KEY, NONCE, b"hdr", array.array("B", want)) == pt
    words = array.array("I")
    words.frombytes(pt)  # 140 bytes: 35 four-byte items, one flat buffer
    assert seal(KEY, NONCE, b"hdr", words) == want


@pytest.mark.parametrize("bad", ["k" * 32, 32, None, [0] * 32])
def test_wrong_types_raise_typeerror(bad: Any) -> None:
    for pos in range(4):
        args: list[Any] = [KEY, NONCE, b"", b"x" * TAG]
        args[pos] = bad
        with pytest.raises(TypeError):
            seal(*args)
        with pytest.raises(TypeError):
            open_(*args)


def test_wrong_argument_count_raises_typeerror() -> None:
    with pytest.raises(TypeError):
        seal(KEY, NONCE, b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        open_(KEY, NONCE, b"", b"", b"")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        seal(key=KEY, nonce=NONCE, ad=b"", plaintext=b"")  # type: ignore[call-arg]


@pytest.mark.parametrize("n", [0, 16, 31, 33, 64])
def test_wrong_key_length_raises_valueerror(n: int) -> None:
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        seal(b"k" * n, NONCE, b"", b"")
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        open_(b"k" * n, NONCE, b"", b"t" * TAG)


@pytest.mark.parametrize("n", [0, 8, 11, 13, 24])
def test_wrong_nonce_length_raises_valueerror(n: int) -> None:
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        seal(KEY, b"n" * n, b"", b"")
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        open_(KEY, b"n" * n, b"", b"t" * TAG)


@pytest.mark.parametrize("n", [0, 1, 15])
def test_data_shorter_than_tag_raises_valueerror(n: int) -> None:
    with pytest.raises(ValueError, match="16-byte tag"):
        open_(KEY, NONCE, b"", b"\0" * n)


def test_long_message_round_trip() -> None:
    # Past the hooks' GIL-release threshold and many 4-block strides.
    pt = bytes(range(256)) * 4099 + b"tail"
    out = seal(KEY, NONCE, b"ad" * 100, pt)
    assert open_(KEY, NONCE, b"ad" * 100, out) == pt
    bad = bytearray(out)
    bad[len(pt) // 2] ^= 0x80
    with pytest.raises(ValueError):
        open_(KEY, NONCE, b"ad" * 100, bad)


def test_threads_agree() -> None:
    msgs = [bytes([i]) * (i * 1000 + 70000) for i in range(8)]
    want = [seal(KEY, NONCE, b"t", m) for m in msgs]
    got: dict[int, bytes] = {}

    def work(i: int) -> None:
        for _ in range(3):
            ct = seal(KEY, NONCE, b"t", msgs[i])
            assert open_(KEY, NONCE, b"t", ct) == msgs[i]
            got[i] = ct

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(8)] == want


# ---- cryptography-vectors ----------------------------------------------------

# Field names in the two formats (BoringSSL's and OpenSSL's, both in NIST
# "NAME = value" style): which one means what.
FIELDS = {
    "KEY": "key",
    "NONCE": "nonce",
    "IV": "nonce",
    "AD": "ad",
    "AAD": "ad",
    "IN": "pt",
    "PLAINTEXT": "pt",
    "CT": "ct",
    "CIPHERTEXT": "ct",
    "TAG": "tag",
    "RESULT": "result",
}


def _value(raw: str) -> bytes | str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].encode("ascii")  # BoringSSL's quoted text
    if raw and not all(c in "0123456789abcdefABCDEF" for c in raw):
        return raw  # a word, e.g. Result = CIPHERFINAL_ERROR
    return bytes.fromhex(raw)


def parse_vector_file(text: str) -> Iterator[dict[str, Any]]:
    """Yield one dict (key, nonce, ad, pt, ct, tag, fail, count) per
    vector; vectors start at a COUNT line."""
    current: dict[str, Any] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, raw = line.partition("=")
        name = name.strip().upper()
        assert sep, f"line {lineno}: no '=': {line!r}"
        if name == "COUNT":
            if current is not None:
                yield current
            current = {"count": int(raw)}
            continue
        assert current is not None, f"line {lineno}: field before COUNT"
        assert name in FIELDS, f"line {lineno}: unknown field {name}"
        current[FIELDS[name]] = _value(raw)
    if current is not None:
        yield current


def _vector_files() -> list[Any]:
    try:
        import cryptography_vectors
    except ImportError:
        return []
    folder = importlib.resources.files(cryptography_vectors)
    folder = folder / "ciphers" / "ChaCha20Poly1305"
    return sorted(
        (f for f in folder.iterdir() if f.name.endswith(".txt")),
        key=lambda f: f.name,
    )


def _vector_params() -> list[Any]:
    params = []
    for f in _vector_files():
        for v in parse_vector_file(f.read_text(encoding="ascii")):
            params.append(pytest.param(v, id=f"{f.name}-{v['count']}"))
    if not params:
        params.append(
            pytest.param(
                None,
                marks=pytest.mark.skip(reason="cryptography-vectors not installed"),
                id="cryptography-vectors-missing",
            )
        )
    return params


def test_vector_files_are_there_and_parse() -> None:
    pytest.importorskip("cryptography_vectors")
    files = _vector_files()
    names = {f.name for f in files}
    assert {"boringssl.txt", "openssl.txt"} <= names, names
    counts = {}
    for f in files:
        vectors = list(parse_vector_file(f.read_text(encoding="ascii")))
        counts[f.name] = len(vectors)
        for v in vectors:
            assert {"key", "nonce", "ad", "pt", "ct", "tag"} <= v.keys(), v
            assert isinstance(v.get("result", "CIPHERFINAL_OK"), str)
            assert v.get("result") in (None, "CIPHERFINAL_ERROR"), v
    assert counts["boringssl.txt"] >= 60 and counts["openssl.txt"] >= 5, counts
    # At least one failure case is exercised (OpenSSL's bad tag).
    assert any(
        v.get("result") == "CIPHERFINAL_ERROR"
        for f in files
        for v in parse_vector_file(f.read_text(encoding="ascii"))
    )


@pytest.mark.parametrize("v", _vector_params())
def test_cryptography_vector(v: dict[str, Any]) -> None:
    key, nonce, ad, pt, ct, tag = (
        v[k] for k in ("key", "nonce", "ad", "pt", "ct", "tag")
    )
    assert len(key) == 32 and len(nonce) == 12 and len(tag) == TAG
    if v.get("result") == "CIPHERFINAL_ERROR":
        with pytest.raises(ValueError, match="authentication failed"):
            open_(key, nonce, ad, ct + tag)
        # The same plaintext sealed gives a different (the right) tag.
        assert seal(key, nonce, ad, pt)[:-TAG] == ct
        assert seal(key, nonce, ad, pt)[-TAG:] != tag
    else:
        assert seal(key, nonce, ad, pt) == ct + tag
        assert open_(key, nonce, ad, ct + tag) == pt


# ---- differential: cryptography's ChaCha20Poly1305 -----------------------------

BOUNDARIES = [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 255, 256, 257, 511, 512, 513]

keys = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=12, max_size=12)
ads = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([0, 1, 15, 16, 17, 31, 32, 33]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    ),
)
messages = st.one_of(
    st.binary(max_size=5000),
    st.sampled_from([*BOUNDARIES, 4095, 4096, 4097, 5000]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    ),
    st.integers(min_value=0, max_value=5000).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    ),
)

differential = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _reference() -> Any:
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    return aead.ChaCha20Poly1305


def _invalid_tag() -> type[Exception]:
    exceptions = pytest.importorskip("cryptography.exceptions")
    return exceptions.InvalidTag  # type: ignore[no-any-return]


@differential
@given(key=keys, nonce=nonces, ad=ads, pt=messages)
def test_matches_cryptography(key: bytes, nonce: bytes, ad: bytes, pt: bytes) -> None:
    ref = _reference()(key)
    ours = seal(key, nonce, ad, pt)
    assert ours == ref.encrypt(nonce, pt, ad)
    assert open_(key, nonce, ad, ours) == pt
    assert ref.decrypt(nonce, ours, ad) == pt


@differential
@given(
    key=keys,
    nonce=nonces,
    ad=ads,
    pt=messages,
    where=st.sampled_from(["tag", "ciphertext", "ad", "nonce", "truncate"]),
    pick=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_tampering_fails_in_both(
    key: bytes,
    nonce: bytes,
    ad: bytes,
    pt: bytes,
    where: str,
    pick: int,
    bit: int,
) -> None:
    ref = _reference()(key)
    invalid_tag = _invalid_tag()
    data = bytearray(seal(key, nonce, ad, pt))
    bad_ad, bad_nonce = bytearray(ad), bytearray(nonce)
    if where == "tag":
        data[len(pt) + pick % TAG] ^= 1 << bit
    elif where == "ciphertext" and pt:
        data[pick % len(pt)] ^= 1 << bit
    elif where == "ad" and ad:
        bad_ad[pick % len(ad)] ^= 1 << bit
    elif where == "ad":
        bad_ad = bytearray([bit])  # empty AD replaced by one byte
    elif where == "nonce":
        bad_nonce[pick % 12] ^= 1 << bit
    elif where == "truncate":
        del data[pick % len(data)]
    else:  # ciphertext of an empty message: there is none, alter the tag
        data[pick % TAG] ^= 1 << bit
    with pytest.raises(ValueError):
        open_(key, bytes(bad_nonce), bytes(bad_ad), bytes(data))
    with pytest.raises(invalid_tag):
        ref.decrypt(bytes(bad_nonce), bytes(data), bytes(bad_ad))


@differential
@given(key=keys, other=keys, nonce=nonces, ad=ads, pt=messages)
def test_wrong_key_fails_in_both(
    key: bytes, other: bytes, nonce: bytes, ad: bytes, pt: bytes
) -> None:
    if key == other:
        return
    data = seal(key, nonce, ad, pt)
    with pytest.raises(ValueError):
        open_(other, nonce, ad, data)
    with pytest.raises(_invalid_tag()):
        _reference()(other).decrypt(nonce, data, ad)


def test_one_mebibyte_matches_cryptography() -> None:
    ref = _reference()(KEY)
    pt = bytes(range(251)) * 4200  # not a multiple of 64 or 256
    ad = b"slot:42|len:1054200"
    ours = seal(KEY, NONCE, ad, pt)
    assert ours == ref.encrypt(NONCE, pt, ad)
    assert open_(KEY, NONCE, ad, ours) == pt


# ---- Wycheproof --------------------------------------------------------------
# tests/vectors/wycheproof/chacha20_poly1305_test.json: every vector of
# Project Wycheproof's file (source, commit and license in the README
# beside it).  The core takes 96-bit nonces only: the vectors with other
# nonce sizes must be refused (ValueError), not skipped.

WYCHEPROOF = (
    pathlib.Path(__file__).resolve().parent
    / "vectors"
    / "wycheproof"
    / "chacha20_poly1305_test.json"
)
WYCHEPROOF_SHA256 = "fe61d25f90e1bde4461d00eafe61049e5f29bd999f36b766df9cda90906ad53d"
WYCHEPROOF_COUNT = 325


def _wycheproof() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(WYCHEPROOF.read_bytes())
    return data


def _wycheproof_params() -> list[Any]:
    params = []
    for group in _wycheproof()["testGroups"]:
        for t in group["tests"]:
            v = dict(t, ivSize=group["ivSize"], keySize=group["keySize"])
            v["tagSize"] = group["tagSize"]
            flags = "-".join(t["flags"])
            params.append(pytest.param(v, id=f"tc{t['tcId']}-{t['result']}-{flags}"))
    return params


def test_wycheproof_file_is_the_shipped_one_and_complete() -> None:
    assert hashlib.sha256(WYCHEPROOF.read_bytes()).hexdigest() == WYCHEPROOF_SHA256
    data = _wycheproof()
    assert data["algorithm"] == "CHACHA20-POLY1305"
    tests = [t for g in data["testGroups"] for t in g["tests"]]
    assert len(tests) == data["numberOfTests"] == WYCHEPROOF_COUNT
    assert len({t["tcId"] for t in tests}) == WYCHEPROOF_COUNT
    assert all(g["type"] == "AeadTest" for g in data["testGroups"])
    # Every kind is there: valid, modified tags, refused nonce sizes.
    results = {(t["result"], f) for t in tests for f in t["flags"]}
    assert {("valid", "Ktv"), ("invalid", "ModifiedTag")} <= results
    assert ("invalid", "InvalidNonceSize") in results
    assert {t["result"] for t in tests} == {"valid", "invalid"}
    assert len(_wycheproof_params()) == WYCHEPROOF_COUNT


@pytest.mark.parametrize("v", _wycheproof_params())
def test_wycheproof_vector(v: dict[str, Any]) -> None:
    key, nonce, ad, msg, ct, tag = (
        bytes.fromhex(v[k]) for k in ("key", "iv", "aad", "msg", "ct", "tag")
    )
    assert v["keySize"] == 256 and v["tagSize"] == 128 and len(key) == 32
    assert len(nonce) * 8 == v["ivSize"]
    if len(nonce) != 12:
        # Only 96-bit nonces (RFC 8439); every other size is refused.  (These
        # vectors carry no ciphertext: open gets a tag-sized input, so that
        # the nonce is what it refuses.)
        assert v["result"] == "invalid" and "InvalidNonceSize" in v["flags"], v
        with pytest.raises(ValueError, match="nonce must be 12 bytes"):
            seal(key, nonce, ad, msg)
        with pytest.raises(ValueError, match="nonce must be 12 bytes"):
            open_(key, nonce, ad, (ct + tag) or bytes(TAG))
        return
    assert len(tag) == TAG
    if v["result"] == "valid":
        assert seal(key, nonce, ad, msg) == ct + tag
        assert open_(key, nonce, ad, ct + tag) == msg
    else:
        assert v["result"] == "invalid", v
        with pytest.raises(ValueError, match="authentication failed"):
            open_(key, nonce, ad, ct + tag)
        # The ciphertext is right, the tag is not: sealing gives another.
        sealed = seal(key, nonce, ad, msg)
        assert sealed[:-TAG] == ct and sealed[-TAG:] != tag
