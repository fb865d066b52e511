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
from typing import Any, Literal

from memsafe import _kernel
from memsafe._memsafe import (
    LockWarning,
    MemSafe,
    _features,
    _stats,
    get_lock_policy,
    get_secretmem,
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


def _probe_secret(
    storage: Literal["guarded", "sealed"] = "guarded", data: bytes | None = None
) -> MemSafe:
    """A small secret created under 'warn' so a lock failure is observable."""
    previous = get_lock_policy()
    set_lock_policy("warn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LockWarning)
            if data is None:
                return MemSafe(32, storage=storage)
            return MemSafe(data, storage=storage)
    finally:
        set_lock_policy(previous)


def _flag_check(
    name: str,
    flags: frozenset[str],
    flag: str,
    how: str,
    extra: str = "",
    where: str = "the data pages",
) -> Check:
    wanted = flag.split("|")
    hit = next((f for f in wanted if f in flags), None)
    if hit is not None:
        return Check(name, OK, f"{how}: VmFlags '{hit}' on {where}{extra}")
    return Check(name, MISSING, f"{how}: VmFlags of {where} lack '{flag}'{extra}")


def _window_check(secret: MemSafe, data: int) -> Check:
    seen = [_kernel.perms_at(data)]
    with secret.read():
        seen.append(_kernel.perms_at(data))
    with secret.write():
        seen.append(_kernel.perms_at(data))
    seen.append(_kernel.perms_at(data))
    kind = "s" if secret._region_info()["secretmem"] else "p"  # shared: secretmem
    expected = [f"---{kind}", f"r--{kind}", f"rw-{kind}", f"---{kind}"]
    detail = " -> ".join(str(s) for s in seen)
    status = OK if seen == expected else MISSING
    return Check("no-access outside windows", status, f"data pages {detail}")


def _huge_check(
    info: dict[str, Any],
    flags: frozenset[str],
    name: str = "no transparent huge pages",
    where: str = "the data pages",
) -> Check:
    if info["secretmem"]:
        return Check(name, OK, "memfd_secret pages are never huge pages (nor migrated)")
    return _flag_check(name, flags, "nh", "MADV_NOHUGEPAGE", "", where)


def _guard_check(info: dict[str, Any]) -> Check:
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


def _fork_check(
    secret: MemSafe, features: dict[str, object], name: str = "fork children"
) -> Check:
    if not hasattr(os, "fork"):
        return Check(name, INFO, "no fork() on this OS")
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
        name,
        OK if good else MISSING,
        f"{how}; a fork child "
        + ("gets ValueError, no plaintext" if good else "could open the secret"),
    )


def _unusable(features: dict[str, object], error: OSError) -> list[Check]:
    """No secret can be made at all (e.g. memfd_secret is required and the
    kernel does not offer it): say so instead of a traceback."""
    return [
        Check("creating a secret", MISSING, f"{type(error).__name__}: {error}"),
        *_secretmem_checks(features),
    ]


def _linux_checks(features: dict[str, object]) -> list[Check]:
    try:
        secret = _probe_secret("guarded")
    except OSError as e:
        return _unusable(features, e)
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
            _flag_check(
                "wipe on fork",
                flags,
                "wf|dc",
                "MADV_DONTFORK (memfd_secret)"
                if info["secretmem"]
                else str(features["fork_mechanism"]),
            ),
            _huge_check(info, flags),
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
    checks.extend(_sealed_checks(features))
    checks.extend(_secretmem_checks(features))
    return checks


def _read_mem(addr: int, size: int) -> bytes | None:
    """size bytes at addr through /proc/self/mem (None if refused)."""
    try:
        fd = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.pread(fd, size, addr)
    except OSError:
        return None
    finally:
        os.close(fd)


def _sealed_checks(features: dict[str, object]) -> list[Check]:
    """The sealed engine: ciphertext at rest, the split key, arena pages."""
    marker = b"memsafe self-check sealed probe!"
    secret = _probe_secret("sealed", marker)
    try:
        info = secret._region_info()
        stats = _stats()
        mapping = _kernel.mapping_at(info["arena"])
        flags = mapping.vmflags if mapping else frozenset()
        at_rest = _read_mem(info["slot"], info["slot_len"])
        hidden = at_rest is None and bool(info["secretmem"])
        sealed_ok = info["plaintext"] == 0 and (
            hidden or (at_rest is not None and marker not in at_rest)
        )
        inside = secret.read(bytes) == marker
        where = "the sealed arenas"
        key_ready = stats["key_ready_secretmem" if info["secretmem"] else "key_ready"]
        checks = [
            Check(
                "sealed: encrypted at rest",
                OK if sealed_ok and inside else MISSING,
                (
                    "ChaCha20-Poly1305 ciphertext in the slot, no plaintext "
                    "outside windows ("
                    + (
                        "memfd_secret: even /proc/self/mem cannot read the slot"
                        if hidden
                        else "read back through /proc/self/mem"
                    )
                    + ")"
                )
                if sealed_ok and inside
                else "plaintext found at rest, or the window did not open",
            ),
            Check(
                "sealed: process key split",
                OK if key_ready else MISSING,
                "key = left XOR H(right), two fenced locked no-dump regions"
                if key_ready
                else "the key halves are not in place (or not locked)",
            ),
            _flag_check("sealed: arenas locked", flags, "lo", "mlock", "", where),
            _flag_check(
                "sealed: arenas excluded from dumps",
                flags,
                "dd",
                "MADV_DONTDUMP",
                "",
                where,
            ),
            _flag_check(
                "sealed: arenas wiped on fork",
                flags,
                "wf|dc",
                "MADV_DONTFORK (memfd_secret)"
                if info["secretmem"]
                else str(features["fork_mechanism"]),
                "",
                where,
            ),
            _huge_check(info, flags, "sealed: no transparent huge pages", where),
            _fork_check(secret, features, "sealed: fork children"),
        ]
    finally:
        secret.close()
    return checks


def _secretmem_checks(features: dict[str, object]) -> list[Check]:
    """memfd_secret: offered by the kernel, used by memsafe, or off."""
    mode = get_secretmem()
    offered = bool(features["secretmem_offered"])
    if mode == "off":
        return [
            Check(
                "memfd_secret",
                INFO,
                "offered by this kernel but off (memsafe.set_secretmem('prefer') "
                "or MEMSAFE_SECRETMEM=prefer hides secret pages from the kernel "
                "itself)"
                if offered
                else "not offered by this kernel (Linux 5.14+, secretmem enabled)",
            )
        ]
    if not offered:
        return [
            Check(
                "memfd_secret",
                MISSING if mode == "require" else INFO,
                f"mode '{mode}', but this kernel does not offer it"
                + ("" if mode == "require" else ": ordinary locked pages are used"),
            )
        ]
    probe = _probe_secret("guarded")
    try:
        info = probe._region_info()
        mapping = _kernel.mapping_at(info["data"])
        path = mapping.path if mapping else ""
        hidden = _read_mem(info["secret"], info["len"]) is None
        used = bool(info["secretmem"]) and "secretmem" in path and hidden
    finally:
        probe.close()
    return [
        Check(
            "memfd_secret",
            OK if used else MISSING,
            f"mode '{mode}': secret pages are {path or '?'}; /proc/self/mem "
            + ("cannot read them" if hidden else "CAN read them"),
        ),
        Check(
            "hibernation",
            INFO,
            "WARNING: while memfd_secret memory exists the kernel refuses to "
            "hibernate (suspend to disk) the whole system",
        ),
    ]


def _other_checks(features: dict[str, object]) -> list[Check]:
    try:
        secret = _probe_secret("guarded")
    except OSError as e:
        return _unusable(features, e)
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
        "secretmem": get_secretmem(),
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
