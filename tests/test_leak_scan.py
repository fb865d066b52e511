"""No copy of an ingested secret anywhere in the process's readable memory.

For each ingestion path a child process obtains a secret, uses it through a
read window (sha256 of the view), closes the window, reports its pid and
"ready", then blocks.  The test - a different process - knows the secret
(it wrote the file, the pipe or the keystrokes itself; for random() the
child hands it over with os.write(fd, view), which copies nothing into the
child's heap) and reads every readable mapping of the child through
/proc/PID/mem.  The secret must occur nowhere: not whole, and no 16-byte
aligned piece of it either (a partial copy of 31 bytes or more contains
one).  The positive control keeps bytes(view) alive in the child and the
same scan must find it.

Every scan runs with both storage engines (the child inherits
MEMSAFE_STORAGE).  Nothing is excluded from the scan for either: a guarded
secret's pages are no-access at rest (not readable, so not scanned), and a
sealed secret's cipher arena is readable but holds only ciphertext; its
plaintext window slot is wiped when the window closes, before the scan.

getpass without a terminal reads through sys.stdin, whose buffers keep
copies on the Python heap that memsafe cannot wipe (the documented
trade-off of reading what the program has already buffered there): that
route is not zero-copy and is scanned only for copies in memsafe's own
memory.  Its zero-copy counterparts are scanned fully: from_fd(0) on a
piped stdin (sys.stdin never touched), and getpass with sys.stdin None
(file descriptor 0 read directly).

Private anonymous pages never written (neither present nor swapped in
/proc/PID/pagemap) read as zeros and are skipped (helpers.populated_runs).

Secrets are fresh os.urandom values, so an accidental match is impossible;
sizes are 32 bytes and 300 bytes (a freed 32-byte heap block is reused at
once and could hide a copy; a 300-byte one lives in a different size class).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import helpers
import pytest

from memsafe import _kernel

pytestmark = [helpers.linux_only, helpers.not_sanitized]

TIMEOUT = 30.0
PROMPT = b"Key: "
SPECIAL = {"[vvar]", "[vvar_vclock]", "[vsyscall]"}
PIECE = 16
CHUNK = 4 << 20
TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

CHILD = r"""
import fcntl, hashlib, os, sys, termios
import memsafe

mode, arg, control = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
out, go = int(sys.argv[4]), int(sys.argv[5])


def say(text):
    os.write(out, text.encode() + b"\n")


if mode.startswith("getpass_tty"):
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
try:
    expect_error = None
    secret = None
    if mode == "random":
        secret = memsafe.SecretBytes.random(int(arg))
    elif mode == "file":
        secret = memsafe.SecretBytes.from_file(arg)
    elif mode == "fd":
        secret = memsafe.SecretBytes.from_fd(int(arg))
    elif mode == "fd0":
        secret = memsafe.SecretBytes.from_fd(0)  # stdin, never through sys.stdin
    elif mode == "fd0_line":  # printf 'key\n' | app
        secret = memsafe.SecretBytes.from_fd(0, strip_newline=True)
    elif mode == "fd0_str_crlf":  # a line ended by \r\n, read as text
        secret = memsafe.SecretStr.from_fd(0, strip_newline=True)
    elif mode == "fd_size":
        fd, n = arg.split(":")
        secret = memsafe.SecretBytes.from_fd(int(fd), size=int(n))
    elif mode == "fd_short":
        fd, n = arg.split(":")
        expect_error = EOFError
        memsafe.SecretBytes.from_fd(int(fd), size=int(n))
    elif mode in ("getpass_tty", "getpass_stdin", "getpass_fd0"):
        import warnings
        warnings.simplefilter("ignore")
        if mode == "getpass_fd0":
            sys.stdin = None  # no sys.stdin: fd 0 is read directly
        secret = memsafe.SecretStr.getpass("Key: ")
    elif mode == "getpass_tty_invalid":
        expect_error = ValueError
        memsafe.SecretStr.getpass("Key: ")
    elif mode in ("getpass_fd0_invalid", "getpass_fd0_too_long"):
        import warnings
        warnings.simplefilter("ignore")
        sys.stdin = None
        expect_error = ValueError
        memsafe.SecretStr.getpass("Key: ", max_size=int(arg))
    else:
        raise SystemExit("unknown mode " + mode)
except BaseException as e:
    if expect_error is None or type(e) is not expect_error:
        raise
    say(f"error {type(e).__name__}")
    info = None
else:
    if expect_error is not None:
        raise SystemExit("no error")
    kept = None
    with secret.read() as view:
        digest = hashlib.sha256(view).hexdigest()
        if mode == "random":
            os.write(out, view)
        if control:
            kept = bytes(view)
    info = secret._region_info()
    if info["storage"] == "guarded":
        # The data pages; no slot, no plaintext copy.
        where = [info["data"], info["data_len"], 0, 0, 0]
    else:
        where = [info["arena"], info["arena_len"], info["slot"], info["slot_len"],
                 info["plaintext"]]
    say(" ".join(map(str, ["secret", digest, secret.locked, info["storage"], *where])))
say(f"{os.getpid()} ready")
os.read(go, 1)
"""


@dataclasses.dataclass
class ScanResult:
    full: int = 0
    pieces: int = 0
    scanned: int = 0
    unreadable: int = 0
    # Hits (whole or pieces) in memsafe's own mappings - the only ones
    # marked "dd" (MADV_DONTDUMP) - and how much of those was readable.
    in_secret_memory: int = 0
    secret_memory_scanned: int = 0
    where: list[str] = dataclasses.field(default_factory=list)
    areas: set[str] = dataclasses.field(default_factory=set)


def read_maps(pid: int) -> list[tuple[int, int, str, str, frozenset[str]]]:
    """(start, end, perms, path, vmflags) of every mapping of pid."""
    return [(m.start, m.end, m.perms, m.path, m.vmflags) for m in _kernel.mappings(pid)]


def read_region(fd: int, start: int, end: int, res: ScanResult) -> Iterator[bytes]:
    """The readable bytes of [start, end), in chunks that overlap by
    nothing; unreadable pages (EIO, EFAULT) are skipped and counted."""
    page = os.sysconf("SC_PAGE_SIZE")
    addr = start
    while addr < end:
        n = min(CHUNK, end - addr)
        try:
            data = os.pread(fd, n, addr)
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EFAULT, errno.ENOMEM):
                raise
            data = b""
        if len(data) == n:
            yield data
        else:
            # Salvage page by page.
            for p in range(addr + len(data) // page * page, addr + n, page):
                try:
                    yield os.pread(fd, page, p)
                except OSError:
                    res.unreadable += page
        addr += n


def scan(pid: int, needles: list[bytes]) -> ScanResult:
    """Count the needles (whole, and their aligned PIECE-byte pieces) in
    every readable mapping of process pid."""
    res = ScanResult()
    pieces = {
        n[i : i + PIECE] for n in needles for i in range(0, len(n) - PIECE + 1, PIECE)
    }
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except PermissionError as e:  # not root and the child is not dumpable
        pytest.skip(f"cannot read the child's memory: {e}")
    try:
        for start, end, perms, path, vmflags in read_maps(pid):
            if not perms.startswith("r") or path in SPECIAL:
                continue
            ours = "dd" in vmflags
            for run_start, run_end in helpers.populated_runs(
                pid, start, end, perms, path
            ):
                scan_run(
                    fd, run_start, run_end, (perms, path, ours), needles, pieces, res
                )
    finally:
        os.close(fd)
    return res


def scan_run(
    fd: int,
    start: int,
    end: int,
    what: tuple[str, str, bool],
    needles: list[bytes],
    pieces: set[bytes],
    res: ScanResult,
) -> None:
    """Count the needles and pieces in [start, end) of one mapping."""
    perms, path, ours = what
    # A chunk boundary could split a match: carry a tail over.
    tail = b""
    for data in read_region(fd, start, end, res):
        buf = tail + data
        res.scanned += len(data)
        if ours:
            res.secret_memory_scanned += len(data)
        res.areas.add(path)
        for n in needles:
            c = buf.count(n)
            if c:
                res.full += c
                res.in_secret_memory += c if ours else 0
                res.where.append(f"whole {start:x}-{end:x} {perms} {path}")
        for p in pieces:
            c = buf.count(p)
            if c:
                res.pieces += c
                res.in_secret_memory += c if ours else 0
                res.where.append(f"piece {start:x}-{end:x} {perms} {path}")
        tail = data[-(max(map(len, needles)) - 1) :]


def child_env() -> dict[str, str]:
    """The usual child environment, with lazy binding as by default (the
    XFAIL cases above depend on it)."""
    env = helpers.child_env()
    env.pop("LD_BIND_NOW", None)
    return env


def text_secret(n: int) -> bytes:
    """n random characters a terminal passes through unchanged."""
    return bytes(TEXT[b % len(TEXT)] for b in os.urandom(n))


class LeakChild:
    """The child above, started for one ingestion path."""

    def __init__(self, mode: str, n: int, control: bool, tmp_dir: str) -> None:
        self.mode = mode
        self.n = n
        self.secret = b""
        self.decoy = b""
        self.master = -1
        self.tty_output = b""
        out_r, out_w = os.pipe()
        go_r, go_w = os.pipe()
        self.out = out_r
        self.go = go_w
        pass_fds = [out_w, go_r]
        stdin: int = subprocess.DEVNULL
        tty: int | None = None
        close_after: list[int] = [out_w, go_r]
        arg = "-"
        if mode == "random":
            arg = str(n)
        elif mode == "file":
            self.secret = os.urandom(n)
            arg = os.path.join(tmp_dir, "key")
            with open(arg, "wb") as f:
                f.write(self.secret)
        elif mode in ("fd", "fd_size", "fd_short"):
            self.secret = os.urandom(n)
            r, w = os.pipe()
            os.write(w, self.secret)
            os.close(w)
            pass_fds.append(r)
            close_after.append(r)
            arg = {"fd": str(r), "fd_size": f"{r}:{n}", "fd_short": f"{r}:{n + 1}"}[
                mode
            ]
        elif mode in (
            "fd0",
            "fd0_line",
            "fd0_str_crlf",
            "getpass_stdin",
            "getpass_fd0",
        ) or mode.startswith("getpass_fd0_"):
            # The secret on a pipe as stdin: raw bytes for from_fd(0), a
            # line of text for getpass.
            raw = mode in ("fd0", "fd0_line")
            self.secret = os.urandom(n) if raw else text_secret(n)
            if mode == "fd0_line" and self.secret.endswith(b"\r"):
                self.secret = self.secret[:-1] + b"k"  # "\r\n" would go too
            line = {
                "fd0": self.secret,
                "fd0_str_crlf": self.secret + b"\r\n",
                "getpass_fd0_invalid": self.secret + b"\xff\n",
            }.get(mode, self.secret + b"\n")
            if mode.startswith("getpass_fd0_"):
                arg = str(n - 1 if mode == "getpass_fd0_too_long" else 65536)
            r, w = os.pipe()
            os.write(w, line)
            os.close(w)
            stdin = r
            close_after.append(r)
        elif mode.startswith("getpass_tty"):
            self.secret = text_secret(n)
            self.decoy = text_secret(n)
            self.master, slave = os.openpty()
            stdin = tty = slave
            close_after.append(slave)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                mode,
                arg,
                "1" if control else "0",
                str(out_w),
                str(go_r),
            ],
            stdin=stdin,
            stdout=tty,
            stderr=tty,
            pass_fds=pass_fds,
            start_new_session=True,
            env=child_env(),
        )
        for fd in close_after:
            os.close(fd)
        if self.master >= 0:
            self._type_password()

    def _read_master(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):  # EIO once the child is gone
                self.tty_output += os.read(self.master, 4096)

    def _type_password(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while PROMPT not in self.tty_output:
            assert time.monotonic() < deadline, self.tty_output
            assert self.proc.poll() is None, self.tty_output
            self._read_master(0.5)
        # Typed edits: a decoy killed with Ctrl-U, a wrong key erased with
        # backspace; the kernel's line discipline applies them.
        k = self.n // 2
        keys = self.decoy + b"\x15" + self.secret[:k] + b"#\x7f" + self.secret[k:]
        keys += b"\xff\r" if self.mode == "getpass_tty_invalid" else b"\r"
        os.write(self.master, keys)

    def wait_ready(self) -> tuple[int, list[str]]:
        buf = b""
        deadline = time.monotonic() + TIMEOUT
        while not buf.endswith(b"ready\n"):
            left = deadline - time.monotonic()
            assert left > 0, f"child not ready: {buf!r} {self.tty_output!r}"
            ready, _, _ = select.select([self.out], [], [], min(left, 0.5))
            if self.master >= 0:
                self._read_master(0)
            if ready:
                chunk = os.read(self.out, 4096)
                assert chunk, f"child died ({self.proc.wait()}): {buf!r}"
                buf += chunk
        if self.mode == "random":
            self.secret, buf = buf[: self.n], buf[self.n :]
        lines = buf.decode().splitlines()
        return int(lines[-1].split()[0]), lines[:-1]

    def finish(self) -> None:
        os.close(self.go)
        assert self.proc.wait(TIMEOUT) == 0
        os.close(self.out)
        if self.master >= 0:
            os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# The zero-copy ingestion paths (getpass through sys.stdin is not one: see
# the module docstring and test_getpass_through_sys_stdin_...).
MODES = [
    "random",
    "file",
    "fd",
    "fd_size",
    "fd0",
    "fd0_line",
    "fd0_str_crlf",
    "getpass_tty",
    "getpass_fd0",
]
SIZES = [32, 300]

# Secret bytes stay in vector registers after the code that handled them
# returns (OpenSSL's SHA-256 inside the window, memsafe's own memcpy and
# vectorized UTF-8 counting); the next lazily bound call goes through
# _dl_runtime_resolve_xsavec, whose XSAVEC writes those registers onto the
# stack.  memsafe zeroes the vector registers and burns the stack below the
# caller whenever a region goes back to no-access (src/core/scrub.c): without
# that, the random and getpass cases here find copies on the child's stack
# (x86-64 with AVX-512, glibc 2.36).
CLEAN_CASES = [(mode, n) for mode in MODES for n in SIZES]


@dataclasses.dataclass
class Where:
    """Where the child's secret lives, as it reported it."""

    storage: str
    pages: int  # guarded: the data pages; sealed: the cipher arena
    pages_len: int
    slot: int  # sealed only: the ciphertext [nonce | ct | tag]
    slot_len: int
    plaintext: int  # sealed only: the plaintext slot (0: none)


def run_scan(
    mode: str, n: int, control: bool, tmp_dir: str
) -> tuple[LeakChild, ScanResult, list[str], Where | None]:
    child = LeakChild(mode, n, control, tmp_dir)
    try:
        pid, lines = child.wait_ready()
        needles = [child.secret] + ([child.decoy] if child.decoy else [])
        res = scan(pid, needles)
        # Where the secret itself lives, seen from outside.
        where = None
        if lines and lines[0].startswith("secret "):
            _, digest, locked, storage, *nums = lines[0].split()
            where = Where(storage, *map(int, nums))
            assert digest == hashlib.sha256(child.secret).hexdigest()
            assert locked == "True"
            assert storage == os.environ["MEMSAFE_STORAGE"]  # the child's engine
            m = _kernel.mapping_at(where.pages, pid)
            assert m is not None
            assert {"lo", "dd"} <= m.vmflags
            assert "wf" in m.vmflags or "dc" in m.vmflags
            if storage == "guarded":
                assert m.perms in ("---p", "---s"), m
            else:
                # Read-write, holding only ciphertext; no plaintext copy
                # once the window has closed.
                assert m.perms in ("rw-p", "rw-s"), m
                assert m.start <= where.slot
                assert where.slot + where.slot_len <= m.end
                assert where.slot_len == len(child.secret) + 12 + 16
                assert where.plaintext == 0
        child.finish()
    finally:
        child.kill()
    assert child.secret
    # The scan really covered the heap, the stack and the interpreter.
    assert res.scanned > 4 << 20, res
    assert {"[heap]", "[stack]"} <= res.areas, res.areas
    return child, res, lines, where


@pytest.mark.parametrize(("mode", "n"), CLEAN_CASES)
def test_no_copy_left_in_the_process(
    mode: str, n: int, tmp_path: object, storage: str
) -> None:
    child, res, lines, where = run_scan(mode, n, False, str(tmp_path))
    assert lines and lines[0].startswith("secret ")
    assert where is not None and where.storage == storage
    assert res.full == 0, res.where
    assert res.pieces == 0, res.where
    if storage == "sealed":
        # The arena (readable, holding the ciphertext) was scanned too.
        assert res.secret_memory_scanned > 0, res
    if child.master >= 0:
        # Nothing of the password was echoed either.
        assert child.tty_output.strip(b"\r\n") == PROMPT, child.tty_output


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_positive_control_finds_a_bytes_copy(
    mode: str, n: int, tmp_path: object
) -> None:
    _, res, _, _ = run_scan(mode, n, True, str(tmp_path))
    assert res.full >= 1, res
    assert res.pieces >= res.full * (n // PIECE)


@pytest.mark.parametrize("n", SIZES)
def test_getpass_through_sys_stdin_leaves_no_copy_in_memsafe_memory(
    n: int, tmp_path: object
) -> None:
    """Without a terminal getpass reads through sys.stdin: the copies its
    buffers keep on the Python heap are the documented trade-off, but
    memsafe's own memory (secret pages, arenas, window and scratch slots)
    holds none, and the secret is at rest."""
    _, res, lines, where = run_scan("getpass_stdin", n, False, str(tmp_path))
    assert lines and lines[0].startswith("secret ") and where is not None
    assert res.in_secret_memory == 0, res.where


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("fd_short", "EOFError"),
        ("getpass_tty_invalid", "ValueError"),
        ("getpass_fd0_invalid", "ValueError"),
        ("getpass_fd0_too_long", "ValueError"),
    ],
)
def test_failed_ingestion_leaves_no_copy(
    mode: str, error: str, n: int, tmp_path: object
) -> None:
    # The partial secret read before the failure must be wiped too.
    _, res, lines, _ = run_scan(mode, n, False, str(tmp_path))
    assert lines == [f"error {error}"]
    assert res.full == 0, res.where
    assert res.pieces == 0, res.where


def _read_child_memory(pid: int, addr: int, n: int) -> bytes:
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        return os.pread(fd, n, addr)
    except OSError as e:
        pytest.skip(f"secret memory not readable through /proc/PID/mem: {e}")
    finally:
        os.close(fd)


def test_scan_reads_the_secret_pages_when_forced(
    tmp_path: object, storage: str
) -> None:
    """Sanity for the scanner: /proc/PID/mem (FOLL_FORCE) can read even the
    no-access data pages of a guarded secret, and finds the secret there
    exactly once - so the zero counts above come from the readable mappings
    only.  A sealed secret's arena, read the same way, holds its ciphertext
    (the slot) and no plaintext."""
    child = LeakChild("random", 300, False, str(tmp_path))
    try:
        pid, lines = child.wait_ready()
        _, _, _, engine, *nums = lines[0].split()
        where = Where(engine, *map(int, nums))
        pages = _read_child_memory(pid, where.pages, where.pages_len)
        slot = b""
        if engine == "sealed":
            slot = _read_child_memory(pid, where.slot, where.slot_len)
        child.finish()
    finally:
        child.kill()
    assert engine == storage
    if engine == "guarded":
        assert pages.count(child.secret) == 1
        assert pages.endswith(child.secret)  # right-aligned against the guard page
        return
    assert len(slot) == where.slot_len == 300 + 12 + 16
    assert slot in pages
    assert slot.strip(b"\0"), "the slot is empty"
    assert child.secret not in pages
    # Not a single aligned 16-byte piece of the plaintext either.
    for i in range(0, 300 - PIECE + 1, PIECE):
        assert child.secret[i : i + PIECE] not in pages
