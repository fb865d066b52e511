"""Leak scans for the integration tests.

A child process reads a fresh random secret from a file straight into
secret memory (`key`, a SecretBytes, and `password`, a SecretStr of the
same ASCII text), runs the snippet under test, and waits; the test reads
every readable mapping of the child through /proc/PID/mem (the scanner of
tests/test_leak_scan.py) and counts copies of the secret, whole or in
16-byte aligned pieces.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import helpers
import pytest

CHILD = r"""
import os, sys
import memsafe
from memsafe._memsafe import _secretstr_from_utf8

workdir, out, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
key = memsafe.SecretBytes.from_file(os.path.join(workdir, "secret"))
password = _secretstr_from_utf8(memsafe.SecretStr, key)
exec(compile(sys.argv[4], "<snippet>", "exec"))
os.write(out, f"{os.getpid()} ready\n".encode())
os.read(go, 1)
"""

TIMEOUT = 60


def scan_after(
    code: str,
    tmp_path: pathlib.Path,
    prepare: Callable[[bytes, pathlib.Path], None] | None = None,
    encode: Callable[[bytes], bytes] | None = None,
) -> Any:
    """Run code in the child (after key and password exist), then scan it.

    prepare(secret, workdir) runs in the test process first, for files the
    snippet needs that are derived from the secret.  encode(secret), if
    given, is what the scan looks for instead of the secret itself (e.g.
    its UCS-4 form)."""

    def no_needles(secret: bytes, workdir: pathlib.Path) -> dict[str, bytes]:
        if prepare is not None:
            prepare(secret, workdir)
        return {}

    return scan_each(code, tmp_path, no_needles, encode)["secret"]


def scan_each(
    code: str,
    tmp_path: pathlib.Path,
    prepare: Callable[[bytes, pathlib.Path], dict[str, bytes]],
    encode: Callable[[bytes], bytes] | None = None,
) -> dict[str, Any]:
    """scan_after, for more than the secret: prepare(secret, workdir)
    returns named needles (a key derived from the secret, a data key the
    snippet decrypts), and each is counted apart; "secret" is the secret
    itself (the text of `key` and `password`), or encode(secret)."""
    if not helpers.LINUX or helpers.SANITIZED:
        pytest.skip("leak scans need Linux /proc and an unsanitized build")
    import test_leak_scan as ls

    secret = ls.text_secret(32)
    (tmp_path / "secret").write_bytes(secret)
    needles = {
        "secret": encode(secret) if encode is not None else secret,
        **prepare(secret, tmp_path),
    }
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(tmp_path),
            str(out_w),
            str(go_r),
            textwrap.dedent(code),
        ],
        pass_fds=[out_w, go_r],
        env=ls.child_env(),
        stderr=subprocess.PIPE,
    )
    os.close(out_w)
    os.close(go_r)
    try:
        buf = b""
        while not buf.endswith(b"ready\n"):
            chunk = os.read(out_r, 4096)
            if not chunk:
                err = proc.communicate(timeout=TIMEOUT)[1].decode()
                pytest.fail(f"snippet failed:\n{err}")
            buf += chunk
        pid = int(buf.split()[0])
        res = {name: ls.scan(pid, [needle]) for name, needle in needles.items()}
        os.close(go_w)
        go_w = -1
        assert proc.wait(TIMEOUT) == 0
    finally:
        if go_w >= 0:
            os.close(go_w)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(out_r)
    for r in res.values():
        assert r.scanned > 4 << 20 and {"[heap]", "[stack]"} <= r.areas, r
    return res


def no_copy(res: Any) -> None:
    assert res.full == 0 and res.pieces == 0, res.where


def copy_found(res: Any) -> None:
    assert res.full + res.pieces >= 1, res
