"""Purge at every step of the operations it used to corrupt: deterministic.

Needs an extension built with ``-DMEMSAFE_FAULT_INJECTION`` (scripts/coverage
and scripts/sanitize build one; skipped otherwise).  Its test hook
``_memsafe._purge_at(point, n)`` makes the n-th time the core reaches a named
point run a purge right there, on that thread, as a signal would:

- ``create``: a secret's memory was made, before it is filled;
- ``seal``: a nonce was taken, before the key is rebuilt (the review saw a
  seal under the all-zero-halves key, and a nonce reused under the next key);
- ``seal-key`` / ``open-key``: the key was rebuilt, before it is used;
- ``close``: before a window's canary check (the false corruption abort);
- ``window``: a window's memory was made accessible, before it is handed out;
- ``purge``: inside a purge, after it claimed a mapping (a purge of a purge);
- ``protect``: an owner claimed its mapping and recorded the protection it is
  about to apply, before the mprotect (a purge there used to write into
  pages still no-access: a segfault, found by the signal-flood test).

After each schedule the child checks the invariants, from its own memory:
every secret raises the purged ValueError or holds exactly its content; no
live sealed slot opens under the public key (both key halves wiped); no two
live sealed slots carry the same nonce; and the process did not abort.
"""

from __future__ import annotations

import functools
import textwrap

import pytest
from helpers import linux_only, ok, run_child

pytestmark = linux_only

POINTS = (
    "create",
    "seal",
    "seal-key",
    "open-key",
    "close",
    "window",
    "purge",
    "protect",
)


@functools.lru_cache(maxsize=1)
def _built() -> bool:
    r = run_child(
        "import memsafe; print(memsafe._memsafe._features()['fault_injection'])"
    )
    return r.returncode == 0 and r.stdout.strip() == b"1"


@pytest.fixture(autouse=True)
def needs_fault_injection() -> None:
    if not _built():
        pytest.skip("extension built without -DMEMSAFE_FAULT_INJECTION")


PRELUDE = r'''
import os, sys, memsafe
from memsafe import _memsafe
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

# Both halves wiped: key = 0 XOR H(0), a constant anyone computes.
PUBLIC = Cipher(algorithms.ChaCha20(bytes(32), bytes(16)), None).encryptor(
    ).update(bytes(32))
LIVE = []      # (secret, expected bytes)
BAD = []

def mem(addr, n):
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        return os.pread(fd, n, addr)
    finally:
        os.close(fd)

def purged(e):
    return isinstance(e, ValueError) and "purged" in str(e)

def attempt(fn):
    try:
        fn()
        return "ok"
    except ValueError as e:
        if not purged(e):
            BAD.append(repr(e))
        return "purged"

def make(kind, data, storage):
    s = kind(data, storage=storage)
    LIVE.append((s, bytes(data)))
    return s

def check():
    nonces = []
    for s, want in LIVE:
        try:
            got = s.read(bytes)
        except ValueError as e:
            if not purged(e):
                BAD.append(repr(e))
            continue
        if got != want:
            BAD.append("content: %r != %r" % (got[:6], want[:6]))
        info = s._region_info()
        if info["storage"] == "sealed":
            raw = mem(info["slot"], info["slot_len"])
            nonce, ct = raw[:12], raw[12:]
            nonces.append(nonce)
            ad = info["slot"].to_bytes(8, "little") + info["len"].to_bytes(
                8, "little")
            try:
                _memsafe._chacha20poly1305_open(PUBLIC, nonce, ad, ct)
                BAD.append("a live slot opens under the public key")
            except ValueError:
                pass
    if len(set(nonces)) != len(nonces):
        BAD.append("two live slots share a nonce")
    return len(nonces)
'''


def interleave(code: str) -> list[str]:
    out = ok(run_child(PRELUDE + textwrap.dedent(code) + '\nprint("BAD", BAD)\n'))
    lines = out.splitlines()
    assert lines[-1] == "BAD []", out
    return lines[:-1]


def test_purge_when_a_secret_was_just_made(storage: str) -> None:
    """A random key made while a purge starts is purged, never a usable
    key of zeros."""
    out = interleave(
        f"""
        _memsafe._purge_at("create", 1)
        def create():
            r = memsafe.SecretBytes.random(32, storage="{storage}")
            if r.read(bytes) == bytes(32):
                BAD.append("a usable random key of zeros")
        print(attempt(create))
        make(memsafe.SecretBytes, b"after" * 8, "{storage}")
        print(check() >= 0)
        """
    )
    assert out == ["purged", "True"], out


@pytest.mark.storage("sealed")
@pytest.mark.parametrize("point", ["seal", "seal-key"])
def test_purge_inside_a_seal_never_seals_under_a_public_key(point: str) -> None:
    """The review's black-box finding (once in 2,900 signals), made
    deterministic: a purge between the nonce and the key rebuild, or between
    the rebuild and the seal, of a write window's close and of a creation."""
    out = interleave(
        f"""
        for i in range(3):
            make(memsafe.SecretBytes, os.urandom(32), "sealed")
        m = memsafe.MemSafe(b"a" * 32, storage="sealed")
        _memsafe._purge_at("{point}", 1)
        def write():
            with m.write() as v:
                v[0] = 66
        print(attempt(write))
        _memsafe._purge_at("{point}", 1)
        def create():
            make(memsafe.SecretBytes, b"k" * 32, "sealed")
        print(attempt(create))
        for i in range(50):
            make(memsafe.SecretBytes, os.urandom(32), "sealed")
        print(check())
        """
    )
    assert out == ["purged", "purged", "50"], out


@pytest.mark.storage("sealed")
def test_purge_inside_an_open_is_purged_not_corruption() -> None:
    out = interleave(
        """
        k = make(memsafe.SecretBytes, b"z" * 32, "sealed")
        _memsafe._purge_at("open-key", 1)
        print(attempt(lambda: k.read(bytes)))
        fresh = make(memsafe.SecretBytes, b"y" * 32, "sealed")
        print(check())
        """
    )
    assert out == ["purged", "1"], out


@pytest.mark.parametrize("point", ["close", "window"])
def test_purge_inside_a_window_is_purged_not_corruption(
    storage: str, point: str
) -> None:
    """"close": the canary check after a purge wiped the canary used to
    abort; "window": a window must never hand out wiped memory as the
    secret."""
    out = interleave(
        f"""
        k = make(memsafe.SecretBytes, b"w" * 48, "{storage}")
        _memsafe._purge_at("{point}", 1)
        seen = []
        def use():
            with k.read() as v:
                seen.append(bytes(v))
        print(attempt(use))
        print(seen in ([], [b"w" * 48], [bytes(48)]))
        fresh = make(memsafe.SecretBytes, b"v" * 48, "{storage}")
        check()
        """
    )
    assert out == ["purged", "True"], out


def test_purge_of_a_purge(storage: str) -> None:
    """A purge that starts inside another purge (as a fatal signal's would)
    on the same thread: no crash, every secret wiped, and the next purge
    finds nothing left to do."""
    out = interleave(
        f"""
        keep = [make(memsafe.SecretBytes, os.urandom(32), "{storage}")
                for _ in range(300)]
        where = []
        for s, _ in LIVE:
            info = s._region_info()
            where.append((info["secret"], info["len"]) if "secret" in info
                         else (info["slot"], info["slot_len"]))
        _memsafe._purge_at("purge", 3)
        memsafe.purge()
        print(all(mem(a, n) == bytes(n) for a, n in where))
        print(all(attempt(lambda s=s: s.read(bytes)) == "purged"
                  for s, _ in LIVE))
        memsafe.purge()
        print(_memsafe._stats()["purge_last_wiped"])
        """
    )
    assert out == ["True", "True", "0"], out


def test_every_point_every_step_keeps_the_invariants(storage: str) -> None:
    """Each point, at its 1st to 4th occurrence, during a mix of creation,
    windows, writes, copies, compares and growth."""
    out = interleave(
        f"""
        import copy
        def mix():
            data = os.urandom(40)
            a = make(memsafe.SecretBytes, data, "{storage}")
            m = make(memsafe.MemSafe, b"m" * 20, "{storage}")
            with m.write() as v:
                v[:4] = b"abcd"
            LIVE[-1] = (m, b"abcd" + b"m" * 16)
            c = copy.copy(a)
            LIVE.append((c, data))
            if not (a == c):
                BAD.append("compare")
            m.extend(b"!")
            LIVE[-2] = (m, b"abcd" + b"m" * 16 + b"!")
        for point in {POINTS!r}:
            for n in range(1, 5):
                _memsafe._purge_at(point, n)
                attempt(mix)
                _memsafe._purge_at(point, 0)
                check()
        for i in range(20):
            make(memsafe.SecretBytes, os.urandom(24), "{storage}")
        print(check() >= 0)
        """
    )
    assert out == ["True"], out


@pytest.mark.storage("guarded")
def test_purge_between_the_recorded_and_the_applied_protection() -> None:
    """A purge (a signal's, on the owner's own thread) between an owner's
    "about to be read-write" and its mprotect: the pages are still
    no-access, so the purge must make them writable itself (it used to
    write into them straight away: SIGSEGV)."""
    out = interleave(
        """
        m = memsafe.MemSafe(b"p" * 64)
        _memsafe._purge_at("protect", 1)
        def write():
            with m.write() as v:
                v[:1] = b"q"
        print(attempt(write))
        make(memsafe.SecretBytes, b"after" * 4, "guarded")
        check()
        """
    )
    assert out == ["purged"], out
