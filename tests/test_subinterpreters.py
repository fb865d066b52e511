"""Subinterpreters: memsafe imports and works in every interpreter of a
process, each with its own objects (heap types, module state) over the one
process-wide store.

Every test runs in a child process (a fault there must not take pytest
down, and the purge and exit tests need a process of their own).  The
3.14 tests use concurrent.interpreters and InterpreterPoolExecutor
(isolated interpreters, each with its own GIL); the low-level tests use
_interpreters (3.13) or _xxsubinterpreters (3.10-3.12), where they exist.
The child inherits MEMSAFE_STORAGE, so each test runs over both engines.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import ok, run_child

HAVE_INTERPRETERS = importlib.util.find_spec("concurrent.interpreters") is not None
needs_314 = pytest.mark.skipif(
    not HAVE_INTERPRETERS,
    reason="concurrent.interpreters and InterpreterPoolExecutor are new in 3.14",
)

LOW_LEVEL = next(
    (
        name
        for name in ("_interpreters", "_xxsubinterpreters")
        if importlib.util.find_spec(name) is not None
    ),
    None,
)
needs_low_level = pytest.mark.skipif(
    LOW_LEVEL is None,
    reason="no _interpreters / _xxsubinterpreters module in this build",
)

# The child's prelude: run code in a new interpreter, raising if it fails.
PRELUDE = """
import memsafe
from concurrent import interpreters
stats = memsafe._memsafe._stats

def live():
    # live secrets: guarded ones are a mapping each; sealed ones a slot
    # (their arenas stay mapped for reuse)
    s = stats()
    sealed = memsafe.get_default_storage() == "sealed"
    return s["cipher_slots"] if sealed else s["mappings"]

def sub_exec(interp, code):
    interp.exec(code)  # raises interpreters.ExecutionFailed on an error
"""


def undent(code: str) -> str:
    """Drop the 8 spaces of a test's own indentation outside the
    subinterpreters' code (in ''' quotes, from column 0), which
    textwrap.dedent cannot do."""
    out, inner = [], False
    for line in code.splitlines():
        out.append(line if inner else line[8:] if line.startswith(" " * 8) else line)
        inner ^= line.count("'''") % 2 == 1
    return "\n".join(out)


def child(code: str, cwd: str | None = None) -> str:
    """Run PRELUDE + code in a child Python; its stdout."""
    return ok(run_child(PRELUDE + undent(code), cwd=cwd))


@needs_314
def test_import_and_use_in_a_subinterpreter() -> None:
    out = child(
        """
        interp = interpreters.create()
        q = interpreters.create_queue()
        interp.prepare_main(q=q, engine=memsafe.get_default_storage())
        sub_exec(interp, '''
import hashlib
import memsafe
assert memsafe.get_default_storage() == engine  # process-wide settings
k = memsafe.SecretBytes.random(32)
assert len(k) == 32 and k.storage == engine
f = memsafe.SecretBytes(b"kw", wipe_source=False, storage=engine, fork="inherit")
assert f.fork == "inherit" and f == b"kw"
with k.read() as v:
    d1 = hashlib.sha256(v).digest()
d2 = k.read(lambda v: hashlib.sha256(v).digest())
assert d1 == d2
m = memsafe.MemSafe(4)
with m.write() as v:
    v[:] = b"abcd"
assert m == b"abcd" and memsafe.compare_digest(m, b"abcd")
s = memsafe.SecretStr("pässwörd")
assert s == "pässwörd" and len(s) == 8
with s.plaintext() as p:
    assert p == "pässwörd"
w = memsafe.SecretBytes.from_writer(3, lambda v: v.__setitem__(slice(None), b"xyz"))
assert w == b"xyz"
class Sub(memsafe.SecretBytes):
    pass
assert isinstance(Sub(b"x"), memsafe.Secret)
for x in (k, f, m, s, w):
    x.close()
q.put(True)
''')
        assert q.get(timeout=30) is True
        interp.close()
        print("ok")
        """
    )
    assert out.strip() == "ok"


@needs_314
def test_interpreter_pool_executor(tmp_path: Path) -> None:
    (tmp_path / "subwork.py").write_text(
        textwrap.dedent(
            """
            import hashlib
            import memsafe

            def digest(k, t):
                h = hashlib.sha256()
                with k.read() as v, t.read() as tv:
                    h.update(v)
                    h.update(tv)
                return h.digest()

            def use_secrets(i):
                k = memsafe.SecretBytes.random(32)
                t = memsafe.SecretStr("token-%d" % i)
                d = digest(k, t)
                same = digest(memsafe.SecretBytes(k), memsafe.SecretStr(t))
                k.close()
                t.close()
                return len(d), d == same, k.closed
            """
        )
    )
    out = child(
        """
        import sys
        sys.path.insert(0, ".")
        from concurrent.futures import InterpreterPoolExecutor
        from subwork import use_secrets
        mine = memsafe.SecretBytes(b"main's own secret")
        before = live()
        with InterpreterPoolExecutor(max_workers=3) as ex:
            results = list(ex.map(use_secrets, range(12)))
        assert results == [(32, True, True)] * 12, results
        assert mine == b"main's own secret"     # untouched by the workers
        assert stats()["purges"] == 0          # their exit purged nothing
        assert stats()["pools_consistent"]
        print("ok", live() == before)
        """,
        cwd=str(tmp_path),
    )
    assert out.strip() == "ok True"


@needs_314
def test_purge_in_one_interpreter_wipes_every_interpreter(storage: str) -> None:
    out = child(
        """
        interp = interpreters.create()
        q = interpreters.create_queue()
        interp.prepare_main(q=q)
        sub_exec(interp, '''
import memsafe
ks = [memsafe.SecretBytes(b"sub secret %d" % i) for i in range(5)]
''')
        mine = memsafe.SecretBytes(b"main secret")
        mapped = stats()["mappings"]           # all interpreters' memory
        memsafe.purge()                        # from the main interpreter
        wiped = stats()["purge_last_wiped"]
        sub_exec(interp, '''
for k in ks:
    try:
        k.read()
    except ValueError as e:
        assert "purged" in str(e), e
    else:
        raise AssertionError("a subinterpreter's secret survived purge()")
fresh = memsafe.SecretBytes(b"made after the purge")
assert fresh == b"made after the purge"
again = memsafe.SecretBytes(b"wiped from here")
''')
        try:
            mine.read()
        except ValueError as e:
            assert "purged" in str(e)
        else:
            raise AssertionError("main's secret survived purge()")
        mine = memsafe.SecretBytes(b"main secret 2")
        # and purge() in the subinterpreter wipes the main interpreter's
        sub_exec(interp, "memsafe.purge(); q.put(True)")
        assert q.get(timeout=30) is True
        try:
            mine.read()
        except ValueError as e:
            assert "purged" in str(e)
        else:
            raise AssertionError("purge() in a subinterpreter missed main's")
        interp.close()
        print(wiped, mapped)
        """
    )
    # one purge() wiped every mapping of secret memory of the process: the
    # main interpreter's secret and the subinterpreter's five (guarded: a
    # mapping each; sealed: the arenas that hold them)
    wiped, mapped = map(int, out.split())
    assert wiped == mapped and wiped >= (6 if storage == "guarded" else 1)


@needs_314
def test_types_and_exceptions_are_distinct_per_interpreter() -> None:
    out = child(
        """
        names = ["Secret", "MemSafe", "SecretBytes", "SecretStr", "Window",
                 "Plaintext", "LockError", "LockWarning", "PlaintextWarning"]
        interp = interpreters.create()
        q = interpreters.create_queue()
        interp.prepare_main(q=q, names=",".join(names))
        sub_exec(interp, '''
import memsafe
for n in names.split(","):
    q.put(id(getattr(memsafe, n)))
q.put(memsafe._memsafe._main_interpreter)
''')
        theirs = [q.get(timeout=30) for _ in names]
        assert q.get(timeout=30) is False
        mine = [id(getattr(memsafe, n)) for n in names]
        assert memsafe._memsafe._main_interpreter is True
        clash = [n for n, a, b in zip(names, mine, theirs) if a == b]
        assert not clash, clash
        interp.close()
        print("ok")
        """
    )
    assert out.strip() == "ok"


@needs_314
def test_passing_a_secret_to_another_interpreter_is_a_type_error() -> None:
    out = child(
        """
        from concurrent.futures import InterpreterPoolExecutor
        k = memsafe.SecretBytes(b"never crosses")
        interp = interpreters.create()
        q = interpreters.create_queue()
        attempts = {
            "queue": lambda: q.put(k),
            "call": lambda: interp.call(len, k),
            "prepare_main": lambda: interp.prepare_main(k=k),
            "pool": lambda: pool.submit(len, k).result(),
        }
        pool = InterpreterPoolExecutor(1)
        for name, attempt in attempts.items():
            try:
                attempt()
            except TypeError as e:
                print(name, type(e).__name__)
            else:
                raise AssertionError(name + " passed a secret across")
        assert k == b"never crosses"
        pool.shutdown()
        interp.close()
        """
    )
    got = dict(line.split() for line in out.splitlines())
    assert set(got) == {"queue", "call", "prepare_main", "pool"}
    # NotShareableError is a TypeError; a pickling route raises memsafe's own
    assert all(v in ("NotShareableError", "TypeError") for v in got.values()), got


def test_the_pickling_refusal_names_interpreters() -> None:
    import memsafe

    with (
        memsafe.SecretBytes(b"x") as k,
        pytest.raises(TypeError, match="another interpreter"),
    ):
        pickle.dumps(k)


@needs_314
def test_subinterpreters_with_their_own_gil_use_the_store_concurrently(
    tmp_path: Path,
) -> None:
    # The first import happens in four interpreters at once (the
    # process-wide set-up runs once), then they and the main thread
    # create, read and close secrets together.
    (tmp_path / "churn.py").write_text(
        textwrap.dedent(
            """
            import memsafe

            def churn(i, n=300):
                total = 0
                for j in range(n):
                    k = memsafe.SecretBytes.random(16 + j % 48)
                    with k.read() as v:
                        total += len(v)
                    m = memsafe.MemSafe(8)
                    with m.write() as v:
                        v[0] = j & 0xFF
                    m.close()
                    k.close()
                return total
            """
        )
    )
    code = """
        import sys, threading
        sys.path.insert(0, ".")
        from concurrent import interpreters
        interps = [interpreters.create() for _ in range(4)]
        errors = []
        def first_import(interp):
            try:
                interp.exec("import memsafe, churn")
            except Exception as e:
                errors.append(e)
        ts = [threading.Thread(target=first_import, args=(i,)) for i in interps]
        for t in ts: t.start()
        for t in ts: t.join()
        assert not errors, errors
        import memsafe, churn
        from concurrent.futures import ThreadPoolExecutor
        expected = sum(16 + j % 48 for j in range(300))
        with ThreadPoolExecutor(5) as ex:
            futs = [ex.submit(i.call, churn.churn, n) for n, i in enumerate(interps)]
            mine = churn.churn(99)
            got = [f.result() for f in futs]
        assert got == [expected] * 4 and mine == expected, (got, mine)
        st = memsafe._memsafe._stats()
        assert st["pools_consistent"] and st["purges"] == 0
        for i in interps: i.close()
        print("ok", st["pools_consistent"])
        """
    out = ok(run_child(undent(code), cwd=str(tmp_path)))
    assert out.split()[0] == "ok"


@needs_314
def test_a_subinterpreter_ending_frees_its_secrets_and_keeps_the_others() -> None:
    out = child(
        """
        mine = memsafe.SecretBytes(b"main's")
        base = live()
        interp = interpreters.create()
        sub_exec(interp, '''
import memsafe
held = [memsafe.SecretBytes.random(32) for _ in range(3)]
''')
        during = live()
        interp.close()
        after = live()
        assert mine == b"main's"
        assert stats()["purges"] == 0
        print(during > base, after == base)
        """
    )
    assert out.split() == ["True", "True"]


@needs_low_level
def test_low_level_subinterpreter_module() -> None:
    # 3.12/3.13 make isolated interpreters (own GIL) here; 3.10/3.11 legacy
    # ones sharing the GIL: memsafe imports and works in both kinds.  (No
    # hashlib in there: importing it in an isolated interpreter aborts
    # 3.12.1 at exit, memsafe or not.)
    code = f"""
        import {LOW_LEVEL} as low
        import memsafe
        mine = memsafe.SecretBytes(b"main's")
        interp = low.create()
        run = getattr(low, "run_string", None) or getattr(low, "exec")
        err = run(interp, '''
import memsafe
k = memsafe.SecretBytes.random(32)
with k.read() as v:
    assert len(v) == 32 and memsafe.compare_digest(k, v)
s = memsafe.SecretStr("x")
assert s == "x"
''')
        assert err is None, err
        low.destroy(interp)
        assert mine == b"main's"
        assert memsafe._memsafe._stats()["purges"] == 0
        print("ok")
        """
    assert ok(run_child(undent(code))).strip() == "ok"



@needs_314
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_fork_child_gets_no_plaintext_of_a_subinterpreters_secret(
    storage: str,
) -> None:
    out = child(
        """
        import os
        interp = interpreters.create()
        q = interpreters.create_queue()
        interp.prepare_main(q=q)
        sub_exec(interp, '''
import memsafe
k = memsafe.MemSafe(b"subinterpreter secret")
info = k._region_info()
guarded = info["storage"] == "guarded"
q.put(info["secret"] if guarded else info["slot"])
q.put(info["len"] if guarded else info["slot_len"])
''')
        addr, size = q.get(timeout=30), q.get(timeout=30)

        def peek():
            # /proc/self/mem ignores page protection: the kernel's view
            with open("/proc/self/mem", "rb") as mem:
                mem.seek(addr)
                return mem.read(size)

        control = peek()     # in this process the bytes are there
        # libc's fork (its atfork handlers, where memsafe wipes, run; the
        # child runs only the peek): os.fork() with a subinterpreter alive
        # crashes the child in CPython itself (python/cpython#139759)
        import ctypes
        pid = ctypes.CDLL(None, use_errno=True).fork()
        if pid == 0:
            os._exit(0 if peek() == bytes(size) else 1)
        _, status = os.waitpid(pid, 0)
        sub_exec(interp, 'assert k == b"subinterpreter secret"')
        interp.close()
        print(os.waitstatus_to_exitcode(status), control.hex())
        """
    )
    code, control = out.split()
    assert code == "0"  # the fork child saw only zeros there
    if storage == "guarded":
        assert bytes.fromhex(control) == b"subinterpreter secret"
    else:
        assert bytes.fromhex(control) != bytes(len(control) // 2)  # ciphertext


@needs_314
def test_a_subinterpreter_import_keeps_the_process_settings() -> None:
    # MEMSAFE_LOCK_POLICY is read by the process's first import only: a
    # later import in a subinterpreter must not reset what the program set.
    proc = run_child(
        undent(
            """
        import memsafe
        from concurrent import interpreters
        assert memsafe.get_lock_policy() == "warn"      # from the variable
        memsafe.set_lock_policy("off")
        interp = interpreters.create()
        interp.exec("import memsafe; assert memsafe.get_lock_policy() == 'off'")
        interp.close()
        print(memsafe.get_lock_policy())
        """
        ),
        env={"MEMSAFE_LOCK_POLICY": "warn"},
    )
    assert ok(proc).strip() == "off"
