"""memfd_secret (``memsafe.set_secretmem``), proven by the kernel's view.

With memfd_secret on, a secret's pages are removed from the kernel's direct
map.  These tests check what the kernel does with them, not what memsafe's
flags say:

- ``/proc/PID/mem`` reads fail with EIO, outside and inside windows, in the
  process itself and for a root reader; ``process_vm_readv`` and ptrace
  (gdb) fail too; a gcore dump holds no plaintext.  Every one of these
  has a positive control: with ``set_secretmem("off")`` the same read
  returns the plaintext (or, for the dump, a plain bytes copy is found).
- ``/proc/self/maps`` names the pages ``/secretmem (deleted)`` with shared
  permissions, which still follow the windows; smaps shows ``dc``
  (MADV_DONTFORK) instead of ``wf``; every mapping memsafe made (the sealed
  engine's key halves and arenas included) is memfd_secret.
- A fork child inherits none of it: no-access pages are reserved in its
  place, a view carried over from an open window faults, the secret raises
  ``ValueError``.
- The fallback when the kernel refuses (ENOSYS, through fault injection, or
  natively on kernels and tools without memfd_secret such as valgrind), the
  lock policy over RLIMIT_MEMLOCK, the self-check's report, bad input.

Kernel facts these tests rely on (Linux 6.x): ``process_vm_readv`` does not
read no-access pages even for ordinary memory (it does not force access as
``/proc/PID/mem`` and ptrace do), so its positive control is inside windows.

Most tests need a kernel that offers memfd_secret and are skipped elsewhere;
the fallback tests run everywhere: with fault injection
(``-DMEMSAFE_FAULT_INJECTION`` builds) on a kernel that has it, natively on
one that has not.
"""

from __future__ import annotations

import ctypes
import errno
import hmac
import inspect
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import (
    child_env,
    drop_ipc_lock,
    linux_only,
    memory_of,
    not_sanitized,
    ok,
    pages_of,
)

import memsafe
from memsafe import _kernel, _memsafe

pytestmark = linux_only

FEATURES = _memsafe._features()
OFFERED = bool(FEATURES["secretmem_offered"])
FAULTS = bool(FEATURES["fault_injection"])
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SECRETMEM = "/secretmem (deleted)"
PAGE = int(FEATURES["page_size"])

needs_secretmem = pytest.mark.skipif(
    not OFFERED,
    reason="this kernel does not offer memfd_secret (Linux 5.14+ with "
    "secretmem enabled; valgrind answers ENOSYS)",
)
needs_root = pytest.mark.skipif(
    not ROOT, reason="reads another process's memory: needs root (CAP_SYS_PTRACE)"
)
# The fallback tests need memfd_secret to fail: by fault injection where the
# kernel has it, by itself where it has not.
can_fail_secretmem = pytest.mark.skipif(
    OFFERED and not FAULTS,
    reason="needs a -DMEMSAFE_FAULT_INJECTION build (or a kernel without memfd_secret)",
)
needs_faults = pytest.mark.skipif(
    not FAULTS, reason="needs a -DMEMSAFE_FAULT_INJECTION build"
)


@pytest.fixture(autouse=True)
def restore_secretmem() -> Iterator[None]:
    """Every test leaves the mode as it found it (default: "off")."""
    before = memsafe.get_secretmem()
    try:
        yield
    finally:
        memsafe.set_secretmem(before)


def plaintext() -> bytes:
    """A fresh random secret: nothing else in any process matches it."""
    return secrets.token_bytes(48)


# ---- readers of memory (their source is given to child processes too) ----


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def read_mem(addr: int, n: int, pid: int | str = "self") -> bytes | int:
    """n bytes at addr through /proc/PID/mem, or the errno of the failure."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        return os.pread(fd, n, addr)
    except OSError as e:
        return e.errno or -1
    finally:
        os.close(fd)


def read_vm(addr: int, n: int, pid: int | None = None) -> bytes | int:
    """n bytes at addr through process_vm_readv(2), or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    call = libc.process_vm_readv
    call.restype = ctypes.c_ssize_t
    iov = ctypes.POINTER(_Iovec)
    call.argtypes = [
        ctypes.c_int,
        iov,
        ctypes.c_ulong,
        iov,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    buf = ctypes.create_string_buffer(n)
    local = _Iovec(ctypes.cast(buf, ctypes.c_void_p), n)
    remote = _Iovec(addr, n)
    target = os.getpid() if pid is None else pid
    got = call(target, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if got < 0:
        return ctypes.get_errno()
    return buf.raw[:got]


READERS = "from __future__ import annotations\nimport ctypes, os\n" + "\n".join(
    inspect.getsource(f) for f in (_Iovec, read_mem, read_vm)
)

# Kernel views in a child (it has its own memsafe import).
PRELUDE = (
    READERS
    + r'''
import json, sys, warnings
import memsafe
from memsafe import _kernel, _memsafe
SECRETMEM = "/secretmem (deleted)"


def region(addr):
    m = _kernel.mapping_at(addr)
    if m is None:
        return None
    return {"perms": m.perms, "path": m.path, "flags": sorted(m.vmflags)}


def pages_of(s):
    i = s._region_info()
    return i["data"] if i["storage"] == "guarded" else i["arena"]


def nmaps():
    return len(_kernel.maps())


def secretmem_maps():
    return sum(m.path == SECRETMEM for m in _kernel.maps())


def memsafe_kinds():
    """For every mapping memsafe made (memsafe asks MADV_DONTDUMP; so do
    the kernel's [vvar] pages and glibc's vDSO getrandom state, which is
    MAP_DROPPABLE, "dp", as memsafe never is): memfd_secret or not."""
    return sorted({m.path == SECRETMEM for m in _kernel.mappings()
                   if "dd" in m.vmflags and "dp" not in m.vmflags
                   and not m.path.startswith("[")})


def vmlck():
    return int(_kernel.status_field("VmLck").split()[0])
'''
)


def child_json(
    body: str,
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Any = None,
) -> dict[str, Any]:
    """Run PRELUDE + body with args in a fresh interpreter; its last line
    of output is a JSON report."""
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body), *args],
        env=child_env(env),
        preexec_fn=preexec_fn,
        capture_output=True,
        timeout=120,
    )
    out: dict[str, Any] = json.loads(ok(proc).splitlines()[-1])
    out["_stderr"] = proc.stderr.decode()
    return out


def places(secret: memsafe.Secret) -> dict[str, tuple[int, int]]:
    """Where a secret's bytes are: a guarded secret's plaintext; a sealed
    secret's ciphertext slot and, inside a window, its plaintext."""
    info = secret._region_info()
    if info["storage"] == "guarded":
        return {"secret": (info["secret"], info["len"])}
    out = {"slot": (info["slot"], info["slot_len"])}
    if info["plaintext"]:
        out["plaintext"] = (info["plaintext"], info["len"])
    return out


def read_all(secret: memsafe.Secret, reader: Any) -> dict[str, bytes | int]:
    return {k: reader(a, n) for k, (a, n) in places(secret).items()}


# ---- 1, 2: /proc/PID/mem and process_vm_readv ----------------------------


@pytest.mark.parametrize("mode", ["off", "prefer"])
def test_proc_self_mem_cannot_read_secret_pages(storage: str, mode: str) -> None:
    if mode != "off" and not OFFERED:
        pytest.skip("this kernel does not offer memfd_secret")
    memsafe.set_secretmem(mode)
    plain = plaintext()
    s = memsafe.MemSafe(plain)
    try:
        assert s.secretmem is (mode != "off")
        seen = {"outside": read_all(s, read_mem)}
        with s.read():
            seen["read window"] = read_all(s, read_mem)
        with s.write():
            seen["write window"] = read_all(s, read_mem)
    finally:
        s.close()
    for when, got in seen.items():
        if mode == "off":
            # /proc/self/mem forces access: even the no-access pages of a
            # guarded secret give the plaintext away.
            for where, data in got.items():
                if where == "slot":
                    assert isinstance(data, bytes) and plain not in data
                else:
                    assert data == plain, (when, where)
        else:
            assert got and all(v == errno.EIO for v in got.values()), (when, got)


@pytest.mark.parametrize("mode", ["off", "prefer"])
def test_process_vm_readv_cannot_read_secret_pages(storage: str, mode: str) -> None:
    if mode != "off" and not OFFERED:
        pytest.skip("this kernel does not offer memfd_secret")
    memsafe.set_secretmem(mode)
    plain = plaintext()
    s = memsafe.MemSafe(plain)
    try:
        outside = read_all(s, read_vm)
        with s.read():
            in_window = read_all(s, read_vm)
            through_mem = read_all(s, read_mem)
    finally:
        s.close()
    if mode == "off":
        # Readable pages are read; no-access ones are not (no forced access).
        for where, data in in_window.items():
            if where == "slot":  # the ciphertext: what /proc/self/mem gives
                assert isinstance(data, bytes) and plain not in data
                assert data == through_mem["slot"]
            else:
                assert data == plain, where
        if "secret" in outside:
            assert isinstance(outside["secret"], int)  # ---p: EFAULT
    else:
        for got in (outside, in_window):
            assert got and all(isinstance(v, int) for v in got.values()), got


READ_PARENT = r"""
import json, os, sys
assert os.geteuid() == 0
where = json.loads(sys.argv[1])
ppid = os.getppid()
def show(v):
    return v.hex() if isinstance(v, bytes) else v
print(json.dumps({
    k: [show(read_mem(a, n, ppid)), show(read_vm(a, n, ppid))]
    for k, (a, n) in where.items()
}))
"""


@needs_root
@pytest.mark.parametrize("window", [False, True], ids=["outside", "in-window"])
@pytest.mark.parametrize("mode", ["off", "prefer"])
def test_root_reader_of_proc_pid_mem_gets_eio(
    storage: str, mode: str, window: bool
) -> None:
    """Another process, root, reads this one's secret: /proc/PID/mem and
    process_vm_readv both fail on memfd_secret pages."""
    if mode != "off" and not OFFERED:
        pytest.skip("this kernel does not offer memfd_secret")
    memsafe.set_secretmem(mode)
    plain = plaintext()
    s = memsafe.SecretBytes(plain)

    def reader() -> dict[str, list[Any]]:
        code = [sys.executable, "-c", READERS + READ_PARENT, json.dumps(places(s))]
        proc = subprocess.run(code, capture_output=True, timeout=60, env=child_env())
        return dict(json.loads(ok(proc)))

    try:
        if window:
            with s.read():
                got = reader()
        else:
            got = reader()
    finally:
        s.close()
    for where, (mem, vm) in got.items():
        if mode == "prefer":
            assert mem == errno.EIO, (where, got)
            assert isinstance(vm, int), (where, got)
        elif where == "slot":
            assert isinstance(mem, str) and plain.hex() not in mem
        else:
            assert mem == plain.hex(), (where, got)  # forced: even ---p
            if window:
                assert vm == plain.hex(), (where, got)


# ---- 3: ptrace and gcore --------------------------------------------------

HOLDER = r"""
import os, sys, memsafe
memsafe.set_secretmem(sys.argv[1])
# read(2) straight into the secrets' pages: no copy on the heap.
at_rest = memsafe.SecretBytes.from_fd(0, size=32)
in_window = memsafe.SecretBytes.from_fd(0, size=32)
control = os.read(0, 32)                  # a plain bytes copy: must be found
w = in_window.read()
view = w.__enter__()                      # open while the process is dumped
def where(s):
    i = s._region_info()
    if i["storage"] == "guarded":
        return i["secret"]
    return i["plaintext"] or i["slot"]
print(os.getpid(), where(at_rest), where(in_window),
      int(at_rest.secretmem), int(in_window.secretmem), flush=True)
os.read(0, 1)
w.__exit__(None, None, None)
"""

GDB_SCRIPT = """
python
for addr in ({a}, {b}):
    try:
        print("READ", bytes(gdb.selected_inferior().read_memory(addr, 32)).hex())
    except gdb.MemoryError as e:
        print("READ failed", e)
end
gcore {core}
"""


@not_sanitized
@needs_root
@pytest.mark.skipif(not shutil.which("gdb"), reason="needs gdb")
@pytest.mark.parametrize("mode", ["off", "prefer"])
def test_ptrace_and_gcore_see_no_plaintext(
    storage: str, mode: str, tmp_path: Any
) -> None:
    if mode != "off" and not OFFERED:
        pytest.skip("this kernel does not offer memfd_secret")
    a, b, control = (secrets.token_bytes(32) for _ in range(3))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        holder.stdin.write(a + b + control)
        holder.stdin.flush()
        pid, addr_a, addr_b, sm_a, sm_b = holder.stdout.readline().split()
        assert [sm_a, sm_b] == [b"1", b"1"] if mode == "prefer" else [b"0", b"0"]
        assert _kernel.maps(int(pid)), "the holder must be alive"
        core = tmp_path / "core"
        script = tmp_path / "dump.gdb"
        script.write_text(GDB_SCRIPT.format(a=int(addr_a), b=int(addr_b), core=core))
        gdb = subprocess.run(
            ["gdb", "-nx", "-batch", "-p", pid.decode(), "-x", str(script)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        reads = [ln for ln in gdb.stdout.splitlines() if ln.startswith("READ")]
        assert core.exists(), gdb.stdout + gdb.stderr
        dump = core.read_bytes()
    finally:
        holder.stdin.write(b"x")
        holder.stdin.close()
        holder.wait(timeout=60)
    assert control in dump  # the dump is searchable: a plain copy is found
    assert a not in dump and b not in dump
    if mode == "prefer":
        # ptrace (which reads no-access and no-dump pages) cannot either.
        assert reads and all(r.startswith("READ failed") for r in reads), reads
    else:
        # Positive control: ordinary pages are read through ptrace, even
        # no-access (guarded, at rest) and no-dump ones.
        expect_b = "READ " + b.hex()
        expect_a = "READ " + a.hex() if storage == "guarded" else None
        assert reads[1] == expect_b, reads
        if expect_a:
            assert reads[0] == expect_a, reads
        else:
            assert reads[0].startswith("READ ") and a.hex() not in reads[0]


# ---- 4: the kernel's maps -------------------------------------------------


@needs_secretmem
@pytest.mark.storage("guarded")
def test_guarded_pages_are_secretmem_and_follow_windows() -> None:
    memsafe.set_secretmem("prefer")
    m = memsafe.MemSafe(b"top secret")
    info = m._region_info()
    data = info["data"]
    mapping = _kernel.mapping_at(data)
    assert mapping is not None
    assert mapping.path == SECRETMEM
    assert (mapping.start, mapping.end) == (data, data + info["data_len"])
    assert {"sh", "lo", "dd", "dc"} <= mapping.vmflags, mapping.vmflags
    assert "wf" not in mapping.vmflags  # WIPEONFORK needs private pages
    # The guard pages stay an ordinary private no-access reservation.
    for guard in (info["base"], data + info["data_len"]):
        g = _kernel.mapping_at(guard)
        assert g is not None and g.perms == "---p" and g.path == ""
    seen = [_kernel.perms_at(data)]
    with m.read():
        seen.append(_kernel.perms_at(data))
        with m.read():  # nested read windows are counted
            seen.append(_kernel.perms_at(data))
        seen.append(_kernel.perms_at(data))
    seen.append(_kernel.perms_at(data))
    with m.write():
        seen.append(_kernel.perms_at(data))
    seen.append(_kernel.perms_at(data))
    assert seen == ["---s", "r--s", "r--s", "r--s", "---s", "rw-s", "---s"]
    m.close()
    assert _kernel.perms_at(data) is None


@needs_secretmem
@pytest.mark.storage("sealed")
def test_sealed_arenas_and_window_plaintext_are_secretmem() -> None:
    memsafe.set_secretmem("prefer")
    s = memsafe.MemSafe(b"top secret")
    try:
        arena = _kernel.mapping_at(s._region_info()["arena"])
        assert arena is not None and arena.path == SECRETMEM
        assert arena.perms == "rw-s"
        assert {"sh", "lo", "dd", "dc"} <= arena.vmflags
        assert "wf" not in arena.vmflags
        for window in (s.read, s.write):
            with window():
                where = s._region_info()["plaintext"]
                plain = _kernel.mapping_at(where)
                assert plain is not None and plain.path == SECRETMEM
                assert plain.perms == "rw-s" and {"lo", "dd", "dc"} <= plain.vmflags
            assert s._region_info()["plaintext"] == 0
    finally:
        s.close()


EVERY_MAPPING = r"""
mode = sys.argv[1]
memsafe.set_secretmem(mode)
s = memsafe.MemSafe(b"every page")
w = s.write()
view = w.__enter__()
print(json.dumps({"secretmem": s.secretmem, "kinds": memsafe_kinds(),
                  "secretmem_maps": secretmem_maps()}))
w.__exit__(None, None, None)
"""


@not_sanitized
@needs_secretmem
@pytest.mark.parametrize("mode", ["off", "prefer"])
def test_every_memsafe_mapping_is_secretmem(storage: str, mode: str) -> None:
    """In a fresh process, every mapping memsafe made for a secret - its
    pages, and for the sealed engine the key's two halves, the cipher arena
    and the window's plaintext arena - is memfd_secret (none under off)."""
    out = child_json(EVERY_MAPPING, mode)
    if mode == "off":
        assert out["kinds"] == [False] and out["secretmem_maps"] == 0
    else:
        assert out["secretmem"] is True
        assert out["kinds"] == [True], out
        # guarded: the data pages; sealed: 2 key halves + 2 arenas
        assert out["secretmem_maps"] == (1 if storage == "guarded" else 4)


# ---- 5: fork ----------------------------------------------------------------

FORK = r"""
memsafe.set_secretmem("prefer")
s = memsafe.SecretBytes(b"parent secret")
pages = pages_of(s)
w = s.read()
view = w.__enter__()
i = s._region_info()
plain = i["secret"] if i["storage"] == "guarded" else i["plaintext"]
out = {"parent": [region(pages), region(plain), secretmem_maps()]}
r, wr = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    rep = {"child": [region(pages), region(plain), secretmem_maps()],
           "mem": read_mem(plain, 13).hex()}
    try:
        s.read(bytes)
        rep["read"] = "no error"
    except ValueError as e:
        rep["read"] = str(e)
    n = memsafe.SecretBytes(b"child secret")   # the child can make its own
    rep["new"] = [n.secretmem, n.locked, n == b"child secret",
                  region(pages_of(n))["path"]]
    n.close()
    os.write(wr, json.dumps(rep).encode())
    os._exit(0)
os.close(wr)
chunks = []
while True:
    c = os.read(r, 65536)
    if not c:
        break
    chunks.append(c)
_, status = os.waitpid(pid, 0)
out.update(json.loads(b"".join(chunks)))
out["status"] = os.waitstatus_to_exitcode(status)
out["parent_after"] = bytes(view) == b"parent secret"
w.__exit__(None, None, None)
s.close()
print(json.dumps(out))
"""


@needs_secretmem
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_inherits_no_secretmem_pages(storage: str) -> None:
    out = child_json(FORK)
    assert out["status"] == 0
    parent_pages, parent_plain, parent_count = out["parent"]
    assert parent_pages["path"] == SECRETMEM and "dc" in parent_pages["flags"]
    assert parent_plain["path"] == SECRETMEM
    assert parent_count >= 1
    child_pages, child_plain, child_count = out["child"]
    # MADV_DONTFORK: not inherited; memsafe reserves no-access pages there.
    assert child_count == 0, out
    for r in (child_pages, child_plain):
        assert r is not None and r["perms"] == "---p" and r["path"] == "", r
    assert bytes.fromhex(out["mem"]) != b"parent secret"
    assert "parent process" in out["read"], out["read"]
    assert out["new"] == [True, True, True, SECRETMEM]
    assert out["parent_after"] is True


FORK_VIEW = r"""
import hmac
memsafe.set_secretmem("prefer")
k = memsafe.SecretBytes(b"k" * 32)
w = k.read()
view = w.__enter__()               # a window open while the process forks
pid = os.fork()
if pid == 0:
    # No zeros, no plaintext: the view's memory is no-access here.
    mac = hmac.digest(view, b"message", "sha256")
    os.write(1, b"computed " + mac.hex().encode() + b"\n")
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(json.dumps({
    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
    "parent": hmac.digest(view, b"message", "sha256").hex(),
}))
w.__exit__(None, None, None)
"""


@not_sanitized
@needs_secretmem
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_view_of_a_window_open_at_fork_faults_in_the_child(storage: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + FORK_VIEW],
        env=child_env(),
        capture_output=True,
        timeout=120,
    )
    text = ok(proc)
    assert "computed" not in text
    out = json.loads(text.splitlines()[-1])
    assert out["signal"] == int(signal.SIGSEGV), out
    assert out["parent"] == hmac.digest(b"k" * 32, b"message", "sha256").hex()


# ---- 6: the flags, by secret type and mode --------------------------------


@pytest.mark.parametrize("mode", ["off", "prefer", "require"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: memsafe.MemSafe(b"memsafe"),
        lambda: memsafe.SecretBytes(b"bytes"),
        lambda: memsafe.SecretStr("str \u00e9"),
        lambda: memsafe.SecretBytes.random(32),
    ],
    ids=["MemSafe", "SecretBytes", "SecretStr", "random"],
)
@not_sanitized
def test_secretmem_flag_matches_the_kernel(storage: str, mode: str, make: Any) -> None:
    if mode != "off" and not OFFERED:
        pytest.skip("this kernel does not offer memfd_secret")
    memsafe.set_secretmem(mode)
    assert memsafe.get_secretmem() == mode
    s = make()
    try:
        on = mode != "off"
        assert s.storage == storage
        assert s.secretmem is on
        assert s._region_info()["secretmem"] == int(on)
        assert s.locked is True
        mapping = _kernel.mapping_at(pages_of(s))
        assert mapping is not None
        assert (mapping.path == SECRETMEM) is on
        assert "lo" in mapping.vmflags
        # The mode is read when memory is made: a later change leaves
        # existing secrets where they are.
        memsafe.set_secretmem("off" if on else "prefer")
        assert s.secretmem is on
        assert _kernel.mapping_at(memory_of(s)) == mapping
    finally:
        s.close()


# ---- 7: the fallback when memfd_secret fails --------------------------------

ENOSYS_ALWAYS = "memfd_secret:1+:ENOSYS"

FALLBACK = r"""
arm, mode = sys.argv[1], sys.argv[2]
if arm:
    os.environ["MEMSAFE_FAULT"] = arm     # counted from here: after the probe
memsafe.set_secretmem(mode)
out = {"offered": _memsafe._features()["secretmem_offered"],
       "mode": memsafe.get_secretmem()}
before = nmaps()
try:
    s = memsafe.MemSafe(b"fallback secret")
except OSError as e:
    out["error"] = [type(e).__name__, e.errno, str(e)]
else:
    with s.write() as v:
        v[:8] = b"FALLBACK"
    info = s._region_info()
    out.update(secretmem=s.secretmem, info=info["secretmem"], locked=s.locked,
               value=s.read(bytes).decode(), at_rest=region(pages_of(s)),
               kinds=memsafe_kinds())
    s.close()
out["maps_delta"] = nmaps() - before
out["secretmem_maps"] = secretmem_maps()
print(json.dumps(out))
"""


def fallback_run(when: str, mode: str) -> dict[str, Any]:
    """memfd_secret failing with ENOSYS: injected at import (the probe
    fails too) or only after it, or - on a kernel without it - by itself."""
    env = {"MEMSAFE_SECRETMEM": "off"}
    arm = ""
    if OFFERED and when == "at import":
        env["MEMSAFE_FAULT"] = ENOSYS_ALWAYS
    elif OFFERED:
        arm = ENOSYS_ALWAYS
    out = child_json(FALLBACK, arm, mode, env=env)
    assert out["offered"] is (OFFERED and when == "later")
    if OFFERED:
        assert "memfd_secret call 1: ENOSYS" in out["_stderr"]
    return out


@not_sanitized
@can_fail_secretmem
@pytest.mark.parametrize("when", ["at import", "later"])
def test_prefer_falls_back_to_ordinary_pages(storage: str, when: str) -> None:
    out = fallback_run(when, "prefer")
    assert "error" not in out, out
    assert out["mode"] == "prefer"
    assert out["secretmem"] is False and out["info"] == 0
    assert out["locked"] is True
    assert out["value"] == "FALLBACK secret"
    at_rest = out["at_rest"]
    assert at_rest["path"] == "" and at_rest["perms"].endswith("p")
    assert {"lo", "dd", "wf"} <= set(at_rest["flags"])  # private: WIPEONFORK
    if storage == "guarded":
        assert at_rest["perms"] == "---p"
    assert out["kinds"] == [False]
    assert out["secretmem_maps"] == 0


@can_fail_secretmem
@pytest.mark.parametrize("when", ["at import", "later"])
def test_require_without_memfd_secret_raises_a_helpful_oserror(
    storage: str, when: str
) -> None:
    out = fallback_run(when, "require")
    kind, code, message = out["error"]
    assert kind == "OSError"  # not a LockError: no limit to raise
    assert code == errno.ENOSYS
    assert "memfd_secret" in message
    assert "set_secretmem('prefer')" in message
    assert out["maps_delta"] == 0  # nothing left behind
    assert out["secretmem_maps"] == 0


REPAIR = r"""
memsafe.set_secretmem("prefer")
# Process-wide set-up first (the sealed engine's key and small arenas), so
# that the fault hits the big secret's own pages.
memsafe.SecretBytes(b"warm-up").close()
os.environ["MEMSAFE_FAULT"] = sys.argv[1]
s = memsafe.MemSafe(b"R" * 20000)
i = s._region_info()
out = {"secretmem": s.secretmem, "locked": s.locked, "at_rest": region(pages_of(s)),
       "ok": s.read(bytes) == b"R" * 20000}
if i["storage"] == "guarded":
    page = i["data"] - i["base"]
    out["guards"] = [region(i["base"]), region(i["data"] + i["data_len"])]
    out["span"] = [_kernel.mapping_at(i["data"]).start == i["data"],
                   _kernel.mapping_at(i["data"]).end == i["data"] + i["data_len"]]
s.close()
print(json.dumps(out))
"""


@needs_secretmem
@needs_faults
@pytest.mark.parametrize(
    "spec",
    [
        "ftruncate:1:ENOMEM",
        "mmap(memfd_secret):1:ENOMEM",
        "mmap(memfd_secret):1:EINVAL",
    ],
)
def test_prefer_repairs_the_reservation_after_a_failed_secretmem_map(
    storage: str, spec: str
) -> None:
    """A failed MAP_FIXED mapping may already have replaced the reservation:
    the fallback maps ordinary no-access pages there again, guards intact."""
    out = child_json(REPAIR, spec)
    assert spec.split(":")[0] + " call 1" in out["_stderr"]
    assert out["ok"] is True and out["locked"] is True
    assert out["secretmem"] is False
    assert out["at_rest"]["path"] == "" and "wf" in out["at_rest"]["flags"]
    if storage == "guarded":
        assert out["at_rest"]["perms"] == "---p"
        assert all(g["perms"] == "---p" and g["path"] == "" for g in out["guards"])
        assert out["span"] == [True, True]


# ---- 8: over RLIMIT_MEMLOCK -------------------------------------------------

LIMIT = 64 * 1024  # RLIMIT_MEMLOCK of the children below, CAP_IPC_LOCK dropped
BIG = 256 * 1024  # a secret that does not fit under it

OVER_LIMIT = r"""
policy, mode, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
memsafe.set_lock_policy(policy)
# Process-wide set-up first (the sealed engine's keys and small arenas, of
# both kinds), so that what follows counts only the big secret.
for m in ("off", mode):
    memsafe.set_secretmem(m)
    memsafe.SecretBytes(b"warm-up").close()
memsafe.set_secretmem(mode)
base = [nmaps(), secretmem_maps(), vmlck()]
out = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        s = memsafe.SecretBytes(b"L" * size)
    except OSError as e:
        out["error"] = [type(e).__name__, isinstance(e, memsafe.LockError),
                        e.errno, str(e)]
        out["failed_delta"] = [nmaps() - base[0], secretmem_maps() - base[1],
                               vmlck() - base[2]]
    else:
        out.update(secretmem=s.secretmem, locked=s.locked,
                   value_ok=s == b"L" * size, at_rest=region(pages_of(s)))
        s.close()
out["warnings"] = [w.category.__name__ for w in caught]
out["delta"] = [nmaps() - base[0], secretmem_maps() - base[1], vmlck() - base[2]]
print(json.dumps(out))
"""


def over_limit(policy: str, mode: str, hard: int | None = None) -> dict[str, Any]:
    return child_json(
        OVER_LIMIT, policy, mode, str(BIG), preexec_fn=drop_ipc_lock(LIMIT, hard)
    )


@not_sanitized
@needs_secretmem
@pytest.mark.parametrize(
    "policy, mode",
    [("strict", "prefer"), ("strict", "require"), ("warn", "require")],
)
def test_over_the_lock_limit_raises_lock_error(
    storage: str, policy: str, mode: str
) -> None:
    out = over_limit(policy, mode)
    _, is_lock_error, code, message = out["error"]
    assert is_lock_error, out
    assert code in (errno.EAGAIN, errno.ENOMEM, errno.EPERM)
    assert "RLIMIT_MEMLOCK" in message
    assert out["failed_delta"] == [0, 0, 0], out  # nothing leaked
    assert out["delta"] == [0, 0, 0]
    assert out["warnings"] == []


@not_sanitized
@needs_secretmem
def test_over_the_lock_limit_warn_prefer_goes_on_unlocked(storage: str) -> None:
    out = over_limit("warn", "prefer")
    assert "error" not in out, out
    assert out["value_ok"] is True
    assert out["secretmem"] is False and out["locked"] is False
    assert "LockWarning" in out["warnings"]
    at_rest = out["at_rest"]
    assert at_rest["path"] == "" and "lo" not in at_rest["flags"]
    assert out["delta"][2] == 0  # VmLck back where it was after close


@not_sanitized
@needs_secretmem
def test_soft_lock_limit_is_raised_for_secretmem(storage: str) -> None:
    """Soft limit too low, hard limit high enough: memsafe raises the soft
    limit and gets memfd_secret pages (no warning, no fallback)."""
    out = over_limit("strict", "require", hard=4 * BIG)
    assert "error" not in out, out
    assert out["secretmem"] is True and out["locked"] is True
    assert out["at_rest"]["path"] == SECRETMEM
    assert out["warnings"] == []


EAGAIN_ONCE = r"""
policy, mode = sys.argv[1], sys.argv[2]
memsafe.set_lock_policy(policy)
memsafe.set_secretmem(mode)
memsafe.SecretBytes(b"warm-up").close()   # the sealed engine's key, arenas
os.environ["MEMSAFE_FAULT"] = "mmap(memfd_secret):1:EAGAIN"
out = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        s = memsafe.SecretBytes(b"E" * 20000)
    except OSError as e:
        out["error"] = [type(e).__name__, e.errno]
    else:
        out.update(secretmem=s.secretmem, locked=s.locked, ok=s == b"E" * 20000,
                   at_rest=region(pages_of(s)))
        s.close()
out["warnings"] = [w.category.__name__ for w in caught]
print(json.dumps(out))
"""


@needs_secretmem
@needs_faults
@pytest.mark.parametrize(
    "policy, mode, expect",
    [
        ("warn", "prefer", "ordinary, locked"),
        ("off", "prefer", "ordinary, unlocked"),
        ("strict", "prefer", "ordinary, locked"),
        ("strict", "require", "LockError"),
        ("warn", "require", "LockError"),
    ],
)
@not_sanitized
def test_eagain_from_secretmem_mmap_follows_the_lock_policy(
    storage: str, policy: str, mode: str, expect: str
) -> None:
    """memfd_secret refused with EAGAIN (its RLIMIT_MEMLOCK charge) while
    ordinary pages still fit under the limit: "require" raises LockError;
    "prefer" takes ordinary pages, locked if the policy locks (strict and
    warn), both engines alike, without a warning since nothing failed to
    lock."""
    out = child_json(EAGAIN_ONCE, policy, mode)
    assert "mmap(memfd_secret) call 1: EAGAIN" in out["_stderr"]
    if expect == "LockError":
        assert out.get("error") == ["LockError", errno.EAGAIN], out
    else:
        assert "error" not in out, out
        assert out["ok"] is True and out["secretmem"] is False
        assert out["warnings"] == []
        locked = expect == "ordinary, locked"
        assert out["locked"] is locked
        assert out["at_rest"]["path"] == ""
        assert ("lo" in out["at_rest"]["flags"]) is locked


# ---- the sealed engine's key comes from the same kind of memory ------------

KEY_KIND = r"""
import warnings
memsafe.set_secretmem("prefer")
memsafe.set_lock_policy(sys.argv[1])
size = int(sys.argv[2])
if sys.argv[3] == "warm":
    memsafe.SecretBytes(b"warm-up").close()
base = secretmem_maps()
os.environ["MEMSAFE_FAULT"] = sys.argv[4]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", memsafe.LockWarning)
    s = memsafe.SecretBytes(b"K" * size)
print(json.dumps({"secretmem": s.secretmem, "kinds": memsafe_kinds(),
                  "added": secretmem_maps() - base}))
"""


@needs_secretmem
@needs_faults
@pytest.mark.storage("sealed")
def test_a_secretmem_sealed_secret_has_its_key_in_secretmem() -> None:
    """The first memfd_secret call (the key's first half) fails once: the
    secret must not claim secretmem while its key sits in ordinary pages."""
    out = child_json(KEY_KIND, "strict", "32", "cold", "memfd_secret:1:ENOSYS")
    assert out["kinds"] == [out["secretmem"]], out


@not_sanitized
@needs_secretmem
@pytest.mark.storage("sealed")
def test_an_ordinary_fallback_makes_no_secretmem_pages() -> None:
    """Over the lock limit under warn+prefer the secret falls back to
    ordinary pages: its key (the ordinary engine's) must be ordinary too."""
    proc_out = child_json(
        KEY_KIND, "warn", str(BIG), "warm", "", preexec_fn=drop_ipc_lock(LIMIT)
    )
    assert proc_out["secretmem"] is False
    assert proc_out["added"] == 0, proc_out


# ---- 9: the self-check --------------------------------------------------------


def selfcheck(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "memsafe", *args],
        env=child_env(env),
        capture_output=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout.decode() + proc.stderr.decode()


def selfcheck_json(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    code, text = selfcheck(env, "--json")
    start = text.index("{")
    report: dict[str, Any] = json.JSONDecoder().raw_decode(text[start:])[0]
    return code, report


def checks_of(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in report["checks"]}


@not_sanitized
@needs_secretmem
@pytest.mark.storage("any")
def test_selfcheck_reports_secretmem_in_use_and_warns_about_hibernation() -> None:
    code, report = selfcheck_json({"MEMSAFE_SECRETMEM": "prefer"})
    checks = checks_of(report)
    assert code == 0 and report["ok"] is True, report
    assert report["secretmem"] == "prefer"
    assert checks["memfd_secret"]["status"] == "ok", checks["memfd_secret"]
    assert SECRETMEM in checks["memfd_secret"]["detail"]
    assert "cannot read" in checks["memfd_secret"]["detail"]
    assert "hibernate" in checks["hibernation"]["detail"]
    code, text = selfcheck({"MEMSAFE_SECRETMEM": "prefer"})
    assert code == 0 and "hibernate" in text and "WARNING" in text


@not_sanitized
@needs_secretmem
@pytest.mark.storage("any")
def test_selfcheck_says_offered_but_off() -> None:
    code, report = selfcheck_json({"MEMSAFE_SECRETMEM": "off"})
    checks = checks_of(report)
    assert code == 0 and report["secretmem"] == "off"
    assert checks["memfd_secret"]["status"] == "info"
    assert "offered by this kernel but off" in checks["memfd_secret"]["detail"]
    assert "hibernation" not in checks


@not_sanitized
@can_fail_secretmem
@pytest.mark.storage("any")
@pytest.mark.parametrize(
    "mode",
    [
        "prefer",
        "require",
    ],
)
def test_selfcheck_without_memfd_secret(mode: str) -> None:
    env = {"MEMSAFE_SECRETMEM": mode}
    if OFFERED:
        env["MEMSAFE_FAULT"] = ENOSYS_ALWAYS
    code, report = selfcheck_json(env)
    check = checks_of(report)["memfd_secret"]
    assert "does not offer it" in check["detail"]
    if mode == "prefer":
        assert check["status"] == "info" and code == 0
        assert "ordinary locked pages" in check["detail"]
    else:
        assert check["status"] not in ("ok", "info")
        assert code != 0 and report["ok"] is False


@not_sanitized
@needs_secretmem
@pytest.mark.storage("any")
def test_selfcheck_details_agree_with_their_status_under_secretmem() -> None:
    _, report = selfcheck_json({"MEMSAFE_SECRETMEM": "prefer"})
    key = checks_of(report)["sealed: process key split"]
    assert key["status"] == "ok"
    assert "not in place" not in key["detail"], key


# ---- 10: bad input ------------------------------------------------------------


@pytest.mark.storage("any")
def test_set_secretmem_rejects_bad_values() -> None:
    with pytest.raises(ValueError) as e:
        memsafe.set_secretmem("maybe")
    for choice in ("'off'", "'prefer'", "'require'"):
        assert choice in str(e.value)
    for bad in (1, None, b"prefer", 1.0):
        with pytest.raises(TypeError):
            memsafe.set_secretmem(bad)  # type: ignore[arg-type]
    assert memsafe.get_secretmem() == "off"  # unchanged by the failures
    for mode in ("prefer", "require", "off"):
        memsafe.set_secretmem(mode)
        assert memsafe.get_secretmem() == mode


ENV_MODE = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import memsafe
print(json.dumps({"mode": memsafe.get_secretmem(),
                  "warnings": [[w.category.__name__, str(w.message)] for w in caught]}))
"""


@pytest.mark.storage("any")
@pytest.mark.parametrize(
    "value, mode",
    [("prefer", "prefer"), (" REQUIRE ", "require"), ("off", "off"), ("", "off")],
)
def test_memsafe_secretmem_environment_variable(value: str, mode: str) -> None:
    out = run_env_mode(value)
    assert out["mode"] == mode
    assert out["warnings"] == []


@pytest.mark.storage("any")
def test_unknown_memsafe_secretmem_warns_and_keeps_off() -> None:
    out = run_env_mode("bogus")
    assert out["mode"] == "off"
    [[kind, message]] = out["warnings"]
    assert kind == "RuntimeWarning"
    assert "MEMSAFE_SECRETMEM" in message and "'bogus'" in message
    for choice in ("'off'", "'prefer'", "'require'"):
        assert choice in message


def run_env_mode(value: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", "import json\n" + ENV_MODE],
        env=child_env({"MEMSAFE_SECRETMEM": value}),
        capture_output=True,
        timeout=60,
    )
    return dict(json.loads(ok(proc)))
