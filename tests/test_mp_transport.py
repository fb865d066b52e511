"""multiprocessing transport: a secret given to multiprocessing arrives in
the other process as a secret of the same type, content and storage engine,
carried by a pipe file descriptor, never by pickle bytes.

The matrix runs every API (Process args, Queue.put, Connection.send, a
secret sent back, Pool.map / apply / a pool worker's return value,
ProcessPoolExecutor.submit) under each start method and both engines, in a
fresh interpreter (tests/_mp_workers.py) whose default engine is the other
one.  The leak scan reads every readable mapping of the receiving process
and of the sender through /proc/PID/mem, with a positive control.
"""

from __future__ import annotations

import copy
import copyreg
import errno
import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import helpers
import pytest
from helpers import LINUX, ok, posix_only, run_child

import memsafe
from memsafe import _kernel, _mp

pytestmark = posix_only

TESTS = str(pathlib.Path(__file__).resolve().parent)
METHODS = ("spawn", "forkserver", "fork")
TYPES = ("SecretBytes", "SecretStr", "MemSafe")


def child(code: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """run_child with tests/ importable (for _mp_workers)."""
    path = os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)
    return run_child(code, env={"PYTHONPATH": path}, timeout=timeout)


def make(kind: str, data: bytes) -> Any:
    if kind == "SecretStr":
        return memsafe.SecretStr(data.hex())
    return getattr(memsafe, kind)(data)


def plain(s: Any) -> bytes:
    return bytes(s.read(bytes))


def open_fds() -> set[str]:
    """This process's open descriptors, without the one that lists them."""
    folder = "/proc/self/fd" if LINUX else "/dev/fd"
    names = set()
    for name in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, name))
        except OSError:  # the listing's own descriptor, closed by now
            continue
        if not target.endswith("/fd"):
            names.add(name)
    return names


def fds() -> set[str]:
    """open_fds() once the resource sharer's thread has finished closing
    what it handed over (it does so after the receiver has it)."""
    last, same = open_fds(), 0
    for _ in range(500):
        time.sleep(0.01)
        now = open_fds()
        same = same + 1 if now == last else 0
        if same == 5:
            break
        last = now
    return last


def _settings_model() -> Any:
    """A pydantic v2 model that holds a secret, or None without pydantic v2."""
    try:
        import pydantic
    except ImportError:  # pragma: no cover - pydantic is optional
        return None
    if int(pydantic.VERSION.split(".")[0]) < 2:  # pragma: no cover
        return None

    class Settings(pydantic.BaseModel):
        """A model with a secret field (module level: pickled by name)."""

        api_key: memsafe.SecretStr
        name: str

    Settings.__qualname__ = "Settings"
    return Settings


Settings = _settings_model()


@pytest.fixture
def forking() -> Iterator[Any]:
    """multiprocessing's ForkingPickler, with the resource sharer's
    listener started (a one-time descriptor, not a leak)."""
    from multiprocessing.reduction import ForkingPickler

    warm = memsafe.SecretBytes(b"warm")
    ForkingPickler.loads(ForkingPickler.dumps(warm)).close()
    yield ForkingPickler


# ---- every API, every start method, both engines ---------------------------


@pytest.mark.parametrize("method", METHODS)
def test_every_api_delivers_a_secret_of_the_same_type_content_and_engine(
    method: str, storage: str
) -> None:
    import multiprocessing as mp

    if method not in mp.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    code = f"import _mp_workers; _mp_workers.run_matrix({method!r}, {storage!r})"
    res = json.loads(ok(child(code)))
    want = res["want"]
    assert [w[0] for w in want] == list(TYPES)
    assert {w[1] for w in want} == {storage}
    apis = ["queue", "connection", "back", "pool_map", "pool_apply", "executor"]
    if method != "fork":
        apis.append("args")
    else:  # inherited by fork, not pickled: see the fork test below
        assert res["args"] == []
    for api in apis:
        assert res[api] == want, api
    made, seen = res["pool_return"]
    assert made == seen and made[:2] == ["SecretBytes", storage]
    assert res["exitcode"] == 0


@pytest.mark.storage("any")
@pytest.mark.parametrize("method", METHODS)
def test_over_the_maximum_raises_in_the_sender_through_every_api(
    method: str,
) -> None:
    """Connection.send raises at once; Pool.apply and
    ProcessPoolExecutor.submit raise from the sender's result; Queue.put
    pickles in its feeder thread, which prints the error and drops the
    item.  The next secret sent arrives whole (nothing partial went first)."""
    res = json.loads(
        ok(child(f"import _mp_workers; _mp_workers.run_oversize({method!r})"))
    )
    for api in ("connection", "pool", "executor"):
        assert res[api].startswith("ValueError: cannot send"), (api, res[api])
        assert "at most 1048576 bytes" in res[api]
        assert res[api + "_next"] == res["small"], api


@pytest.mark.skipif(
    not memsafe._memsafe._features()["secretmem_offered"],
    reason="this kernel does not offer memfd_secret",
)
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_secretmem_secret_arrives_in_secretmem(method: str, storage: str) -> None:
    code = f"import _mp_workers; _mp_workers.run_secretmem({method!r}, {storage!r})"
    res = json.loads(ok(child(code)))
    assert res["want"][-1] is True
    assert res["got"] == res["want"]


@pytest.mark.storage("any")
def test_fork_process_args_follow_the_fork_policy() -> None:
    """Under fork, Process(args=...) is not pickled: the child inherits the
    object, so the fork policy decides (default: the child holds no
    plaintext and says so)."""
    out = ok(
        child(
            """
            import multiprocessing as mp, memsafe
            def use(s, conn):
                try:
                    s.read(bytes)
                    conn.send("read")
                except ValueError as e:
                    conn.send(str(e))
            ctx = mp.get_context("fork")
            a, b = ctx.Pipe()
            p = ctx.Process(target=use, args=(memsafe.SecretBytes(b"k" * 32), b))
            p.start()
            print(a.recv())
            p.join()
            """
        )
    )
    assert "parent process" in out


# ---- the pickle stream ------------------------------------------------------


@pytest.mark.parametrize("kind", TYPES)
def test_forking_pickler_stream_holds_no_plaintext(kind: str, forking: Any) -> None:
    data = os.urandom(32)
    s = make(kind, data)
    text = plain(s)
    stream = bytes(forking.dumps(s))
    pieces = {text[i : i + 8] for i in range(0, len(text) - 7)}
    assert not any(p in stream for p in pieces)
    back = forking.loads(stream)
    assert type(back) is type(s) and back.storage == s.storage
    assert back == s and plain(back) == text
    assert back.read(lambda v: True) and not back.closed


@pytest.mark.parametrize("kind", TYPES)
def test_plain_pickle_and_copyreg_stay_refused(kind: str, forking: Any) -> None:
    s = make(kind, os.urandom(16))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(s, protocol)
    assert type(s) not in copyreg.dispatch_table

    class Copyreg(pickle.Pickler):
        dispatch_table = copyreg.dispatch_table.copy()

    with pytest.raises(TypeError, match="pickle"):
        Copyreg(io.BytesIO()).dump(s)
    c = copy.deepcopy(s)  # copies stay secure copies
    assert c == s and c is not s


def test_pydantic_model_with_a_secret_crosses_without_plaintext(
    forking: Any,
) -> None:
    if Settings is None:
        pytest.skip("needs pydantic")
    text = os.urandom(16).hex()
    m = Settings(api_key=text, name="svc")
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(m)
    stream = bytes(forking.dumps(m))
    assert text.encode() not in stream
    back = forking.loads(stream)
    assert back.api_key == text and back.name == "svc"
    assert back.api_key.storage == m.api_key.storage


@pytest.mark.storage("any")
def test_import_hook_registers_when_multiprocessing_comes_later() -> None:
    out = ok(
        child(
            """
            import sys, memsafe
            from memsafe import _mp
            print("loaded", "multiprocessing.reduction" in sys.modules)
            import multiprocessing.reduction as red
            for t in (memsafe.SecretBytes, memsafe.SecretStr, memsafe.MemSafe):
                assert red.ForkingPickler._extra_reducers[t] is _mp._reduce, t
            assert not any(isinstance(f, _mp._Hook) for f in sys.meta_path)
            assert not isinstance(red.__spec__.loader, _mp._Loader)
            assert not isinstance(red.__loader__, _mp._Loader)
            s = memsafe.SecretBytes(b"k" * 40)
            assert b"kkkk" not in red.ForkingPickler.dumps(s)
            print("ok")
            """
        )
    )
    assert out.split() == ["loaded", "False", "ok"]


@pytest.mark.storage("any")
def test_registered_at_once_when_multiprocessing_came_first() -> None:
    out = ok(
        child(
            """
            import sys, multiprocessing.reduction as red, memsafe
            from memsafe import _mp
            assert red.ForkingPickler._extra_reducers[memsafe.SecretStr] is _mp._reduce
            print(any(isinstance(f, _mp._Hook) for f in sys.meta_path))
            """
        )
    )
    assert out.split() == ["False"]


def test_platform_without_fd_passing_refuses_clearly(forking: Any) -> None:
    """Windows multiprocessing has no DupFd: the reducer refuses with a
    TypeError naming the platform and what to do."""

    class NoFds(forking):  # type: ignore[misc, valid-type]
        _extra_reducers: ClassVar[dict[type, Any]] = {}

    _mp.register(types.SimpleNamespace(ForkingPickler=NoFds))  # type: ignore[arg-type]
    before = fds()
    with pytest.raises(TypeError, match="load the secret in the other process"):
        NoFds.dumps(memsafe.SecretBytes(b"k" * 32))
    assert fds() == before


# ---- limits and failures: nothing partial, no descriptor leaked -----------


@pytest.mark.parametrize("n", [0, 1, 65536, 65537, _mp.MAX_SIZE])
def test_sizes_up_to_the_maximum_arrive_whole(n: int, forking: Any) -> None:
    s = memsafe.SecretBytes.random(n) if n else memsafe.SecretBytes(b"")
    before = fds()
    back = forking.loads(forking.dumps(s))
    assert len(back) == n and back == s
    assert fds() == before


@pytest.mark.parametrize("kind", TYPES)
def test_over_the_maximum_raises_in_the_sender(kind: str, forking: Any) -> None:
    n = _mp.MAX_SIZE + 1
    s = make(kind, bytes(n // 2 + 1)) if kind == "SecretStr" else make(kind, bytes(n))
    before = fds()
    with pytest.raises(ValueError, match="at most 1048576 bytes"):
        forking.dumps(s)
    assert fds() == before


def test_pipe_that_cannot_grow_refuses_before_writing(
    forking: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("no F_SETPIPE_SZ here")
    real = fcntl.fcntl
    writes: list[int] = []

    def refuse(fd: int, cmd: int, *args: Any) -> Any:
        if cmd == fcntl.F_SETPIPE_SZ:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real(fd, cmd, *args)

    real_write = os.write

    def count(fd: int, data: Any) -> int:
        writes.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(fcntl, "fcntl", refuse)
    monkeypatch.setattr(os, "write", count)
    s = memsafe.SecretBytes.random(65537)
    before = fds()
    with pytest.raises(ValueError, match=r"fs\.pipe-max-size"):
        forking.dumps(s)
    assert fds() == before and writes == []


def test_full_pipe_where_capacity_is_unknown_sends_nothing(
    forking: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the capacity cannot be asked (macOS), the non-blocking write
    finds the pipe full: ValueError, both ends closed, nothing sent."""
    monkeypatch.setattr(_mp, "_make_room", lambda *a: None)
    s = memsafe.SecretBytes.random(1 << 20)
    before = fds()
    with pytest.raises(ValueError, match="the pipe is full"):
        forking.dumps(s)
    assert fds() == before


def test_closed_secret_raises_and_leaks_nothing(forking: Any) -> None:
    s = memsafe.SecretBytes(b"k" * 32)
    s.close()
    before = fds()
    with pytest.raises(ValueError):
        forking.dumps(s)
    assert fds() == before


SETTLED_FDS = """
import os, time
def open_fds():
    names = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink("/proc/self/fd/" + name).endswith("/fd"):
                names.add(int(name))
        except OSError:
            pass
    return names
def fds():   # once the resource sharer's thread is done closing
    last, same = open_fds(), 0
    while same < 5:
        time.sleep(0.01)
        now = open_fds()
        same = same + 1 if now == last else 0
        last = now
    return last
"""


@pytest.mark.storage("any")
@helpers.linux_only
def test_descriptor_exhaustion_raises_in_the_sender_and_leaks_nothing() -> None:
    """Under a lowered RLIMIT_NOFILE, with 0 to 5 descriptors free: the send
    either works whole or raises OSError(EMFILE) leaving the descriptor
    table as it was; after the first send that works, the table only ever
    grows by the resource sharer's listener (started once)."""
    out = ok(
        child(
            SETTLED_FDS
            + """
import errno, resource, memsafe
from multiprocessing.reduction import ForkingPickler as F
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
s = memsafe.SecretBytes.random(32)
start = fds()
listening = None
for free in range(6):
    before = fds()
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(before) + 1 + free, hard))
    try:
        data = F.dumps(s)
    except OSError as e:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert e.errno == errno.EMFILE, e
        assert fds() == before, (free, before, fds())
        print(free, "EMFILE")
        continue
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert F.loads(data) == s
    after = fds()
    listening = after if listening is None else listening
    assert after == listening, (free, listening, after)
    print(free, "sent", len(after - start))
"""
        )
    )
    lines = [line.split() for line in out.strip().splitlines()]
    assert lines[0] == ["0", "EMFILE"] and lines[1] == ["1", "EMFILE"]
    sent = [x for x in lines if x[1] == "sent"]
    assert sent and sent[-1][0] == "5"
    assert all(x[1] == "sent" for x in lines[lines.index(sent[0]) :])


@pytest.mark.storage("any")
def test_spawned_child_args_leave_no_descriptor_behind() -> None:
    """Process(args=...) under spawn and forkserver keeps the pipe's read end
    open until the child is launched (it passes that very descriptor);
    once the Process is closed the parent holds nothing of it."""
    out = ok(
        child(
            SETTLED_FDS
            + textwrap.dedent(
                """
            import gc, os, multiprocessing as mp, memsafe
            import _mp_workers as w
            for method in ("spawn", "forkserver"):
                ctx = mp.get_context(method)
                s = memsafe.SecretBytes.random(32)
                for round in range(2):   # the first starts the helpers
                    before = fds()
                    a, b = ctx.Pipe()
                    p = ctx.Process(target=w.echo_args, args=(b, s))
                    p.start()
                    assert a.recv() == w.describe(s)
                    p.join()
                    p.close()
                    a.close(); b.close()
                    del p
                    gc.collect()
                print(method, sorted(fds() - before))
            """
            )
        )
    )
    assert out.split() == ["spawn", "[]", "forkserver", "[]"]


# ---- the receiving child at rest: no plaintext, protections in place ------


@helpers.linux_only
@helpers.not_sanitized
@pytest.mark.parametrize(
    "method,control",
    [("spawn", False), ("forkserver", False), ("fork", False), ("spawn", True)],
)
def test_receiver_and_sender_hold_no_plaintext_at_rest(
    method: str, control: bool, storage: str, tmp_path: pathlib.Path
) -> None:
    import test_leak_scan as ls

    secret = ls.text_secret(32)
    (tmp_path / "secret").write_bytes(secret)
    env = ls.child_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, _mp_workers as w; "
            "w.leak_sender(sys.argv[1], sys.argv[2], sys.argv[3] == '1')",
            str(tmp_path / "secret"),
            method,
            "1" if control else "0",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            pytest.fail(proc.communicate(timeout=60)[1].decode())
        info = json.loads(line)
        receiver = ls.scan(info["receiver"], [secret])
        sender = ls.scan(info["sender"], [secret])
        flags = [_kernel.mapping_at(addr, info["receiver"]) for addr in info["pages"]]
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    n = 6 if method != "fork" else 3
    assert info["types"] == list(TYPES) * (n // 3)
    assert info["storage"] == [storage] * n
    for mapping in flags:
        assert mapping is not None and {"lo", "dd"} <= mapping.vmflags, mapping
    assert receiver.scanned > 4 << 20 and {"[heap]", "[stack]"} <= receiver.areas
    assert sender.full == 0 and sender.pieces == 0, sender.where
    if control:
        assert receiver.full >= n, receiver
    else:
        assert receiver.full == 0 and receiver.pieces == 0, receiver.where
