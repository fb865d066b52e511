"""python -m memsafe: the self-check report and its exit status."""

from __future__ import annotations

import json

import pytest
from helpers import LINUX, drop_ipc_lock, not_sanitized, run_child


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
