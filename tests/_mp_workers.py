"""The processes of tests/test_mp_transport.py.

An importable module (not the test module itself) so that spawn and
forkserver children can unpickle the functions they run; the tests start a
fresh interpreter (helpers.run_child) that imports it, so multiprocessing
never forks the pytest process itself.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.queues
import os
import sys
from typing import Any

import memsafe
from memsafe._memsafe import _secretstr_from_utf8

TIMEOUT = 60

Desc = list[Any]


def describe(s: Any) -> Desc:
    """Type, engine, sha256 of the content and length of a secret (its
    plaintext never leaves the window)."""
    with s.read() as view:
        digest = hashlib.sha256(view).hexdigest()
    return [type(s).__name__, s.storage, digest, len(s)]


def originals(engine: str) -> list[Any]:
    """One secret of each type, in the given engine."""
    return [
        memsafe.SecretBytes.random(32, storage=engine),
        memsafe.SecretStr("pässwörd " + os.urandom(8).hex(), storage=engine),
        memsafe.MemSafe(os.urandom(16), storage=engine),
    ]


def made_in_worker(engine: str) -> tuple[Any, Desc]:
    """A secret made in a pool worker, sent back to the parent."""
    s = memsafe.SecretBytes.random(32, storage=engine)
    return s, describe(s)


def echo(
    q: multiprocessing.queues.Queue[Any],
    conn: multiprocessing.connection.Connection,
    *args: Any,
) -> None:
    """Describe what arrives as args, through q and through conn; send the
    descriptions back, then the secrets themselves."""
    out: dict[str, list[Desc]] = {"args": [describe(a) for a in args]}
    out["queue"] = [describe(q.get(timeout=TIMEOUT)) for _ in range(3)]
    got = [conn.recv() for _ in range(3)]
    out["connection"] = [describe(s) for s in got]
    conn.send(out)
    for s in got:
        conn.send(s)
    conn.recv()


def echo_args(conn: multiprocessing.connection.Connection, s: Any) -> None:
    """Send back the description of the secret given as an argument."""
    conn.send(describe(s))


def other_engine(engine: str) -> str:
    return "sealed" if engine == "guarded" else "guarded"


def run_matrix(method: str, engine: str) -> None:
    """Send one secret of each type through every API under one start
    method; print the descriptions as JSON.

    The default engine here and in every child is the other one, so a
    secret that arrives in `engine` kept its own."""
    other = other_engine(engine)
    memsafe.set_default_storage(other)
    os.environ["MEMSAFE_STORAGE"] = other
    ctx = mp.get_context(method)
    secrets = originals(engine)
    res: dict[str, Any] = {"want": [describe(s) for s in secrets]}

    q = ctx.Queue()
    a, b = ctx.Pipe()
    # Under fork, Process(args=...) is inherited, not pickled (see
    # test_fork_process_args_follow_the_fork_policy).
    args = () if method == "fork" else tuple(secrets)
    p = ctx.Process(target=echo, args=(q, b, *args))
    p.start()
    for s in secrets:
        q.put(s)
    for s in secrets:
        a.send(s)
    res.update(a.recv())
    res["back"] = [describe(a.recv()) for _ in range(3)]
    a.send(None)
    p.join(TIMEOUT)
    res["exitcode"] = p.exitcode

    with ctx.Pool(1) as pool:
        res["pool_map"] = pool.map(describe, secrets)
        res["pool_apply"] = [pool.apply(describe, (s,)) for s in secrets]
        back, seen = pool.apply(made_in_worker, (engine,))
        res["pool_return"] = [describe(back), seen]
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        res["executor"] = [ex.submit(describe, s).result(TIMEOUT) for s in secrets]
    print(json.dumps(res))


# ---- leak scan -------------------------------------------------------------


def leak_receiver(
    conn: multiprocessing.connection.Connection, control: bool, *args: Any
) -> None:
    """Receive secrets (args and conn), use them, report where they live,
    wait.  With control, keep a bytes copy of each on the heap."""
    got = [*args, conn.recv(), conn.recv(), conn.recv()]
    keep = [s.read(bytes) for s in got] if control else []
    for s in got:
        s.read(lambda v: hashlib.sha256(v).digest())
    pages = []
    for s in got:
        info = s._region_info()
        pages.append(
            int(info["data"] if info["storage"] == "guarded" else info["arena"])
        )
    conn.send(
        {
            "receiver": os.getpid(),
            "pages": pages,
            "storage": [s.storage for s in got],
            "types": [type(s).__name__ for s in got],
            "kept": len(keep),
        }
    )
    conn.recv()


def leak_sender(path: str, method: str, control: bool) -> None:
    """Read the secret from path straight into secret memory, send it (as
    each type) to a receiver started with `method`, print both pids and the
    receiver's report, wait for a line on stdin."""
    key = memsafe.SecretBytes.from_file(path)
    password = _secretstr_from_utf8(memsafe.SecretStr, key)
    buf = memsafe.MemSafe(key)
    ctx = mp.get_context(method)
    a, b = ctx.Pipe()
    args = () if method == "fork" else (key, password, buf)
    p = ctx.Process(target=leak_receiver, args=(b, control, *args))
    p.start()
    for s in (key, password, buf):
        a.send(s)
    info = a.recv()
    info["sender"] = os.getpid()
    print(json.dumps(info), flush=True)
    sys.stdin.readline()
    a.send(None)
    p.join(TIMEOUT)
    sys.exit(p.exitcode)


# ---- failures in the sender ------------------------------------------------


def receive_all(conn: multiprocessing.connection.Connection) -> None:
    """Describe every secret that arrives on conn until None."""
    while True:
        s = conn.recv()
        if s is None:
            return
        conn.send(describe(s))


def run_oversize(method: str) -> None:
    """Secrets over the maximum sent through Connection.send, Pool.apply,
    ProcessPoolExecutor.submit and Queue.put: print what each sender saw
    and what the receiver got next (a small secret sent after the refused
    one)."""
    from memsafe import _mp

    ctx = mp.get_context(method)
    big = memsafe.SecretBytes(bytes(_mp.MAX_SIZE + 1))
    small = memsafe.SecretBytes.random(16)
    res: dict[str, Any] = {"small": describe(small)}
    a, b = ctx.Pipe()
    p = ctx.Process(target=receive_all, args=(b,))
    p.start()
    try:
        a.send(big)
        res["connection"] = "sent"
    except ValueError as e:
        res["connection"] = f"ValueError: {e}"
    a.send(small)
    res["connection_next"] = a.recv()
    a.send(None)
    p.join(TIMEOUT)
    with ctx.Pool(1) as pool:
        try:
            pool.apply(describe, (big,))
            res["pool"] = "sent"
        except ValueError as e:
            res["pool"] = f"ValueError: {e}"
        res["pool_next"] = pool.apply(describe, (small,))
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        try:
            ex.submit(describe, big).result(TIMEOUT)
            res["executor"] = "sent"
        except ValueError as e:
            res["executor"] = f"ValueError: {e}"
        res["executor_next"] = ex.submit(describe, small).result(TIMEOUT)
    # Queue.put pickles later, in the queue's feeder thread: the error is
    # reported there (on stderr) and the item dropped.
    q = ctx.Queue()
    q.put(big)
    q.put(small)
    res["queue_next"] = describe(q.get(timeout=TIMEOUT))
    print(json.dumps(res))


def secretmem_of(s: Any) -> list[Any]:
    """describe() plus whether the secret sits in memfd_secret memory."""
    return [*describe(s), s.secretmem]


def run_secretmem(method: str, engine: str) -> None:
    """A secret in memfd_secret memory, sent to a worker that prefers it."""
    memsafe.set_secretmem("require")
    os.environ["MEMSAFE_SECRETMEM"] = "require"
    ctx = mp.get_context(method)
    s = memsafe.SecretBytes.random(32, storage=engine)
    with ctx.Pool(1) as pool:
        got = pool.apply(secretmem_of, (s,))
    print(json.dumps({"want": secretmem_of(s), "got": got}))
