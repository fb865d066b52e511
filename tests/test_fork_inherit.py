"""fork="inherit": a fork child gets its own, fully protected copy.

With the default policy ("wipe") a fork child gets nothing (tests/test_fork.py).
With "inherit" (per secret, or memsafe.set_fork_policy / MEMSAFE_FORK) the
child adopts the secret in a fork hook, before any Python code runs there:
ordinary pages are locked again, memfd_secret pages are copied into the
child's own, sealed slots are re-sealed under the child's own key.  Each
claim is checked against the kernel's view of the child (smaps VmFlags,
maps permissions, a /proc/PID/mem scan with a positive control) and the
parent's copy is checked unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys

import pytest
from helpers import child_env, linux_only, not_sanitized, ok, run_child

import memsafe

pytestmark = linux_only

# A child process that makes secrets with fork="inherit", forks, and lets
# the parent test inspect the grandchild (the fork child) at rest.
FORKER = r"""
import hashlib, json, os, sys, memsafe
from memsafe import _kernel
memsafe.set_fork_policy("inherit")
# No bytes of the secret on this heap: from the hex straight in, wiped.
buf = bytearray.fromhex(sys.argv[1])
k = memsafe.SecretBytes(buf, wipe_source=True)
del buf
digest = sys.argv[3]
def same(s):
    return s.read(lambda v: hashlib.sha256(v).hexdigest()) == digest
m = memsafe.MemSafe(b"m" * 100)
keep_control = sys.argv[2] == "control"
def where(s):
    i = s._region_info()
    return (i["data"], i["data_len"]) if i["storage"] == "guarded" else (
        i["arena"], i["arena_len"])
def nonce(s):
    i = s._region_info()
    if i["storage"] != "sealed":
        return None
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        return os.pread(fd, 12, i["slot"]).hex()
    finally:
        os.close(fd)
parent_nonce = nonce(k)
r, w = os.pipe()
go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    report = {"content": same(k), "fork": k.fork,
              "locked": k.locked, "nonce": nonce(k),
              "parent_nonce": parent_nonce}
    addr, n = where(k)
    mp_ = _kernel.mapping_at(addr)
    flags, perms = sorted(mp_.vmflags), mp_.perms
    report.update(flags=flags, perms=perms)
    with m.write() as v:
        v[:5] = b"child"
    report["child_write"] = m.read(bytes)[:5].decode()
    control = k.reveal() if keep_control else None  # the positive control
    os.write(w, (json.dumps(report) + "\n").encode())
    os.read(go_r, 1)   # at rest while the parent scans
    os._exit(0)
os.close(w)
line = b""
while not line.endswith(b"\n"):
    line += os.read(r, 4096)
print(pid, line.decode().strip(), flush=True)
sys.stdin.readline()   # the scan is done
os.write(go_w, b"x")
os.waitpid(pid, 0)
print(json.dumps({"parent": same(k),
                  "parent_m": m.read(bytes)[:5].decode(),
                  "parent_nonce_after": nonce(k)}), flush=True)
"""


def _run_forker(data: bytes, control: bool) -> tuple[dict, dict, object]:
    import test_leak_scan as ls

    p = subprocess.Popen(
        [
            sys.executable,
            "-c",
            FORKER,
            data.hex(),
            "control" if control else "-",
            hashlib.sha256(data).hexdigest(),
        ],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdin is not None
    first = p.stdout.readline().decode()
    if not first:
        pytest.fail(p.communicate(timeout=60)[1].decode())
    pid_text, report_text = first.split(" ", 1)
    res = ls.scan(int(pid_text), [data])
    out, err = p.communicate(b"\n", timeout=60)
    assert p.returncode == 0, err.decode()
    return json.loads(report_text), json.loads(out.decode().strip()), res


@not_sanitized
def test_child_gets_its_own_protected_copy(storage: str) -> None:
    import test_leak_scan as ls

    data = ls.text_secret(32)
    child, parent, res = _run_forker(data, control=False)
    assert child["content"] and child["fork"] == "inherit", child
    assert child["locked"] is True
    # The kernel's view of the child: locked again, still no-dump.
    assert "lo" in child["flags"] and "dd" in child["flags"], child
    if storage == "guarded":
        assert child["perms"].startswith("---"), child  # no-access at rest
    # Nothing of it in the child's readable memory at rest.
    assert res.full == 0 and res.pieces == 0, res.where
    # A write in the child never reaches the parent.
    assert child["child_write"] == "child"
    assert parent == {
        "parent": True,
        "parent_m": "mmmmm",
        "parent_nonce_after": child["parent_nonce"],
    }, parent


@not_sanitized
def test_positive_control_finds_the_childs_copy() -> None:
    import test_leak_scan as ls

    data = ls.text_secret(32)
    _, _, res = _run_forker(data, control=True)
    assert res.full >= 1, res


@not_sanitized
@pytest.mark.storage("sealed")
def test_sealed_child_reseals_under_its_own_key() -> None:
    """No (key, nonce) pair is shared by two processes: the child's slot
    carries a nonce of its own key (its own random prefix) before any Python
    code runs there."""
    import test_leak_scan as ls

    child, parent, _ = _run_forker(ls.text_secret(32), control=False)
    assert child["nonce"] != child["parent_nonce"], child
    assert child["nonce"][:8] != child["parent_nonce"][:8], child  # key prefix
    assert parent["parent_nonce_after"] == child["parent_nonce"]


def test_default_policy_keeps_todays_behaviour() -> None:
    out = ok(
        run_child(
            """
            import os, memsafe
            k = memsafe.SecretBytes(b"x" * 16)
            print(k.fork, memsafe.get_fork_policy())
            pid = os.fork()
            if pid == 0:
                try:
                    k.read(bytes)
                    os._exit(1)
                except ValueError as e:
                    os._exit(0 if "parent process" in str(e) else 2)
            print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            """
        )
    ).split()
    assert out == ["wipe", "wipe", "0"]


def test_bad_policies() -> None:
    with pytest.raises(ValueError, match="'wipe' or 'inherit'"):
        memsafe.set_fork_policy("share")
    with pytest.raises(TypeError):
        memsafe.set_fork_policy(1)  # type: ignore[arg-type]
    assert memsafe.get_fork_policy() == "wipe"
    r = run_child(
        "import memsafe; print(memsafe.get_fork_policy())",
        env={"MEMSAFE_FORK": "bogus"},
    )
    assert ok(r).strip() == "wipe"
    assert b"MEMSAFE_FORK='bogus'" in r.stderr and b"RuntimeWarning" in r.stderr
    r = run_child(
        "import memsafe; print(memsafe.get_fork_policy())",
        env={"MEMSAFE_FORK": "inherit"},
    )
    assert ok(r).strip() == "inherit"


def test_window_open_at_fork_is_not_adopted(storage: str) -> None:
    """A secret with a window open when the process forks is not adopted
    (the window belongs to the parent): the child gets the fork ValueError,
    never the plaintext."""
    out = ok(
        run_child(
            """
            import os, memsafe
            memsafe.set_fork_policy("inherit")
            k = memsafe.SecretBytes(b"w" * 32)
            j = memsafe.SecretBytes(b"j" * 32)
            with k.read() as v:
                pid = os.fork()
                if pid == 0:
                    code = 0
                    try:
                        k.read(bytes)
                        code = 1
                    except ValueError as e:
                        code = 0 if "parent process" in str(e) else 2
                    if j.read(bytes) != b"j" * 32:
                        code = 3
                    raise SystemExit(code)  # a normal exit (coverage)
            print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            print(k.read(bytes) == b"w" * 32)
            """
        )
    ).split()
    assert out == ["0", "True"], out


@not_sanitized
@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "aarch64"),
    reason="raw clone system call numbers for x86_64/aarch64 Linux",
)
def test_raw_fork_child_adopts_on_first_use(storage: str) -> None:
    """clone(SIGCHLD) skips pthread_atfork: the child's first use of memsafe
    notices the fork and does the same work."""
    out = ok(
        run_child(
            """
            import ctypes, os, platform, signal, memsafe
            memsafe.set_fork_policy("inherit")
            libc = ctypes.CDLL(None, use_errno=True)
            k = memsafe.SecretBytes(b"raw fork secret")
            numbers = {"x86_64": 56, "aarch64": 220}
            pid = libc.syscall(numbers[platform.machine()],
                               int(signal.SIGCHLD), 0, 0, 0, 0)
            if pid == 0:
                os._exit(0 if k.read(bytes) == b"raw fork secret" else 1)
            print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            print(k.read(bytes).decode())
            """
        )
    ).splitlines()
    assert out == ["0", "raw fork secret"], out


@not_sanitized
def test_secretmem_pages_are_copied_not_shared(storage: str) -> None:
    """memfd_secret pages are shared mappings: the child gets its own, so a
    write or close in the child never touches the parent's."""
    if not memsafe._memsafe._features()["secretmem_offered"]:
        pytest.skip("memfd_secret is not offered by this kernel")
    out = ok(
        run_child(
            """
            import os, memsafe
            memsafe.set_fork_policy("inherit")
            memsafe.set_secretmem("require")
            m = memsafe.MemSafe(b"p" * 64)
            print(m.secretmem, flush=True)  # not again by the child's exit
            pid = os.fork()
            if pid == 0:
                with m.write() as v:
                    v[:5] = b"child"
                ok = m.read(bytes)[:5] == b"child" and m.secretmem
                m.close()
                raise SystemExit(0 if ok else 1)  # a normal exit (coverage)
            print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            print(m.read(bytes) == b"p" * 64)
            """
        )
    ).split()
    assert out == ["True", "0", "True"], out


@not_sanitized
def test_multiprocessing_fork_pool_gets_inherited_secrets(storage: str) -> None:
    out = ok(
        run_child(
            """
            import hmac, multiprocessing as mp, memsafe
            memsafe.set_fork_policy("inherit")
            KEY = memsafe.SecretBytes(b"k" * 32)
            def tag(msg):
                return KEY.read(lambda v: hmac.digest(v, msg, "sha256")).hex()
            if __name__ == "__main__":
                with mp.get_context("fork").Pool(2) as pool:
                    got = pool.map(tag, [b"a", b"b", b"c"])
                want = [hmac.digest(b"k" * 32, m, "sha256").hex()
                        for m in (b"a", b"b", b"c")]
                print(got == want)
            """
        )
    ).split()
    assert out == ["True"]


# ---- a real pre-fork server ---------------------------------------------

WSGI_APP = """
import hmac, memsafe
KEY = memsafe.SecretBytes(b"s" * 32)   # loaded at import, before the fork
def app(environ, start_response):
    msg = environ.get("PATH_INFO", "/").encode()
    try:
        body = KEY.read(lambda v: hmac.digest(v, msg, "sha256")).hex().encode()
        status = "200 OK"
    except ValueError as e:
        body, status = str(e).encode(), "500 Internal Server Error"
    start_response(status, [("Content-Type", "text/plain")])
    return [body]
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@not_sanitized
@pytest.mark.parametrize("policy", ["inherit", "wipe"])
def test_gunicorn_preload_workers(
    storage: str, policy: str, tmp_path: os.PathLike[str]
) -> None:
    """gunicorn --preload -w 2: the app's key is loaded at import in the
    master; with fork="inherit" every worker answers correctly, with the
    default policy every request gets the documented error."""
    pytest.importorskip("gunicorn")
    import hmac
    import pathlib
    import time
    import urllib.request

    d = pathlib.Path(tmp_path)
    (d / "app.py").write_text(WSGI_APP)
    port = _free_port()
    env = child_env({"MEMSAFE_FORK": policy, "PYTHONPATH": str(d)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2",
         "-b", f"127.0.0.1:{port}", "app:app"],
        env=env,
        cwd=d,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        answers = []
        while len(answers) < 20 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/msg{len(answers)}", timeout=5
                ) as r:
                    answers.append((r.status, r.read()))
            except urllib.error.HTTPError as e:
                answers.append((e.code, e.read()))
            except OSError:
                time.sleep(0.1)  # not listening yet
        assert len(answers) == 20, answers
        for i, (status, body) in enumerate(answers):
            if policy == "inherit":
                want = hmac.digest(b"s" * 32, f"/msg{i}".encode(), "sha256")
                assert (status, body) == (200, want.hex().encode())
            else:
                assert status == 500 and b"parent process" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_every_constructor_takes_fork(tmp_path: os.PathLike[str]) -> None:
    """fork= on every constructor and classmethod (None: the default); a
    copy keeps its source's policy; bad values name the choices."""
    import copy
    import pathlib

    path = pathlib.Path(tmp_path) / "key"
    path.write_bytes(b"file key")
    makers = [
        lambda f: memsafe.SecretBytes(b"x", fork=f),
        lambda f: memsafe.MemSafe(4, fork=f),
        lambda f: memsafe.SecretStr("x", fork=f),
        lambda f: memsafe.SecretBytes.random(4, fork=f),
        lambda f: memsafe.SecretBytes.from_writer(2, lambda v: None, fork=f),
        lambda f: memsafe.SecretStr.from_writer(2, lambda v: None, fork=f),
        lambda f: memsafe.SecretBytes.from_file(path, fork=f),
    ]
    for make in makers:
        assert [make(f).fork for f in (None, "wipe", "inherit")] == [
            "wipe",
            "wipe",
            "inherit",
        ]
        assert copy.copy(make("inherit")).fork == "inherit"
        with pytest.raises(ValueError, match="'wipe' or 'inherit'"):
            make("share")
    r, w = os.pipe()
    os.write(w, b"piped")
    os.close(w)
    try:
        assert memsafe.SecretBytes.from_fd(r, fork="inherit").fork == "inherit"
    finally:
        os.close(r)


def test_per_secret_policy_in_a_child(storage: str) -> None:
    out = ok(
        run_child(
            """
            import os, memsafe
            import sys
            a = memsafe.SecretBytes(b"a" * 8, fork="inherit")
            b = memsafe.SecretBytes(b"b" * 8)
            pid = os.fork()
            if pid == 0:
                code = 0 if a.read(bytes) == b"a" * 8 else 1
                try:
                    b.read(bytes)
                    code = 2
                except ValueError:
                    pass
                # A normal exit (atexit runs: the coverage build's counters
                # of the child's adoption are written out).
                sys.exit(code)
            print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            """
        )
    ).split()
    assert out == ["0"]


def test_multiprocessing_transport_carries_the_fork_policy() -> None:
    out = ok(
        run_child(
            """
            import multiprocessing as mp, memsafe
            def policy(s):
                return s.fork
            if __name__ == "__main__":
                # Pool.map pickles its arguments (ForkingPickler) under
                # every start method: the transport, not the fork policy.
                with mp.get_context("fork").Pool(1) as pool:
                    got = pool.map(policy, [
                        memsafe.SecretBytes(b"a", fork="inherit"),
                        memsafe.MemSafe(b"b", fork="inherit"),
                        memsafe.SecretStr("c", fork="inherit"),
                        memsafe.SecretBytes(b"d"),
                    ])
                print(got)
            """
        )
    )
    assert out.strip() == "['inherit', 'inherit', 'inherit', 'wipe']"
