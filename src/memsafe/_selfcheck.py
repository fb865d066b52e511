"""``python -m memsafe``: which protections are really active on this machine.

Each check is made against the kernel's own view where the OS offers one
(Linux ``/proc/self/smaps`` and ``/proc/self/maps``), not against the
library's own flags.  The exit status is non-zero when a protection that this
platform offers and memsafe uses is not active.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from dataclasses import asdict, dataclass

from memsafe import _kernel
from memsafe._memsafe import (
    LockWarning,
    MemSafe,
    _features,
    get_lock_policy,
    set_lock_policy,
)

OK = "ok"
MISSING = "MISSING"
INFO = "info"
UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str


def _size(n: int) -> str:
    if n < 0:
        return "unlimited"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def _probe_secret() -> MemSafe:
    """A small secret created under 'warn' so a lock failure is observable."""
    previous = get_lock_policy()
    set_lock_policy("warn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LockWarning)
            return MemSafe(32)
    finally:
        set_lock_policy(previous)


def _flag_check(
    name: str, flags: frozenset[str], flag: str, how: str, extra: str = ""
) -> Check:
    if flag in flags:
        return Check(name, OK, f"{how}: VmFlags '{flag}' on the data pages{extra}")
    return Check(name, MISSING, f"{how}: VmFlags lack '{flag}'{extra}")


def _window_check(secret: MemSafe, data: int) -> Check:
    seen = [_kernel.perms_at(data)]
    with secret.read():
        seen.append(_kernel.perms_at(data))
    with secret.write():
        seen.append(_kernel.perms_at(data))
    seen.append(_kernel.perms_at(data))
    expected = ["---p", "r--p", "rw-p", "---p"]
    detail = " -> ".join(str(s) for s in seen)
    status = OK if seen == expected else MISSING
    return Check("no-access outside windows", status, f"data pages {detail}")


def _guard_check(info: dict[str, int]) -> Check:
    page = info["data"] - info["base"]
    before = _kernel.perms_at(info["base"])
    after = _kernel.perms_at(info["base"] + info["total"] - page)
    end = info["secret"] + info["len"]
    status = (
        OK
        if before == after == "---p" and end == info["data"] + info["data_len"]
        else MISSING
    )
    return Check(
        "guard pages",
        status,
        f"before {before}, after {after}; the secret ends at the trailing guard",
    )


def _fork_check(secret: MemSafe, features: dict[str, object]) -> Check:
    if not hasattr(os, "fork"):
        return Check("fork children", INFO, "no fork() on this OS")
    pid = os.fork()
    if pid == 0:  # child: the inherited secret must refuse to open
        try:
            secret.read(len)
        except ValueError:
            os._exit(0)
        except BaseException:
            os._exit(2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    good = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    how = features["fork_mechanism"]
    return Check(
        "fork children",
        OK if good else MISSING,
        f"{how}; a fork child "
        + ("gets ValueError, no plaintext" if good else "could open the secret"),
    )


def _linux_checks(features: dict[str, object]) -> list[Check]:
    secret = _probe_secret()
    try:
        info = secret._region_info()
        mapping = _kernel.mapping_at(info["data"])
        flags = mapping.vmflags if mapping else frozenset()
        limit = (
            f"; RLIMIT_MEMLOCK {_size(int(str(features['lock_limit_soft'])))}"
            f" (hard {_size(int(str(features['lock_limit_hard'])))})"
        )
        checks = [
            _window_check(secret, info["data"]),
            _guard_check(info),
            _flag_check("memory locking", flags, "lo", "mlock", limit),
            _flag_check("core-dump exclusion", flags, "dd", "MADV_DONTDUMP"),
            _flag_check("wipe on fork", flags, "wf", "MADV_WIPEONFORK"),
            _flag_check("no transparent huge pages", flags, "nh", "MADV_NOHUGEPAGE"),
            _fork_check(secret, features),
        ]
        data = info["data"]
    finally:
        secret.close()
    gone = _kernel.perms_at(data) is None
    checks.append(
        Check(
            "wipe and release on close",
            OK if gone else MISSING,
            f"{features['wipe_mechanism']}, then the pages are "
            + ("gone from /proc/self/maps" if gone else "STILL MAPPED"),
        )
    )
    checks.append(
        Check(
            "memfd_secret",
            INFO,
            "offered by this kernel; not used by memsafe yet"
            if features["secretmem_offered"]
            else "not offered by this kernel",
        )
    )
    return checks


def _other_checks(features: dict[str, object]) -> list[Check]:
    secret = _probe_secret()
    try:
        locked = secret.locked
        checks = [
            Check(
                "memory locking",
                OK if locked else MISSING,
                f"{features['lock_mechanism']} "
                + ("succeeded" if locked else "FAILED"),
            ),
            Check(
                "core-dump exclusion",
                UNVERIFIED if features["dump_exclusion"] else INFO,
                str(features["dump_mechanism"]),
            ),
            Check("fork children", UNVERIFIED, str(features["fork_mechanism"])),
            Check(
                "no-access outside windows",
                UNVERIFIED,
                "no kernel view of page protections on this OS here",
            ),
        ]
        if features["os_family"] == "posix":
            checks.append(_fork_check(secret, features))
    finally:
        secret.close()
    return checks


def run_checks() -> list[Check]:
    """Run every check for this platform."""
    features = _features()
    if _kernel.available():
        return _linux_checks(features)
    return _other_checks(features)


def _report(checks: list[Check]) -> dict[str, object]:
    from memsafe import __version__

    return {
        "memsafe": __version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "lock_policy": get_lock_policy(),
        "features": _features(),
        "checks": [asdict(c) for c in checks],
        "ok": all(c.status != MISSING for c in checks),
    }


def _print_text(report: dict[str, object], checks: list[Check]) -> None:
    print(
        f"memsafe {report['memsafe']} self-check: {report['platform']}, "
        f"{report['implementation']} {report['python']}"
    )
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"  [{c.status:^10}] {c.name:<{width}}  {c.detail}")
    if report["ok"]:
        print("result: every protection this platform offers is active")
    else:
        print("result: some protections are NOT active (see MISSING above)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m memsafe``; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print("usage: python -m memsafe [--json]\n\n" + (__doc__ or ""))
        return 0
    unknown = [a for a in args if a != "--json"]
    if unknown:
        print(f"unknown argument: {unknown[0]} (try --help)", file=sys.stderr)
        return 2
    checks = run_checks()
    report = _report(checks)
    if "--json" in args:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_text(report, checks)
    return 0 if report["ok"] else 1
