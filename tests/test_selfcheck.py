"""python -m memsafe: the self-check report and its exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LINUX, child_env, drop_ipc_lock, not_sanitized, run_child

import memsafe

DOCS = Path(__file__).resolve().parents[1] / "docs"


@not_sanitized
def test_selfcheck_passes_here() -> None:
    proc = run_child("import runpy; runpy.run_module('memsafe', run_name='__main__')")
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    assert "self-check" in out
    for name in ("memory locking", "core-dump exclusion", "no-access outside windows"):
        assert name in out
    if LINUX:
        assert "[    ok    ] memory locking" in out
        assert "memfd_secret" in out


@not_sanitized
def test_selfcheck_json() -> None:
    proc = run_child(
        "import sys; from memsafe._selfcheck import main; sys.exit(main(['--json']))"
    )
    report = json.loads(proc.stdout)
    assert report["ok"] is (proc.returncode == 0)
    names = {c["name"]: c["status"] for c in report["checks"]}
    assert "memory locking" in names
    assert report["features"]["page_size"] > 0
    if LINUX:
        assert all(
            names[n] == "ok"
            for n in (
                "memory locking",
                "core-dump exclusion",
                "wipe on fork",
                "guard pages",
                "no-access outside windows",
            )
        )


def test_selfcheck_bad_argument() -> None:
    proc = run_child(
        "import sys; from memsafe._selfcheck import main; sys.exit(main(['--bogus']))"
    )
    assert proc.returncode == 2


@pytest.mark.skipif(not LINUX, reason="lock limits via CAP_IPC_LOCK are Linux")
@not_sanitized
def test_selfcheck_fails_when_locking_is_not_possible() -> None:
    proc = run_child(
        "import sys; from memsafe._selfcheck import main; sys.exit(main([]))",
        preexec_fn=drop_ipc_lock(0),
    )
    out = proc.stdout.decode()
    assert proc.returncode == 1, out
    assert "MISSING" in out and "memory locking" in out


def memsafe_cli(
    *args: str, stdout: int = subprocess.PIPE, **kw: object
) -> subprocess.CompletedProcess[bytes]:
    """python -m memsafe ARGS in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "memsafe", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=child_env(),
        timeout=120,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def test_help_is_plain_text_with_the_options_and_exit_statuses() -> None:
    proc = memsafe_cli("--help")
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    assert out.startswith("usage: python -m memsafe")
    for option in ("--json", "--version", "-h, --help"):
        assert option in out
    for status in ("0 ", "1 ", "2 ", "141 "):
        assert f"\n  {status}" in out, out
    # No reStructuredText markup (the module docstring used to be printed).
    assert "``" not in out and ":func:" not in out and "::" not in out


def test_version() -> None:
    proc = memsafe_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"memsafe {memsafe.__version__}"


def test_unknown_option_is_a_usage_error() -> None:
    proc = memsafe_cli("--bogus")
    assert proc.returncode == 2
    assert b"usage: python -m memsafe" in proc.stderr
    assert b"Traceback" not in proc.stderr


@pytest.mark.skipif(not hasattr(os, "pipe"), reason="needs pipes")
@pytest.mark.parametrize("args", [(), ("--json",), ("--help",)])
@not_sanitized
def test_closed_pipe_ends_quietly(args: tuple[str, ...]) -> None:
    """Output into a pipe nobody reads (`| head` that has exited): no
    BrokenPipeError traceback; the report ends with the documented status
    141 (argparse up to 3.13 ignores a failed write of --help: status 0;
    3.14's lets the error through, and it ends as 141 like the report)."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write
    try:
        proc = memsafe_cli(*args, stdout=w)
    finally:
        os.close(w)
    assert proc.stderr == b"", proc.stderr.decode()
    assert proc.returncode in ((0, 141) if args == ("--help",) else (141,))


@pytest.mark.skipif(
    shutil.which("sh") is None or shutil.which("head") is None,
    reason="needs sh and head",
)
@not_sanitized
def test_pipe_into_head() -> None:
    proc = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -m memsafe --json | head -c 1'],
        capture_output=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert proc.stdout == b"{"
    assert proc.stderr == b"", proc.stderr.decode()


@pytest.mark.skipif(not LINUX, reason="lock limits via CAP_IPC_LOCK are Linux")
@not_sanitized
def test_selfcheck_says_why_locking_is_missing() -> None:
    """Under an 8 KiB RLIMIT_MEMLOCK one guarded secret locks but the
    sealed engine's arenas do not: the "memory locking" row must not say ok
    then, and both rows name the limit, the failed call and the fix."""
    proc = run_child(
        "import sys; from memsafe._selfcheck import main; sys.exit(main(['--json']))",
        preexec_fn=drop_ipc_lock(8192),
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 1, report
    rows = {c["name"]: c for c in report["checks"]}
    sealed = rows["sealed: arenas locked"]
    summary = rows["memory locking"]
    assert sealed["status"] == "MISSING", sealed
    assert summary["status"] == "MISSING", summary
    assert "sealed arenas NOT locked" in summary["detail"]
    for row in (sealed, summary):
        detail = row["detail"]
        assert "mlock failed" in detail  # the call that failed, and errno
        assert "RLIMIT_MEMLOCK is 8192 bytes" in detail  # the limit
        assert "ulimit -l" in detail and "CAP_IPC_LOCK" in detail  # the fix


@pytest.mark.skipif(not LINUX, reason="lock limits via CAP_IPC_LOCK are Linux")
@not_sanitized
def test_selfcheck_says_why_when_nothing_locks() -> None:
    proc = run_child(
        "import sys; from memsafe._selfcheck import main; sys.exit(main([]))",
        preexec_fn=drop_ipc_lock(0),
    )
    out = proc.stdout.decode()
    assert proc.returncode == 1, out
    row = next(line for line in out.splitlines() if "] memory locking" in line)
    assert "MISSING" in row
    assert "guarded data pages" in row and "mlock failed" in row
    assert "RLIMIT_MEMLOCK is 0 bytes" in row and "CAP_IPC_LOCK" in row


@pytest.mark.skipif(not LINUX, reason="the row list of the Linux self-check")
@not_sanitized
def test_every_missing_row_says_why() -> None:
    """No MISSING row is a bare flag list: each carries a reason."""
    proc = run_child(
        "import sys; from memsafe._selfcheck import main; sys.exit(main(['--json']))",
        preexec_fn=drop_ipc_lock(0),
    )
    report = json.loads(proc.stdout)
    missing = [c for c in report["checks"] if c["status"] == "MISSING"]
    assert missing
    for c in missing:
        assert "to fix:" in c["detail"] or "Error" in c["detail"], c


@pytest.mark.skipif(not (DOCS / "api.md").is_file(), reason="no docs/ here")
def test_exit_statuses_are_documented() -> None:
    text = (DOCS / "api.md").read_text()
    assert "python -m memsafe" in text
    for status in ("`0`", "`1`", "`2`", "`141`"):
        assert status in text, status


REMOTE_DEBUG_ROW = """
import json, sys, memsafe
from memsafe._selfcheck import run_checks
if sys.argv[1:] == ["harden"]:
    memsafe.harden()
row = [c for c in run_checks() if c.name == "remote debugger scripts"]
print(json.dumps([[c.status, c.detail] for c in row]))
"""


@pytest.mark.parametrize("case", ["fresh", "hardened", "disabled"])
def test_selfcheck_remote_debugger_row(case: str) -> None:
    """One row: n/a before 3.14; on 3.14+ sys.is_remote_debug_enabled() and
    whether memsafe.harden()'s veto is installed (ok when it is, or when
    remote debugging is off; info otherwise)."""
    env = {"PYTHON_DISABLE_REMOTE_DEBUG": "1"} if case == "disabled" else {}
    args = ["harden"] if case == "hardened" else []
    proc = run_child(
        f"import sys; sys.argv[1:] = {args!r}\n" + REMOTE_DEBUG_ROW,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    rows = json.loads(proc.stdout)
    assert len(rows) == 1, rows
    status, detail = rows[0]
    if sys.version_info < (3, 14):
        assert status == "info" and detail.startswith("n/a: Python 3."), detail
        return
    enabled = case != "disabled" and sys.is_remote_debug_enabled()
    assert f"sys.is_remote_debug_enabled() {enabled}" in detail, detail
    if case == "hardened":
        assert status == "ok" and "veto installed" in detail, detail
    else:
        assert "veto not installed" in detail, detail
        assert status == ("info" if enabled else "ok"), (status, detail)
