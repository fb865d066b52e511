"""The recipes of docs/recipes.md: cryptography's derive_into / decrypt_into
writing keys straight into secret memory through from_writer.

Each test runs its recipe as the document shows it (the code block is read
from docs/recipes.md): once here, checking the result against cryptography's
derive() / decrypt(); then in a child process whose memory is scanned for the
password or master key, and for the derived or decrypted keys.  Positive
control: the same block with derive() / decrypt() in place of the *_into
call (a textual substitution, asserted to apply), and the scan must find the
key it returned.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

import pytest

import memsafe

from . import _leak
from ._support import KEY, PASSWORD, need
from ._table import WRITER, row

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "recipes.md"

# cryptography versions that first have the calls the recipes use (46.0.0
# has neither, 47.0.0 both; the integration extra pins 51.0.1, the version
# these tests were written against).
KDF_INTO = "47.0"  # derive_into on every KDF
AEAD_INTO = "47.0"  # encrypt_into / decrypt_into on every AEAD

SALT = bytes(range(16))
WRAP_AAD = b"myapp data key v1"
FILE_AAD = b"secrets v1"


def recipe(name: str) -> str:
    """The code block of docs/recipes.md marked <!-- recipe: name -->."""
    if not DOC.exists():  # a copy of tests/ outside the source tree
        pytest.skip(f"no {DOC.name} beside this copy of the tests")
    text = DOC.read_text(encoding="utf-8")
    m = re.search(
        rf"<!-- recipe: {re.escape(name)} -->\n```python\n(.*?)\n```", text, re.S
    )
    assert m, f"no recipe {name!r} in {DOC.name}"
    return m.group(1) + "\n"


def swap(code: str, old: str, new: str) -> str:
    """The positive control: code with old replaced (exactly once) by new."""
    assert code.count(old) == 1, (old, code)
    return code.replace(old, new)


def need_into(what: str) -> Any:
    """cryptography with derive_into ("kdf") or decrypt_into ("aead"), or a
    skip naming the version that has it."""
    crypto = need("cryptography")
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if what == "kdf" and not hasattr(HKDF, "derive_into"):
        pytest.skip(
            f"needs cryptography >= {KDF_INTO} (KDF derive_into); "
            f"installed: {crypto.__version__}"
        )
    if what == "aead" and not hasattr(AESGCM, "decrypt_into"):
        pytest.skip(
            f"needs cryptography >= {AEAD_INTO} (AEAD encrypt_into/decrypt_into); "
            f"installed: {crypto.__version__}"
        )
    return crypto


def run_here(name: str, **given: Any) -> dict[str, Any]:
    """Run the recipe in this process with the given inputs."""
    ns: dict[str, Any] = dict(given)
    exec(compile(recipe(name), f"<recipes.md: {name}>", "exec"), ns)
    return ns


def scan_pair(
    code: str,
    control: str,
    tmp_path: pathlib.Path,
    prepare: Any,
    prelude: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Leak scans of the recipe and of its positive control."""
    (tmp_path / "r").mkdir()
    (tmp_path / "c").mkdir()
    clean = _leak.scan_each(prelude + code, tmp_path / "r", prepare)
    dirty = _leak.scan_each(prelude + control, tmp_path / "c", prepare)
    return clean, dirty


def kdf_for(name: str, salt: bytes) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if name == "password-argon2id":
        return Argon2id(
            salt=salt, length=32, iterations=3, lanes=4, memory_cost=64 * 1024
        )
    if name == "password-scrypt":
        return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    return PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=32, salt=salt, iterations=600_000
    )


SALT_PRELUDE = """
salt = open(os.path.join(workdir, "salt"), "rb").read()
"""

PASSWORD_CONTROLS = {
    "password-argon2id": (
        "memsafe.SecretBytes.from_writer(32, lambda v: kdf.derive_into(pw, v))",
        "memsafe.SecretBytes(kdf.derive(pw))",
    ),
    "password-scrypt": (
        "memsafe.SecretBytes.from_writer(\n"
        "        32, lambda v: Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)"
        ".derive_into(pw, v)\n    )",
        "memsafe.SecretBytes(Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)"
        ".derive(pw))",
    ),
    "password-pbkdf2": (
        "memsafe.SecretBytes.from_writer(32, lambda v: kdf.derive_into(pw, v))",
        "memsafe.SecretBytes(kdf.derive(pw))",
    ),
}


@row(
    "cryptography",
    "Argon2id / Scrypt / PBKDF2HMAC(...).derive_into(pw_view, v) in "
    "SecretBytes.from_writer(32, fn)",
    WRITER,
    "the derived key: nothing, the leak scan finds no copy (derive() instead: "
    "found on the heap); the password: no copy with Scrypt and PBKDF2HMAC, but "
    "Argon2id leaves one in the freed heap, with derive() as with "
    f"derive_into(); needs cryptography >= {KDF_INTO}",
)
@pytest.mark.parametrize("name", sorted(PASSWORD_CONTROLS))
def test_password_to_key_with_derive_into(
    name: str, password: memsafe.SecretStr, tmp_path: pathlib.Path
) -> None:
    need_into("kdf")
    if name == "password-argon2id":
        from cryptography.exceptions import UnsupportedAlgorithm

        try:
            kdf_for(name, SALT)
        except UnsupportedAlgorithm as e:  # an OpenSSL without Argon2
            pytest.skip(f"Argon2id unavailable: {e}")
    ns = run_here(name, password=password, salt=SALT)
    expected = kdf_for(name, SALT).derive(PASSWORD.encode())
    assert ns["key"] == expected and ns["key"].storage == memsafe.get_default_storage()

    def prepare(secret: bytes, workdir: pathlib.Path) -> dict[str, bytes]:
        (workdir / "salt").write_bytes(SALT)
        return {"derived": kdf_for(name, SALT).derive(secret)}

    code = recipe(name)
    control = swap(code, *PASSWORD_CONTROLS[name])
    clean, dirty = scan_pair(code, control, tmp_path, prepare, SALT_PRELUDE)
    _leak.no_copy(clean["derived"])
    _leak.copy_found(dirty["derived"])
    if name == "password-argon2id":
        # cryptography's Argon2id (over OpenSSL's) leaves a copy of the
        # password in the freed heap, with derive() as with derive_into()
        # (not memsafe's to wipe).
        _leak.copy_found(clean["secret"])
        _leak.copy_found(dirty["secret"])
    else:
        _leak.no_copy(clean["secret"])  # the password


def hkdf(master: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        master
    )


INFOS = (b"myapp 2026 encryption", b"myapp 2026 authentication")


@row(
    "cryptography",
    "HKDF(...).derive_into(master_view, v) in SecretBytes.from_writer(32, fn)",
    WRITER,
    "the master key: nothing, the leak scan finds no copy; the subkeys: "
    "HKDF-Expand leaves its last output block in freed memory, so the scan "
    "finds the last subkey derived (with derive() as with derive_into()) "
    "until another derivation of that size overwrites it; needs cryptography "
    f">= {KDF_INTO}",
)
def test_hkdf_subkeys_with_derive_into(
    key: memsafe.SecretBytes, tmp_path: pathlib.Path
) -> None:
    need_into("kdf")
    ns = run_here("hkdf-subkeys", master=key)
    assert ns["enc_key"] == hkdf(KEY, INFOS[0])
    assert ns["mac_key"] == hkdf(KEY, INFOS[1])

    def prepare(secret: bytes, workdir: pathlib.Path) -> dict[str, bytes]:
        return {"enc": hkdf(secret, INFOS[0]), "mac": hkdf(secret, INFOS[1])}

    code = recipe("hkdf-subkeys")
    control = swap(
        code,
        "memsafe.SecretBytes.from_writer(32, lambda v: kdf.derive_into(m, v))",
        "memsafe.SecretBytes(kdf.derive(m))",
    )
    clean, dirty = scan_pair(code, control, tmp_path, prepare, "master = key\n")
    _leak.no_copy(clean["secret"])  # the master key
    # cryptography's HKDF-Expand leaves its last output block in freed
    # memory (the next derivation of that size overwrites it): the last
    # subkey made is found, with derive() as with derive_into().
    _leak.copy_found(clean["mac"])
    _leak.copy_found(dirty["mac"])


def aesgcm_seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


@row(
    "cryptography",
    "AESGCM(kek_view).decrypt_into(nonce, wrapped, aad, v) in "
    "SecretBytes.from_writer(n, fn); encrypt_into(nonce, data_view, aad, out)",
    WRITER,
    "nothing once the AESGCM is freed (it holds the KEK's key schedule while "
    "it lives, see AESGCM(v) above): the leak scan finds neither the KEK nor "
    f"the data key (decrypt() instead: found); needs cryptography >= {AEAD_INTO}",
)
def test_unwrap_and_wrap_a_data_key_with_decrypt_into(
    key: memsafe.SecretBytes, tmp_path: pathlib.Path
) -> None:
    need_into("aead")
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = os.urandom(32)
    wrapped = aesgcm_seal(KEY, data, WRAP_AAD)
    ns = run_here("wrap-unwrap", kek=key, wrapped=wrapped)
    assert ns["data_key"] == data
    rewrapped = ns["rewrapped"]
    assert AESGCM(KEY).decrypt(rewrapped[:12], rewrapped[12:], WRAP_AAD) == data
    assert rewrapped[:12] != wrapped[:12]
    assert ns["unwrap"](key, rewrapped) == data
    # A wrong KEK: InvalidTag propagates, nothing is kept.
    before = memsafe._memsafe._stats()
    with pytest.raises(InvalidTag):
        ns["unwrap"](memsafe.SecretBytes(bytes(32)), wrapped)
    after = memsafe._memsafe._stats()
    assert (after["mappings"], after["cipher_slots"], after["window_slots"]) == (
        before["mappings"],
        before["cipher_slots"],
        before["window_slots"],
    )

    def prepare(secret: bytes, workdir: pathlib.Path) -> dict[str, bytes]:
        (workdir / "wrapped").write_bytes(aesgcm_seal(secret, data, WRAP_AAD))
        return {"data_key": data}

    prelude = (
        'kek = key\nwrapped = open(os.path.join(workdir, "wrapped"), "rb").read()\n'
    )
    code = recipe("wrap-unwrap")
    control = swap(
        code,
        "memsafe.SecretBytes.from_writer(\n"
        "            len(body) - 16, lambda v: aead.decrypt_into(nonce, body, AAD, v)\n"
        "        )",
        "memsafe.SecretBytes(aead.decrypt(nonce, body, AAD))",
    )
    # The control stops after the unwrap: what wrap() allocates next may
    # reuse the freed bytes decrypt() returned.  (The recipe itself wraps
    # the data key again: the scan covers encrypt_into's input too.)
    control = control.split("rewrapped =")[0]
    clean, dirty = scan_pair(code, control, tmp_path, prepare, prelude)
    _leak.no_copy(clean["secret"])  # the KEK
    _leak.no_copy(clean["data_key"])
    _leak.copy_found(dirty["data_key"])


FILE_NAMES = ("db_password", "api_token", "signing_key")


@row(
    "cryptography",
    "AESGCM(file_key_view).decrypt_into(nonce, body, aad, v) of a secrets "
    "file, split into SecretStr.from_writer values",
    WRITER,
    "nothing: no bytes or str of the plaintext is made; the leak scan finds "
    "neither the file key nor any value (decrypt() instead: found); needs "
    f"cryptography >= {AEAD_INTO}",
)
def test_secrets_file_with_decrypt_into(
    key: memsafe.SecretBytes, tmp_path: pathlib.Path
) -> None:
    need_into("aead")
    import test_leak_scan as ls
    from cryptography.exceptions import InvalidTag

    values = {n: ls.text_secret(32) for n in FILE_NAMES}
    plain = b"".join(n.encode() + b"=" + v + b"\n" for n, v in values.items())
    path = tmp_path / "secrets.bin"
    path.write_bytes(aesgcm_seal(KEY, plain, FILE_AAD))
    ns = run_here("secrets-file", path=str(path), file_key=key)
    got = ns["secrets"]
    assert sorted(got) == sorted(FILE_NAMES)
    for n, v in values.items():
        assert type(got[n]) is memsafe.SecretStr and got[n] == v.decode()
    with pytest.raises(InvalidTag):
        ns["read_secrets"](str(path), memsafe.SecretBytes(bytes(32)))

    def prepare(secret: bytes, workdir: pathlib.Path) -> dict[str, bytes]:
        (workdir / "secrets.bin").write_bytes(aesgcm_seal(secret, plain, FILE_AAD))
        return dict(values)

    prelude = 'file_key = key\npath = os.path.join(workdir, "secrets.bin")\n'
    code = recipe("secrets-file")
    control = swap(
        code,
        "memsafe.SecretBytes.from_writer(\n"
        "            len(body) - 16, lambda v: aead.decrypt_into(nonce, body, "
        'b"secrets v1", v)\n        )',
        'memsafe.SecretBytes(aead.decrypt(nonce, body, b"secrets v1"))',
    )
    clean, dirty = scan_pair(code, control, tmp_path, prepare, prelude)
    for name in ("secret", *FILE_NAMES):
        _leak.no_copy(clean[name])
    for name in FILE_NAMES:
        _leak.copy_found(dirty[name])
