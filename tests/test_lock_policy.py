"""Lock policy: strict / warn / off, the environment variable, and real
mlock failure in a child without CAP_IPC_LOCK and a 32 KiB limit."""

from __future__ import annotations

import errno
import json

import pytest
from helpers import drop_ipc_lock, linux_only, not_sanitized, ok, run_child

import memsafe

LIMIT = 32 * 1024


@pytest.fixture(autouse=True)
def restore_policy():  # type: ignore[no-untyped-def]
    before = memsafe.get_lock_policy()
    yield
    memsafe.set_lock_policy(before)


def test_policy_roundtrip_and_validation() -> None:
    assert memsafe.get_lock_policy() in ("strict", "warn", "off")
    for p in ("warn", "off", "strict"):
        memsafe.set_lock_policy(p)  # type: ignore[arg-type]
        assert memsafe.get_lock_policy() == p
    with pytest.raises(ValueError, match="strict"):
        memsafe.set_lock_policy("sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        memsafe.set_lock_policy(1)  # type: ignore[arg-type]


def test_policy_off_does_not_lock() -> None:
    memsafe.set_lock_policy("off")
    m = memsafe.MemSafe(32)
    assert m.locked is False
    m.close()


def test_lock_error_is_an_oserror() -> None:
    assert issubclass(memsafe.LockError, OSError)
    assert issubclass(memsafe.LockWarning, RuntimeWarning)


CHILD = """
import json, warnings, memsafe
out = {"policy": memsafe.get_lock_policy()}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        m = memsafe.MemSafe(64 * 1024)
        out["locked"] = m.locked
        with m.write() as v:
            v[:3] = b"abc"
        out["content_ok"] = m.read(lambda v: bytes(v[:3])) == b"abc"
        small = memsafe.SecretBytes.random(16)   # fits in 32 KiB: locked
        out["small_locked"] = small.locked
    except memsafe.LockError as e:
        out["error"] = type(e).__name__
        out["errno"] = e.errno
        out["message"] = str(e)
        out["is_oserror"] = isinstance(e, OSError)
out["warnings"] = [(w.category.__name__, str(w.message)) for w in caught]
print(json.dumps(out))
"""


def run_limited(policy: str | None) -> dict[str, object]:
    env = {"MEMSAFE_LOCK_POLICY": policy} if policy else None
    proc = run_child(CHILD, env=env, preexec_fn=drop_ipc_lock(LIMIT))
    result: dict[str, object] = json.loads(ok(proc).strip().splitlines()[-1])
    return result


@linux_only
@not_sanitized
def test_strict_raises_lock_error_with_advice() -> None:
    out = run_limited(None)
    assert out["policy"] == "strict"
    assert out["error"] == "LockError"
    assert out["is_oserror"] is True
    assert out["errno"] in (errno.ENOMEM, errno.EPERM, errno.EAGAIN)
    message = str(out["message"])
    assert "RLIMIT_MEMLOCK is 32768" in message
    assert "ulimit -l" in message and "CAP_IPC_LOCK" in message
    assert "set_lock_policy('warn')" in message


@linux_only
@not_sanitized
def test_warn_warns_once_and_runs_unlocked() -> None:
    out = run_limited("warn")
    assert out["policy"] == "warn"
    assert out["locked"] is False
    assert out["content_ok"] is True
    assert out["small_locked"] is True
    warnings = out["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    category, message = warnings[0]
    assert category == "LockWarning"
    assert "NOT locked" in message and "32768" in message


@linux_only
@not_sanitized
def test_off_is_silent_and_unlocked() -> None:
    out = run_limited("off")
    assert out["locked"] is False
    assert out["small_locked"] is False
    assert out["warnings"] == []


@linux_only
@not_sanitized
def test_soft_limit_is_raised_to_hard_before_failing() -> None:
    proc = run_child(
        """
        import resource, memsafe
        m = memsafe.MemSafe(64 * 1024)
        print(m.locked, resource.getrlimit(resource.RLIMIT_MEMLOCK)[0])
        """,
        preexec_fn=drop_ipc_lock(LIMIT, 1 << 20),
    )
    assert ok(proc).split() == ["True", str(1 << 20)]


def test_unknown_environment_value_keeps_strict_and_warns() -> None:
    proc = run_child(
        """
        import warnings
        warnings.simplefilter("always")
        import memsafe
        print(memsafe.get_lock_policy())
        """,
        env={"MEMSAFE_LOCK_POLICY": "sometimes"},
    )
    assert ok(proc).strip() == "strict"
    assert b"MEMSAFE_LOCK_POLICY" in proc.stderr


def test_environment_value_is_case_insensitive() -> None:
    proc = run_child(
        "import memsafe; print(memsafe.get_lock_policy())",
        env={"MEMSAFE_LOCK_POLICY": " Warn "},
    )
    assert ok(proc).strip() == "warn"


@linux_only
@not_sanitized
def test_warning_filter_error_turns_into_exception_and_frees() -> None:
    proc = run_child(
        """
        import warnings, memsafe
        from memsafe import _kernel
        memsafe.set_lock_policy("warn")
        # The engine's lasting state (the sealed engine's key and first
        # arenas) is made by the first secret: that is not a leak.
        memsafe.SecretBytes(b"warm-up").close()
        def ours():  # memsafe's mappings (the only no-dump ones), not Python's
            return len([m for m in _kernel.mappings() if "dd" in m.vmflags])
        before = ours()
        warnings.simplefilter("error", memsafe.LockWarning)
        try:
            memsafe.MemSafe(64 * 1024)
        except memsafe.LockWarning:
            print("raised", ours() <= before)
        """,
        preexec_fn=drop_ipc_lock(LIMIT),
    )
    assert ok(proc).split() == ["raised", "True"]


@linux_only
@not_sanitized
def test_failed_growth_changes_nothing() -> None:
    """Under the warn policy with warnings as errors, extend() and append()
    raise LockWarning before anything changes: content, length and pages
    are as they were, and nothing new stays mapped."""
    proc = run_child(
        """
        import warnings, memsafe
        from memsafe import _kernel
        memsafe.set_lock_policy("warn")
        m = memsafe.MemSafe(b"a" * 100)
        s = memsafe.SecretStr("pässword")
        info_m, info_s = m._region_info(), s._region_info()
        m.read(len), s.read(len)  # the sealed engine's window arena exists
        def ours():  # memsafe's mappings (the only no-dump ones), not Python's
            return len([m for m in _kernel.mappings() if "dd" in m.vmflags])
        before = ours()
        warnings.simplefilter("error", memsafe.LockWarning)
        out = []
        for grow in (lambda: m.extend(b"b" * 70000), lambda: s.append("x" * 70000)):
            try:
                grow()
                out.append("grew")
            except memsafe.LockWarning:
                out.append("raised")
        out.append(m.read(bytes) == b"a" * 100 and len(m) == 100)
        out.append(s.reveal() == "pässword" and len(s) == 8 and s.nbytes == 9)
        out.append(m._region_info() == info_m and s._region_info() == info_s)
        out.append(ours() <= before)
        print(*out)
        """,
        preexec_fn=drop_ipc_lock(LIMIT),
    )
    assert ok(proc).split() == ["raised", "raised", "True", "True", "True", "True"]


@linux_only
@not_sanitized
def test_failed_wipe_source_copy_leaves_the_source_intact() -> None:
    """A wipe_source=True copy that fails loses nothing: the source is left
    as it was, and the error says so (a note on the exception)."""
    proc = run_child(
        """
        import sys, memsafe
        src = bytearray(b"keep me!" * 8192)  # 64 KiB: over the lock limit
        try:
            memsafe.MemSafe(src, wipe_source=True)
            print("copied")
        except memsafe.LockError as e:
            notes = getattr(e, "__notes__", None)
            print("LockError", src == bytearray(b"keep me!" * 8192),
                  notes is None or any("left intact" in n for n in notes))
        """,
        preexec_fn=drop_ipc_lock(LIMIT),
    )
    assert ok(proc).split() == ["LockError", "True", "True"]
