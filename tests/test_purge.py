"""Purge: memsafe.purge() on request, every live secret at interpreter exit,
and before a signal takes effect after purge_on_signals().

The exit tests prove the wipe in the process's own memory at the moment it
ends: the child runs under gdb, which stops it at the exit_group system call
(or at the signal that ends it) and reads the secret's memory through
ptrace, which also reads no-access and no-dump pages.  The controls - a
child that leaves with os._exit(), which runs nothing, and a SIGTERM without
purge_on_signals() - must find the secret there, or the test proves
nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import child_env, linux_only, not_sanitized, ok, run_child

# ---- purge() ----------------------------------------------------------------
# purge() wipes every secret of the process, the test runner's included:
# each of these runs in a child.

PURGE_PRELUDE = """
import os, sys, threading, memsafe
def read_self(addr, n):
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        return os.pread(fd, n, addr)
    finally:
        os.close(fd)
def stored(secret):
    info = secret._region_info()
    if info["storage"] == "guarded":
        return info["secret"], info["len"]
    return info["slot"], info["slot_len"]
"""


def purge_child(code: str) -> list[str]:
    import textwrap

    return ok(run_child(PURGE_PRELUDE + textwrap.dedent(code))).split()


@linux_only
def test_purge_wipes_every_secret_and_later_use_raises() -> None:
    out = purge_child(
        """
        secrets = [
            memsafe.SecretBytes(os.urandom(32)),
            memsafe.MemSafe(os.urandom(300)),
            memsafe.SecretStr("hunter2 \u20ac"),
            memsafe.SecretBytes.random(5000),
        ]
        where = [stored(s) for s in secrets]
        print(all(read_self(a, n) != bytes(n) for a, n in where))
        memsafe.purge()
        for s, (a, n) in zip(secrets, where):
            print(read_self(a, n) == bytes(n))
            for use in (lambda: s.read(bytes), lambda: len(s)):
                try:
                    use()
                    print("usable")
                except ValueError as e:
                    print("purged" in str(e))
            print(s.closed, repr(s).startswith("<closed"))
            s.close()  # harmless
        fresh = memsafe.SecretBytes(b"after the purge")
        print(fresh.read(bytes) == b"after the purge")
        """
    )
    assert out == ["True"] * (1 + 4 * 5 + 1), out


@linux_only
def test_purge_covers_secrets_in_cycles_and_unreachable_ones() -> None:
    out = purge_child(
        """
        import gc
        class Holder:
            pass
        a, b = Holder(), Holder()
        a.other, b.other = b, a
        a.key = memsafe.SecretBytes(b"in a cycle" * 4)
        where = stored(a.key)
        gc.disable()
        del a, b  # unreachable, not yet collected
        memsafe.purge()
        print(read_self(*where) == bytes(where[1]))
        """
    )
    assert out == ["True"]


def test_purge_while_another_thread_is_inside_a_window() -> None:
    """The other thread reads zeros from then on (never a crash), and
    leaving its window raises ValueError: what it computed used wiped
    memory."""
    out = purge_child(
        """
        k = memsafe.SecretBytes(b"s" * 64)
        inside, purged = threading.Event(), threading.Event()
        seen = []
        def worker():
            try:
                with k.read() as view:
                    seen.append(bytes(view))
                    inside.set()
                    purged.wait(30)
                    seen.append(bytes(view))
            except ValueError as e:
                seen.append(e)
        t = threading.Thread(target=worker)
        t.start()
        inside.wait(30)
        memsafe.purge()
        purged.set()
        t.join(30)
        print(seen[0] == b"s" * 64, seen[1] == bytes(64),
              isinstance(seen[2], ValueError) and "purged" in str(seen[2]))
        """
    )
    assert out == ["True", "True", "True"]


def test_purge_remakes_the_sealing_key() -> None:
    out = purge_child(
        """
        before = memsafe._memsafe._stats()["keys_made"]
        k = memsafe.SecretBytes(b"x" * 10, storage="sealed")
        memsafe.purge()
        k2 = memsafe.SecretBytes(b"y" * 10, storage="sealed")
        print(k2.read(bytes) == b"y" * 10)
        print(memsafe._memsafe._stats()["keys_made"] >= before + 2)
        try:
            k.read(bytes)
            print("usable")
        except ValueError as e:
            print("purged" in str(e))
        """
    )
    assert out == ["True", "True", "True"]


# ---- at exit, read back through ptrace --------------------------------------

CHILD = r"""
import json, os, signal, sys, threading, time
import memsafe
mode, out = sys.argv[1], sys.argv[2]
if "signals" in mode:
    memsafe.purge_on_signals()
guarded = memsafe.SecretBytes.random(48, storage="guarded")
sealed = memsafe.SecretBytes.random(48, storage="sealed")
# A second guarded secret, a mutable one (copied secret to secret: no
# plaintext ever passes through a Python object).
text = memsafe.MemSafe(memsafe.SecretBytes.random(40), storage="guarded")
places = []
for s in (guarded, text):
    i = s._region_info()
    places.append([i["secret"], i["len"]])
i = sealed._region_info()
places.append([i["slot"], i["slot_len"]])
st = memsafe._memsafe._stats()
places += [[a, 32] for a in st["key_halves"] if a]
# The plaintext goes to the parent through a file: os.write of a view, so
# no copy of it is made on this process's heap.
with open(os.path.join(out, "secret.bin"), "wb", buffering=0) as f:
    for s in (guarded, sealed, text):
        with s.read() as v:
            f.write(v)
if "daemon" in mode:
    ready = threading.Event()
    def hold():
        with sealed.read() as v:   # a sealed window: plaintext in a slot
            places.append([sealed._region_info()["plaintext"], 48])
            with guarded.read() as w:
                ready.set()
                while True:
                    time.sleep(1)
    threading.Thread(target=hold, daemon=True).start()
    ready.wait()
with open(os.path.join(out, "places.json"), "w") as f:
    json.dump(places, f)
if "exception" in mode:
    raise RuntimeError("uncaught on purpose")
if "_exit" in mode:
    os._exit(0)
if "sigterm" in mode:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
"""

# gdb, at the stop: read the secret's own places (None where nothing is
# mapped any more), and search every mapping of the process - readable or
# not, ptrace reads them all - for any 16-byte piece of each plaintext.
DUMP = r"""
import gdb, json, os
out = os.environ["MEMSAFE_DUMP_DIR"]
inf = gdb.selected_inferior()
with open(os.path.join(out, "places.json")) as f:
    places = json.load(f)
with open(os.path.join(out, "secret.bin"), "rb") as f:
    secret = f.read()
plain = [secret[:48], secret[48:96], secret[96:]]
pieces = [[p[i:i + 16] for i in range(0, len(p) - 15, 8)] for p in plain]
with open("/proc/%d/maps" % inf.pid) as f:
    maps = f.read().splitlines()
def read(a, n):
    try:
        return bytes(inf.read_memory(a, n))
    except gdb.MemoryError:
        return None
hits = [0, 0, 0]
for line in maps:
    span, perms = line.split()[:2]
    if line.endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]")):
        continue
    start, end = (int(x, 16) for x in span.split("-"))
    if end - start > (1 << 30):
        continue
    pos = start
    while pos < end:
        n = min(1 << 20, end - pos)
        data = read(pos, n + 15 if pos + n + 15 <= end else n)
        if data is not None:
            for k, ps in enumerate(pieces):
                if any(p in data for p in ps):
                    hits[k] += 1
        pos += n
data = []
for a, n in places:
    d = read(a, n)
    data.append(None if d is None else d.hex())
with open(os.path.join(out, "memory.json"), "w") as f:
    json.dump({"maps": len(maps), "data": data, "hits": hits}, f)
"""


def gdb_available() -> bool:
    return shutil.which("gdb") is not None


def run_to_the_end(tmp_path: Path, mode: str, stops: int) -> dict[str, object]:
    """Run CHILD under gdb; dump its memory at the `stops`-th stop."""
    (tmp_path / "dump.py").write_text(DUMP)
    (tmp_path / "child.py").write_text(CHILD)
    cmds = ["-ex", "set pagination off", "-ex", "set auto-load safe-path /"]
    cmds += ["-ex", "catch syscall exit_group"]
    cmds += ["-ex", "handle SIGTERM stop pass", "-ex", "run"]
    for _ in range(stops - 1):
        cmds += ["-ex", "continue"]
    cmds += ["-ex", f"source {tmp_path / 'dump.py'}", "-ex", "kill"]
    env = child_env({"MEMSAFE_DUMP_DIR": str(tmp_path)})
    proc = subprocess.run(
        ["gdb", "-batch", "-nx", *cmds, "--args", sys.executable,
         str(tmp_path / "child.py"), mode, str(tmp_path)],
        env=env, capture_output=True, timeout=180,
    )
    memory = tmp_path / "memory.json"
    assert memory.exists(), proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:]
    result = json.loads(memory.read_text())
    assert result["maps"] > 10, "the process was already gone: proves nothing"
    result["secret"] = (tmp_path / "secret.bin").read_bytes()
    return result


def found(result: dict[str, object]) -> list[bool]:
    """[guarded plaintext anywhere, MemSafe plaintext anywhere, sealed
    ciphertext or key left at their places, sealed plaintext anywhere]."""
    hits = result["hits"]
    data = result["data"]
    assert isinstance(hits, list) and isinstance(data, list)
    sealed_places = [bytes.fromhex(d) for d in data[2:] if d is not None]
    left = any(d != bytes(len(d)) for d in sealed_places)
    return [hits[0] > 0, hits[2] > 0, left, hits[1] > 0]


needs_gdb = pytest.mark.skipif(not gdb_available(), reason="needs gdb")


def exit_test(fn):  # type: ignore[no-untyped-def]
    """Linux, gdb, no sanitizer; each child names its engines itself."""
    for mark in (linux_only, not_sanitized, needs_gdb, pytest.mark.storage("any")):
        fn = mark(fn)
    return fn


@exit_test
@pytest.mark.parametrize(
    ("mode", "stops"),
    [("normal", 1), ("exception", 1), ("daemon", 1), ("signals-sigterm", 2)],
)
def test_every_secret_is_wiped_when_the_process_ends(
    tmp_path: Path, mode: str, stops: int
) -> None:
    """Normal exit, an uncaught exception, daemon threads inside open
    windows (guarded and sealed) at exit, and SIGTERM after
    purge_on_signals(): nothing of any secret is left at the last moment."""
    result = run_to_the_end(tmp_path, mode, stops)
    assert found(result) == [False, False, False, False], (mode, result)


@exit_test
@pytest.mark.parametrize(("mode", "stops"), [("os_exit", 1), ("sigterm", 1)])
def test_controls_find_the_secret(tmp_path: Path, mode: str, stops: int) -> None:
    """os._exit() runs no code, and without purge_on_signals() a SIGTERM
    ends the process with everything in place: the same reading finds the
    plaintext (or, sealed, the ciphertext and the key) there."""
    result = run_to_the_end(tmp_path, mode, stops)
    g, t, sealed_left, _ = found(result)
    assert g and t and sealed_left, result


# ---- signals: the usual effect still happens --------------------------------


@linux_only
@not_sanitized
def test_sigint_still_raises_keyboard_interrupt_after_purging() -> None:
    proc = run_child(
        """
        import os, signal, memsafe
        memsafe.purge_on_signals()
        k = memsafe.SecretBytes(b"k" * 32)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**6):
                pass
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        try:
            k.read(bytes)
        except ValueError as e:
            print("purged" in str(e))
        """
    )
    assert ok(proc).split() == ["KeyboardInterrupt", "True"]


@linux_only
@not_sanitized
def test_default_action_and_faulthandler_are_kept() -> None:
    """SIGTERM still terminates (default action); with faulthandler on, a
    segfault still prints its traceback and kills with SIGSEGV."""
    term = run_child(
        """
        import os, signal, memsafe
        memsafe.purge_on_signals()
        k = memsafe.SecretBytes(b"k" * 32)
        os.kill(os.getpid(), signal.SIGTERM)
        print("survived")
        """
    )
    assert term.returncode == -signal.SIGTERM and b"survived" not in term.stdout
    segv = run_child(
        """
        import ctypes, faulthandler, memsafe
        faulthandler.enable()
        memsafe.purge_on_signals()
        k = memsafe.SecretBytes(b"k" * 32)
        ctypes.string_at(8)
        """
    )
    assert segv.returncode == -signal.SIGSEGV
    assert b"Fatal Python error: Segmentation fault" in segv.stderr


@linux_only
@not_sanitized
def test_ignored_signal_stays_ignored() -> None:
    proc = run_child(
        """
        import os, signal, memsafe
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        memsafe.purge_on_signals()
        k = memsafe.SecretBytes(b"k" * 32)
        os.kill(os.getpid(), signal.SIGHUP)
        print(k.read(bytes) == b"k" * 32)
        """
    )
    assert ok(proc).split() == ["True"]


@linux_only
@not_sanitized
def test_signal_purge_while_other_threads_hold_windows_and_locks() -> None:
    """The signal path takes no lock a signalled thread may hold: with
    threads creating and freeing secrets (the registry's lock) and holding
    windows, SIGTERM still ends the process promptly."""
    proc = run_child(
        """
        import os, signal, threading, time, memsafe
        memsafe.purge_on_signals()
        stop = False
        def churn(storage):
            while True:
                k = memsafe.SecretBytes.random(40, storage=storage)
                with k.read():
                    pass
                k.close()
        def hold():
            k = memsafe.SecretBytes.random(40)
            with k.read():
                time.sleep(60)
        for s in ("guarded", "sealed", "guarded", "sealed"):
            threading.Thread(target=churn, args=(s,), daemon=True).start()
        threading.Thread(target=hold, daemon=True).start()
        time.sleep(0.5)
        for _ in range(20):          # from a thread that may hold claims too
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
        """,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr.decode()


@linux_only
def test_purge_on_signals_is_idempotent_and_counts() -> None:
    proc = run_child(
        """
        import memsafe
        a = memsafe.purge_on_signals()
        b = memsafe.purge_on_signals()
        print(a, b)
        """
    )
    a, b = ok(proc).split()
    assert a == b == "9"


# ---- multiprocessing -----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_multiprocessing_fork_workers_purge_at_their_end() -> None:
    """multiprocessing ends a fork worker with os._exit after running its
    finalizers: memsafe registers purge() among them in every fork child."""
    proc = run_child(
        """
        import multiprocessing as mp, multiprocessing.util as util, memsafe
        def work(q):
            regs = [f for f in util._finalizer_registry.values()
                    if f._callback is memsafe.purge]
            q.put(len(regs))
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=work, args=(q,))
        p.start(); print(q.get(timeout=60)); p.join()
        """
    )
    assert ok(proc).split() == ["1"]
