"""Core dumps of a process holding secrets contain none of them.

A child process builds one secret with every constructor, from inputs that
never exist as Python objects in the child:

* ``MemSafe(n)``, then filled inside a write window by ``os.readv`` straight
  from a pipe;
* ``MemSafe(bytearray, wipe_source=True)`` and
  ``SecretBytes(bytearray, wipe_source=True)`` (the bytearray is read from
  the pipe with ``os.readv`` and wiped by the constructor; the tests check
  that it is all zeros afterwards);
* ``SecretBytes.from_fd(stdin, size=n)`` and ``SecretBytes.from_file(path)``;
* ``SecretBytes.random(n)``: the child sends it to the parent with
  ``os.write(fd, view)`` inside a read window (no copy on the heap);
* ``MemSafe(n // 2)`` grown by ``extend()`` with a second secret (the grow
  path: old pages wiped and released);
* ``SecretStr.getpass()`` on a pseudo-terminal that is the child's
  controlling terminal: the parent types the password into the pty master,
  so the text never exists as a Python ``str`` in the child.  (A
  ``SecretStr("literal")`` cannot be tested this way: the literal itself
  lives on the heap - documented behaviour.)

Before dumping, the child writes every secret back to the parent through
``os.write(fd, view)`` inside a read window, which proves that it holds the
right values without copying them anywhere.  A positive control - an
ordinary ``bytes`` object with a known random value - sits on the child's
heap and must be found in every dump.

Two kinds of dump, each of a fresh child, with 32- and 256-byte secrets:
``gcore -o PREFIX PID`` (gdb) and a kernel core after ``SIGABRT`` with
``RLIMIT_CORE`` unlimited in a temporary working folder.  If
``/proc/sys/kernel/core_pattern`` pipes cores to a program or names another
folder, the kernel test sets it to ``core`` for its duration when running as
root (restoring it afterwards) and is skipped otherwise.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import child_env, linux_only, not_sanitized

fcntl = pytest.importorskip("fcntl", reason="POSIX only")
pty = pytest.importorskip("pty", reason="POSIX only")
resource = pytest.importorskip("resource", reason="POSIX only")
termios = pytest.importorskip("termios", reason="POSIX only")

pytestmark = [linux_only, not_sanitized]

SIZES = [32, 256]
CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
DEADLINE = 60.0  # seconds for any one exchange with the child
PT_NOTE = 4

# The names, in the order the child writes the secrets back.
NAMES = [
    "memsafe_size",
    "memsafe_bytearray_wiped",
    "secretbytes_bytearray_wiped",
    "secretbytes_from_fd",
    "secretbytes_from_file",
    "secretbytes_random",
    "memsafe_extended",
    "secretstr_getpass",
]

CHILD = r"""
import os
import sys

import memsafe

n = int(sys.argv[1])
control = bytes.fromhex(sys.argv[2])  # positive control: ordinary heap bytes
path = sys.argv[3]
IN, OUT = 0, 1


def fill(view):
    # os.readv reads straight into the buffer: no bytes object in between.
    got = 0
    while got < len(view):
        k = os.readv(IN, [view[got:]])
        if k == 0:
            raise EOFError
        got += k


def emit(secret):
    with secret.read() as view:
        done = 0
        while done < len(view):
            done += os.write(OUT, view[done:])


keep = {}

m = memsafe.MemSafe(n)
with m.write() as view:
    fill(view)
keep["memsafe_size"] = m

buf = bytearray(n)
fill(memoryview(buf))
keep["memsafe_bytearray_wiped"] = memsafe.MemSafe(buf, wipe_source=True)
assert not any(buf), "wipe_source=True left the bytearray"

buf = bytearray(n)
fill(memoryview(buf))
keep["secretbytes_bytearray_wiped"] = memsafe.SecretBytes(buf, wipe_source=True)
assert not any(buf), "wipe_source=True left the bytearray"

keep["secretbytes_from_fd"] = memsafe.SecretBytes.from_fd(IN, size=n)
keep["secretbytes_from_file"] = memsafe.SecretBytes.from_file(path)
keep["secretbytes_random"] = memsafe.SecretBytes.random(n)

head = memsafe.MemSafe(n // 2)
with head.write() as view:
    fill(view)
tail = memsafe.MemSafe(n - n // 2)
with tail.write() as view:
    fill(view)
head.extend(tail)
tail.close()
keep["memsafe_extended"] = head

keep["secretstr_getpass"] = memsafe.SecretStr.getpass("PW:")
assert len(keep["secretstr_getpass"]) == n

for name in NAMES:
    emit(keep[name])
os.write(OUT, b"READY\n")
os.read(IN, 1)  # wait: the parent dumps us, then says go (or aborts us)
"""


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    master: int
    secrets: dict[str, bytes]
    control: bytes
    cwd: Path
    maps: list[str] = field(default_factory=list)


def read_exact(fd: int, n: int, what: str) -> bytes:
    out = b""
    end = time.monotonic() + DEADLINE
    while len(out) < n:
        left = end - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            raise AssertionError(f"timed out waiting for {what} ({len(out)}/{n})")
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise AssertionError(f"child closed its output during {what}")
        out += chunk
    return out


def wait_for(fd: int, marker: bytes, what: str) -> None:
    seen = b""
    end = time.monotonic() + DEADLINE
    while marker not in seen:
        left = end - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            raise AssertionError(f"timed out waiting for {what}: {seen!r}")
        try:
            chunk = os.read(fd, 1024)
        except OSError as e:  # EIO: the slave side was closed
            raise AssertionError(f"terminal closed while waiting for {what}") from e
        seen += chunk


def start_child(n: int, tmp_path: Path, *, core_limit: bool) -> Child:
    """Start the child, feed it its secrets, check it holds them."""
    values = {name: os.urandom(n) for name in NAMES}
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    values["secretstr_getpass"] = "".join(
        secrets.choice(alphabet) for _ in range(n)
    ).encode("ascii")
    control = os.urandom(n)
    secret_file = tmp_path / "secret.bin"
    secret_file.write_bytes(values["secretbytes_from_file"])
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    master, slave = pty.openpty()

    def setup() -> None:
        # A session of its own with the pty as controlling terminal, so that
        # getpass() talks to /dev/tty = our pty.
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        if core_limit:
            _, hard = resource.getrlimit(resource.RLIMIT_CORE)
            try:
                resource.setrlimit(
                    resource.RLIMIT_CORE,
                    (resource.RLIM_INFINITY, resource.RLIM_INFINITY),
                )
            except (ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    code = "NAMES = " + repr(NAMES) + "\n" + CHILD
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(n), control.hex(), str(secret_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=child_env(),
        preexec_fn=setup,
    )
    # The parent keeps the slave open until the prompt came: with no slave
    # open anywhere, reading the master fails with EIO.
    assert proc.stdin is not None and proc.stdout is not None
    child = Child(proc, master, values, control, cwd)
    try:
        half = n // 2
        feed = (
            values["memsafe_size"]
            + values["memsafe_bytearray_wiped"]
            + values["secretbytes_bytearray_wiped"]
            + values["secretbytes_from_fd"]
            + values["memsafe_extended"][:half]
            + values["memsafe_extended"][half:]
        )
        proc.stdin.write(feed)
        proc.stdin.flush()
        # Type the password only once echo is off (getpass flushes input
        # that arrived before).
        wait_for(master, b"PW:", "the getpass prompt")
        os.write(master, values["secretstr_getpass"] + b"\n")
        os.close(slave)
        slave = -1

        out = proc.stdout.fileno()
        for name in NAMES:
            got = read_exact(out, n, name)
            if name == "secretbytes_random":
                values[name] = got
            else:
                assert got == values[name], f"child holds a wrong {name}"
        assert read_exact(out, 6, "READY") == b"READY\n"
        assert len(set(values.values())) == len(NAMES)
        child.maps = Path(f"/proc/{proc.pid}/maps").read_text().splitlines()
    except BaseException:
        if slave >= 0:
            os.close(slave)
        if proc.poll() is None:
            proc.kill()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        stop_child(child)
        print(f"child stderr:\n{err}", file=sys.stderr)
        raise
    return child


def stop_child(child: Child) -> None:
    proc = child.proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=DEADLINE)
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            f.close()
    with contextlib.suppress(OSError):
        os.close(child.master)


def segments(mm: mmap.mmap) -> list[tuple[int, int, int, int]]:
    """(p_type, p_offset, p_vaddr, p_filesz) of an ELF64 core's segments."""
    assert mm[:4] == b"\x7fELF" and mm[4] == 2, "not an ELF64 core"
    phoff = struct.unpack_from("<Q", mm, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", mm, 0x36)
    out = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", mm, phoff + i * phentsize
        )
        out.append((p_type, p_offset, p_vaddr, p_filesz))
    return out


def where(offset: int, segs: list[tuple[int, int, int, int]], maps: list[str]) -> str:
    """Describe a file offset of the core: memory (which mapping) or notes."""
    for p_type, p_offset, p_vaddr, p_filesz in segs:
        if p_offset <= offset < p_offset + p_filesz:
            if p_type == PT_NOTE:
                return "in the register/notes segment (PT_NOTE)"
            addr = p_vaddr + offset - p_offset
            for line in maps:
                span, perms, *rest = line.split(maxsplit=5)
                lo, hi = (int(x, 16) for x in span.split("-"))
                if lo <= addr < hi:
                    name = rest[-1] if len(rest) == 4 else "anonymous"
                    return f"at {addr:#x} in {name} ({perms})"
            return f"at {addr:#x}"
    return f"at file offset {offset}"


def scan(core: Path, child: Child) -> tuple[bool, list[str]]:
    """(control found?, where secrets were found) in a dump file."""
    found: list[str] = []
    with open(core, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        segs = segments(mm)
        control = mm.find(child.control) >= 0
        for name, value in child.secrets.items():
            # Any 16-byte piece at either end counts as a copy.
            for piece in dict.fromkeys((value, value[:16], value[-16:])):
                at = mm.find(piece)
                while at >= 0:
                    found.append(
                        f"{name} ({len(piece)} bytes) {where(at, segs, child.maps)}"
                    )
                    at = mm.find(piece, at + 1)
    return control, found


@pytest.mark.skipif(shutil.which("gcore") is None, reason="needs gdb's gcore")
@pytest.mark.parametrize("n", SIZES)
def test_gcore_dump_holds_no_secret(n: int, tmp_path: Path) -> None:
    child = start_child(n, tmp_path, core_limit=False)
    try:
        prefix = tmp_path / "gcore"
        done = subprocess.run(
            ["gcore", "-o", str(prefix), str(child.proc.pid)],
            capture_output=True,
            timeout=300,
        )
        core = Path(f"{prefix}.{child.proc.pid}")
        assert done.returncode == 0 and core.exists(), (
            f"gcore failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )
        assert child.proc.poll() is None, "gcore killed the child"
        control, found = scan(core, child)
        core.unlink()  # tens of MB; the message below says where copies were
        assert control, "positive control missing: the dump does not cover the heap"
        assert found == [], "secrets found in the gcore dump:\n" + "\n".join(found)
        assert child.proc.stdin is not None
        child.proc.stdin.write(b"q")
        child.proc.stdin.flush()
        assert child.proc.wait(timeout=DEADLINE) == 0, child.proc.stderr
    finally:
        stop_child(child)


@pytest.fixture
def kernel_cores_to_cwd() -> Iterator[None]:
    """Make the kernel write cores as 'core' in the crashing process' cwd."""
    try:
        pattern = CORE_PATTERN.read_text().strip()
    except OSError as e:
        pytest.skip(f"cannot read {CORE_PATTERN}: {e}")
    if not pattern.startswith("|") and "/" not in pattern:
        yield
        return
    if os.geteuid() != 0:
        pytest.skip(
            f"core_pattern is {pattern!r} (cores do not land in the cwd) and "
            "only root may change it"
        )
    try:
        CORE_PATTERN.write_text("core\n")
    except OSError as e:
        pytest.skip(f"core_pattern is {pattern!r} and cannot be changed: {e}")
    try:
        yield
    finally:
        CORE_PATTERN.write_text(pattern + "\n")


@pytest.mark.parametrize("n", SIZES)
def test_kernel_core_holds_no_secret(
    n: int, tmp_path: Path, kernel_cores_to_cwd: None
) -> None:
    child = start_child(n, tmp_path, core_limit=True)
    try:
        limits = Path(f"/proc/{child.proc.pid}/limits").read_text().splitlines()
        core_line = next(x for x in limits if x.startswith("Max core file size"))
        if core_line.split()[4] != "unlimited":  # soft limit
            pytest.skip(f"RLIMIT_CORE cannot be raised here: {core_line}")
        child.proc.send_signal(signal.SIGABRT)
        assert child.proc.wait(timeout=DEADLINE) == -signal.SIGABRT
        # The folder was empty: whatever is there now is the core.
        deadline = time.monotonic() + DEADLINE
        cores: list[Path] = []
        while not cores and time.monotonic() < deadline:
            cores = [p for p in child.cwd.iterdir() if p.is_file()]
            if not cores:
                time.sleep(0.1)
        assert cores, (
            "no kernel core was written (core_pattern "
            f"{CORE_PATTERN.read_text().strip()!r})"
        )
        assert len(cores) == 1, cores
        control, found = scan(cores[0], child)
        cores[0].unlink()
        assert control, "positive control missing: the core does not cover the heap"
        assert found == [], "secrets found in the kernel core:\n" + "\n".join(found)
    finally:
        stop_child(child)
