"""``python -m memsafe``: which protections are really active on this machine.

Each check is made against the kernel's own view where the OS offers one
(Linux ``/proc/self/smaps`` and ``/proc/self/maps``), not against the
library's own flags.  The exit status is non-zero when a protection that this
platform offers and memsafe uses is not active; a missing protection's row
says why (the limit, the call that failed) and what to do.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import platform
import sys
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Literal, TextIO

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

# Exit statuses of python -m memsafe (also in --help and docs/api.md).
EXIT_OK = 0  # every protection this platform offers is active
EXIT_MISSING = 1  # at least one is not: see the MISSING rows
EXIT_USAGE = 2  # bad command line (argparse's own status)
EXIT_PIPE = 141  # stdout closed early (`| head`): 128 + SIGPIPE, as a shell says

LOCK_ADVICE = (
    "raise the process's working-set quota (a job object may cap it; memsafe "
    "already grows the working set before it fails) or lock fewer secrets"
    if sys.platform == "win32"
    else "raise RLIMIT_MEMLOCK (`ulimit -l`, LimitMEMLOCK= in a systemd unit, "
    "'memlock' in /etc/security/limits.conf, `--ulimit memlock=-1` for a "
    "container) or grant CAP_IPC_LOCK (Linux)"
)


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


@dataclass
class _Probe:
    """A probe secret and, if its memory could not be locked, why."""

    secret: MemSafe
    lock_failure: str  # the LockWarning's text ("" when locked)


def _probe(
    storage: Literal["guarded", "sealed"] = "guarded", data: bytes | None = None
) -> _Probe:
    """A small secret created under 'warn' so a lock failure is observable;
    the LockWarning's message (the call that failed, errno, the limit) is
    kept to say why."""
    previous = get_lock_policy()
    set_lock_policy("warn")
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", LockWarning)
            secret = MemSafe(32 if data is None else data, storage=storage)
    finally:
        set_lock_policy(previous)
    why = [str(w.message) for w in seen if issubclass(w.category, LockWarning)]
    return _Probe(secret, why[0] if why else "")


def _probe_secret(
    storage: Literal["guarded", "sealed"] = "guarded", data: bytes | None = None
) -> MemSafe:
    """A small secret created under 'warn' (see _probe)."""
    return _probe(storage, data).secret


def _lock_reason(failure: str) -> str:
    """Why memory is not locked and what to do, for a MISSING row."""
    used = _kernel.status_field("VmLck") if _kernel.available() else None
    return (
        f"; {failure or 'the pages are not locked'}"
        + (f"; VmLck {used} already in use" if used else "")
        + f"; to fix: {LOCK_ADVICE}"
    )


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
    hint = _FLAG_HINTS.get(flag, "")
    return Check(name, MISSING, f"{how}: VmFlags of {where} lack '{flag}'{extra}{hint}")


# What to do when the kernel did not apply a flag ('lo': the caller says).
_FLAG_HINTS = {
    "dd": "; to fix: a kernel with MADV_DONTDUMP (Linux 3.4+); meanwhile "
    "memsafe.harden() turns core dumps off for the whole process",
    "wf|dc": "; to fix: a kernel with MADV_WIPEONFORK (Linux 4.14+); meanwhile "
    "do not fork while secrets exist",
    "nh": "; to fix: a kernel that honours MADV_NOHUGEPAGE (Linux 2.6.38+ with "
    "transparent huge pages), or transparent huge pages off",
}


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
        probe = _probe("guarded")
    except OSError as e:
        return _unusable(features, e)
    secret = probe.secret
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
            # (completed below with the sealed engine's arenas)
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
    sealed, sealed_failure = _sealed_checks(features)
    checks.extend(sealed)
    checks.extend(_secretmem_checks(features))
    return _locking_summary(checks, probe.lock_failure, sealed_failure, limit)


def _locking_summary(
    checks: list[Check], guarded_failure: str, sealed_failure: str, limit: str
) -> list[Check]:
    """The "memory locking" row covers both engines: ok only when the
    guarded data pages and the sealed arenas are locked, and otherwise
    names the one that is not, the failed call and the fix."""
    rows = {c.name: c for c in checks}
    guarded = rows.get("memory locking")
    sealed = rows.get("sealed: arenas locked")
    if guarded is None:
        return checks
    failed = [
        what
        for what, row in (("guarded data pages", guarded), ("sealed arenas", sealed))
        if row is not None and row.status == MISSING
    ]
    if not failed:
        detail = "mlock: VmFlags 'lo' on the guarded data pages and the sealed arenas"
        summary = Check("memory locking", OK, detail + limit)
    else:
        detail = f"{' and '.join(failed)} NOT locked (VmFlags lack 'lo')"
        if guarded.status == MISSING:
            detail += _lock_reason(guarded_failure)
        else:
            detail += "; the sealed engine's arenas and key need more locked memory "
            detail += "than one guarded secret" + _lock_reason(sealed_failure)
        summary = Check("memory locking", MISSING, detail)
    return [summary if c is guarded else c for c in checks]


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


def _sealed_checks(features: dict[str, object]) -> tuple[list[Check], str]:
    """The sealed engine: ciphertext at rest, the split key, arena pages;
    and why its memory could not be locked ("" if it was)."""
    marker = b"memsafe self-check sealed probe!"
    probe = _probe("sealed", marker)
    secret = probe.secret
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
                else "the key halves are not in place (or not locked)"
                + _lock_reason(probe.lock_failure),
            ),
            _flag_check(
                "sealed: arenas locked",
                flags,
                "lo",
                "mlock",
                _lock_reason(probe.lock_failure) if "lo" not in flags else "",
                where,
            ),
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
    return checks, probe.lock_failure


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
        probe = _probe("guarded")
    except OSError as e:
        return _unusable(features, e)
    secret = probe.secret
    try:
        locked = secret.locked
        checks = [
            Check(
                "memory locking",
                OK if locked else MISSING,
                f"{features['lock_mechanism']} "
                + (
                    "succeeded"
                    if locked
                    else "FAILED" + _lock_reason(probe.lock_failure)
                ),
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


def _remote_debug_check(features: dict[str, object]) -> Check:
    """Python 3.14's remote debugging (PEP 768): enabled or not, and whether
    memsafe.harden()'s veto of remote debugger scripts is installed."""
    name = "remote debugger scripts"
    enabled = getattr(sys, "is_remote_debug_enabled", None)
    if enabled is None:
        return Check(
            name,
            INFO,
            f"n/a: Python {sys.version_info[0]}.{sys.version_info[1]} has no "
            "remote debugging interface (PEP 768, sys.remote_exec, is 3.14+)",
        )
    veto = bool(features.get("remote_debug_veto"))
    state = f"sys.is_remote_debug_enabled() {enabled()}; memsafe's veto " + (
        "installed (memsafe.harden())" if veto else "not installed"
    )
    if veto:
        return Check(
            name,
            OK,
            f"{state}: scripts sent with sys.remote_exec or pdb -p are refused",
        )
    if not enabled():
        return Check(name, OK, f"{state}: this interpreter runs no such scripts")
    return Check(
        name,
        INFO,
        f"{state}: a process allowed to write this one's memory (same user, "
        "root) can run code in it with sys.remote_exec and read secrets; "
        "memsafe.harden() refuses such scripts (or set "
        "PYTHON_DISABLE_REMOTE_DEBUG=1 / -X disable_remote_debug)",
    )


def run_checks() -> list[Check]:
    """Run every check for this platform."""
    features = _features()
    linux = _kernel.available()
    checks = _linux_checks(features) if linux else _other_checks(features)
    return [*checks, _remote_debug_check(features)]


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


def _print_text(report: dict[str, object], checks: list[Check], out: TextIO) -> None:
    print(
        f"memsafe {report['memsafe']} self-check: {report['platform']}, "
        f"{report['implementation']} {report['python']}",
        file=out,
    )
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"  [{c.status:^10}] {c.name:<{width}}  {c.detail}", file=out)
    if report["ok"]:
        print("result: every protection this platform offers is active", file=out)
    else:
        print(
            "result: some protections are NOT active (see MISSING above: each "
            "row says why and what to do)",
            file=out,
        )


def _version() -> str:
    """memsafe.__version__, or the installed distribution's version."""
    import memsafe

    found = getattr(memsafe, "__version__", None)
    if isinstance(found, str):
        return found
    from importlib.metadata import version

    return version("memsafe")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m memsafe",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "memsafe self-check: create probe secrets (guarded; sealed too on\n"
            "Linux) and check, against the kernel's own view where the OS has\n"
            "one (Linux: /proc/self/smaps and /proc/self/maps), which protections\n"
            "are really active here: no-access outside windows, guard pages,\n"
            "memory locking, core-dump exclusion, wipe on fork, memfd_secret.\n"
            "A protection that is missing is reported with the reason (the\n"
            "limit, the call that failed) and what to do."
        ),
        epilog=(
            "exit status:\n"
            f"  {EXIT_OK}    every protection this platform offers is active\n"
            f"  {EXIT_MISSING}    at least one is not (the MISSING rows say why)\n"
            f"  {EXIT_USAGE}    bad command line\n"
            f"  {EXIT_PIPE}  the output was closed early (e.g. `| head`)\n"
            "\n"
            "environment: MEMSAFE_LOCK_POLICY, MEMSAFE_STORAGE and MEMSAFE_SECRETMEM\n"
            "apply as in any program using memsafe (MEMSAFE_SECRETMEM=prefer checks\n"
            "memfd_secret pages)."
        ),
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (the checks, features, versions, 'ok')",
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"memsafe {_version()}",
        help="print memsafe's version and exit",
    )
    return p


def _closed_pipe(err: OSError) -> bool:
    """A write to a pipe whose reader has gone: EPIPE (BrokenPipeError) on
    POSIX; Windows reports EINVAL for the same."""
    return isinstance(err, BrokenPipeError) or (
        sys.platform == "win32" and err.errno == errno.EINVAL
    )


def _stdout_gone() -> int:
    """stdout was closed early (a pipe into `head`): end quietly.  As the
    Python docs advise for SIGPIPE, point stdout at devnull so the flush at
    exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m memsafe``; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error
        try:
            sys.stdout.flush()
        except OSError as err:
            if not _closed_pipe(err):
                raise
            return _stdout_gone()
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    checks = run_checks()
    report = _report(checks)
    try:
        if args.json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            _print_text(report, checks, sys.stdout)
        sys.stdout.flush()
    except OSError as err:
        if not _closed_pipe(err):
            raise
        return _stdout_gone()
    return EXIT_OK if report["ok"] else EXIT_MISSING
