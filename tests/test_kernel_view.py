"""Protections as the kernel reports them: smaps VmFlags and maps permissions."""

from __future__ import annotations

import pytest
from helpers import linux_only, not_sanitized

import memsafe
from memsafe import _kernel

# The guarded engine's pages; the sealed engine's arenas: test_sealed.py.
pytestmark = [linux_only, pytest.mark.storage("guarded")]


def data_mapping(secret: memsafe.Secret) -> _kernel.Mapping:
    mapping = _kernel.mapping_at(secret._region_info()["data"])
    assert mapping is not None
    return mapping


@not_sanitized
@pytest.mark.parametrize("size", [0, 1, 32, 4080, 4081, 4096, 65536])
def test_data_pages_locked_undumpable_wiped_on_fork(size: int) -> None:
    with memsafe.MemSafe(size) as m:
        flags = data_mapping(m).vmflags
        assert {"lo", "dd", "wf"} <= flags, flags
        assert "nh" in flags  # no transparent huge pages (copying collapse)
        assert m.locked


@not_sanitized
def test_locked_flag_matches_kernel_vmlck() -> None:
    before = int(str(_kernel.status_field("VmLck")).split()[0])
    m = memsafe.MemSafe(3 * 4096)
    during = int(str(_kernel.status_field("VmLck")).split()[0])
    m.close()
    after = int(str(_kernel.status_field("VmLck")).split()[0])
    assert during - before >= 12  # kB: 3 pages + canary page
    assert after == before


def test_permissions_follow_windows() -> None:
    m = memsafe.MemSafe(b"top secret")
    data = m._region_info()["data"]
    assert _kernel.perms_at(data) == "---p"
    with m.read():
        assert _kernel.perms_at(data) == "r--p"
        with m.read():  # nested read windows are counted
            assert _kernel.perms_at(data) == "r--p"
        assert _kernel.perms_at(data) == "r--p"
    assert _kernel.perms_at(data) == "---p"
    with m.write():
        assert _kernel.perms_at(data) == "rw-p"
    assert _kernel.perms_at(data) == "---p"
    m.read(lambda v: None)
    assert _kernel.perms_at(data) == "---p"
    m.close()
    assert _kernel.perms_at(data) is None


def test_guard_pages_surround_data_and_secret_is_right_aligned() -> None:
    for size in (0, 5, 4080, 4096, 10000):
        with memsafe.MemSafe(size) as m:
            info = m._region_info()
            page = info["data"] - info["base"]
            assert page > 0
            assert _kernel.perms_at(info["base"]) == "---p"
            guard_after = info["data"] + info["data_len"]
            assert guard_after + page == info["base"] + info["total"]
            with m.write():
                assert _kernel.perms_at(guard_after) == "---p"
            assert info["secret"] + info["len"] == guard_after
            # room for the canary even when the secret fills whole pages
            assert info["secret"] - info["data"] >= info["canary_len"]


def test_pages_gone_after_close_for_every_type() -> None:
    secrets: list[memsafe.Secret] = [
        memsafe.MemSafe(100),
        memsafe.SecretBytes(b"x" * 100),
        memsafe.SecretBytes.random(100),
        memsafe.SecretStr("pässwörd"),
    ]
    for s in secrets:
        info = s._region_info()
        assert _kernel.perms_at(info["data"]) == "---p"
        s.close()
        assert _kernel.perms_at(info["data"]) is None
        assert _kernel.perms_at(info["base"]) is None


@not_sanitized
def test_extend_moves_to_new_pages_and_releases_old() -> None:
    m = memsafe.MemSafe(b"abc")
    old = m._region_info()
    m.extend(b"d" * 5000)
    new = m._region_info()
    assert new["data"] != old["data"]
    assert _kernel.perms_at(old["data"]) is None or _kernel.mapping_at(
        old["data"]
    ) != _kernel.mapping_at(new["data"])
    assert {"lo", "dd", "wf"} <= data_mapping(m).vmflags
    assert _kernel.perms_at(new["data"]) == "---p"
    assert m.read(bytes) == b"abc" + b"d" * 5000
    m.close()
