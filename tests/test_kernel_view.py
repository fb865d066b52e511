"""Protections as the kernel reports them: smaps VmFlags and maps permissions."""

from __future__ import annotations

import os

import pytest
from helpers import linux_only, not_sanitized, ok, run_child

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


# ---- what no-access pages do NOT stop -----------------------------------------


def test_proc_pid_mem_reads_no_access_pages() -> None:
    """Pinned fact (the docs depend on it): the kernel reads PROT_NONE pages
    for /proc/PID/mem (FOLL_FORCE), so no-access outside windows stops stray
    reads inside the process, not a same-user reader or root.  If a kernel
    ever stops doing this, this test fails and the docs must change."""
    k = memsafe.SecretBytes(b"read through PROT_NONE")
    info = k._region_info()
    assert _kernel.perms_at(info["data"]) == "---p"
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        got = os.pread(fd, info["len"], info["secret"])
    finally:
        os.close(fd)
    assert got == b"read through PROT_NONE"
    k.close()


@not_sanitized
def test_same_uid_child_reads_a_guarded_secret_outside_windows() -> None:
    proc = run_child(
        """
        import os, subprocess, sys, memsafe
        k = memsafe.SecretBytes(b"same-uid reader")
        i = k._region_info()
        reader = ("import os,sys; fd=os.open('/proc/%d/mem' % int(sys.argv[1]),"
                  " os.O_RDONLY); sys.stdout.write(os.pread(fd, int(sys.argv[3]),"
                  " int(sys.argv[2])).decode())")
        out = subprocess.run([sys.executable, "-c", reader, str(os.getpid()),
                              str(i["secret"]), str(i["len"])],
                             capture_output=True, text=True)
        print(out.stdout)
        """
    )
    assert ok(proc).strip() == "same-uid reader"
