"""SecretStr.getpass on a real terminal (a pty) and without one.

Each case runs in a child process.  With a terminal, the child is a session
leader whose controlling terminal is the slave side of a pty; the test
types on the master side and reads back everything the child wrote to the
terminal.  Results come back over a separate status pipe, so the terminal
output holds only what getpass itself wrote.  Without a terminal, the child
runs in a new session (so /dev/tty cannot be opened) with stdin a pipe, and
getpass reads the line through sys.stdin (so what the program has already
buffered there is never skipped): the rest of the input is then in
sys.stdin's buffer, not on file descriptor 0.  Every case runs with both
storage engines (the child inherits MEMSAFE_STORAGE).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import helpers
import pytest

termios = pytest.importorskip("termios", reason="POSIX terminals only")

pytestmark = [helpers.posix_only]

TIMEOUT = 20.0

PRELUDE = """\
import fcntl, getpass, os, sys, termios, warnings
import memsafe
from memsafe import _kernel

STATUS = int(sys.argv[1])
if sys.argv[2] == "tty":
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def report(*parts):
    os.write(STATUS, (" ".join(str(p) for p in parts) + "\\n").encode())


def hexof(secret):
    with secret.read() as view:
        return view.hex()


# vmflags and perms of the mapping that stores the secret (guarded: its
# data pages; sealed: its cipher arena), its engine, and whether no
# plaintext is reachable (guarded: no-access; sealed: no plaintext slot).
def flags(secret):
    info = secret._region_info()
    if info["storage"] == "guarded":
        m = _kernel.mapping_at(info["data"])
        rest = m.perms in ("---p", "---s")
    else:
        m = _kernel.mapping_at(info["arena"])
        rest = info["plaintext"] == 0
    return " ".join([",".join(sorted(m.vmflags)), m.perms, info["storage"], str(rest)])


# What is left of the input after getpass: in sys.stdin's buffer.
def rest_of_stdin():
    return sys.stdin.read().encode("utf-8", "surrogateescape")
"""


class Child:
    """A child Python running PRELUDE + body, with or without a pty."""

    def __init__(
        self,
        body: str,
        *,
        tty: bool = True,
        stdin: bytes = b"",
        env: dict[str, str] | None = None,
    ) -> None:
        code = PRELUDE + textwrap.dedent(body)
        status_r, status_w = os.pipe()
        self.status_fd = status_r
        self.master = -1
        self.output = b""
        env = helpers.child_env(env)
        if tty:
            self.master, slave = os.openpty()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, str(status_w), "tty"],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                pass_fds=(status_w,),
                env=env,
            )
            os.close(slave)
        else:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, str(status_w), "pipe"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=(status_w,),
                env=env,
            )
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()
            self.proc.stdin = None
        os.close(status_w)

    def _read_master(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the slave side is closed
            return False
        self.output += chunk
        return bool(chunk)

    def wait_for(self, marker: bytes) -> None:
        """Read the terminal until marker shows up."""
        deadline = time.monotonic() + TIMEOUT
        while marker not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} on the terminal: {self.output!r}"
            if not self._read_master(left) and self.proc.poll() is not None:
                raise AssertionError(
                    f"child exited ({self.proc.returncode}) before {marker!r}: "
                    f"{self.output!r}"
                )

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def echo_is_on(self) -> bool:
        """ECHO of the terminal, seen from the master side."""
        return bool(termios.tcgetattr(self.master)[3] & termios.ECHO)

    def finish(self) -> tuple[list[str], bytes, bytes]:
        """Wait for the child; return its status lines, terminal output
        (or stdout) and stderr."""
        status = b""
        deadline = time.monotonic() + TIMEOUT
        while True:
            fds = [self.status_fd] + ([self.master] if self.master >= 0 else [])
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                raise AssertionError(f"child hung; terminal: {self.output!r}")
            ready, _, _ = select.select(fds, [], [], left)
            if self.master in ready and not self._read_master(0):
                os.close(self.master)
                self.master = -1
            if self.status_fd in ready:
                chunk = os.read(self.status_fd, 4096)
                if not chunk:
                    break
                status += chunk
        out, err = self.proc.communicate(timeout=TIMEOUT)
        while self.master >= 0 and self._read_master(0.2):
            pass
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        os.close(self.status_fd)
        if self.proc.stdout is None:
            out = self.output
        assert self.proc.returncode == 0, (
            f"child failed ({self.proc.returncode}): status={status!r} "
            f"out={out!r} err={err!r}"
        )
        return status.decode().splitlines(), out, err or b""


def quiet_terminal(output: bytes, prompt: bytes) -> bytes:
    """What the child wrote to the terminal apart from the prompt."""
    assert output.count(prompt) == 1, output
    return output.replace(prompt, b"").strip(b"\r\n")


TTY_READ = """
before = termios.tcgetattr(0)
try:
    p = memsafe.SecretStr.getpass(PROMPT, **KW)
except BaseException as e:
    report("raised", type(e).__name__, termios.tcgetattr(0) == before)
    report("message", repr(str(e)))
else:
    after = termios.tcgetattr(0)
    report("type", type(p).__name__)
    report("hex", hexof(p))
    report("len", len(p))
    report("restored", after == before, bool(after[3] & termios.ECHO))
    report("locked", p.locked)
    report("flags", flags(p))
"""


def tty_session(
    keys: bytes,
    prompt: str = "Enter PIN: ",
    *,
    pause: float = 0.0,
    kw: dict[str, object] | None = None,
) -> tuple[dict[str, str], bytes]:
    """Type keys at the prompt (getpass called with keyword arguments kw);
    return the child's report and the terminal."""
    child = Child(f"PROMPT = {prompt!r}\nKW = {kw or {}!r}\n" + TTY_READ)
    try:
        child.wait_for(prompt.encode())
        # Echo is off before the prompt is written (keys typed earlier
        # would be flushed with TCSAFLUSH, and would have been echoed).
        assert not child.echo_is_on()
        if pause:
            time.sleep(pause)
        child.type(keys)
        lines, out, _ = child.finish()
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
    report = dict(line.split(" ", 1) for line in lines)
    return report, out


# ---- on a terminal ----------------------------------------------------------


def test_typed_edits_are_applied_and_nothing_is_echoed() -> None:
    report, out = tty_session(b"hunterX\x7f2\x15s3cret\x7f\x7ft!\r")
    assert bytes.fromhex(report["hex"]) == b"s3crt!"
    assert report["len"] == "6"
    assert report["type"] == "SecretStr"
    assert report["restored"] == "True True"
    # Only the prompt and the final newline reach the terminal.
    rest = quiet_terminal(out, b"Enter PIN: ")
    assert rest == b"", out
    for fragment in (b"hunter", b"s3c", b"t!", b"X", b"2"):
        assert fragment not in out


@helpers.not_sanitized
@helpers.linux_only
def test_result_is_locked_and_hardened(storage: str) -> None:
    report, _ = tty_session(b"correct horse\r")
    assert bytes.fromhex(report["hex"]) == b"correct horse"
    assert report["locked"] == "True"
    vmflags, perms, engine, at_rest = report["flags"].split()
    assert engine == storage
    assert {"lo", "dd"} <= set(vmflags.split(","))
    assert "wf" in vmflags.split(",") or "dc" in vmflags.split(",")
    # Guarded pages are no-access at rest; a sealed arena is read-write but
    # holds only ciphertext, and no plaintext slot is left.
    assert perms in (("---p", "---s") if storage == "guarded" else ("rw-p", "rw-s"))
    assert at_rest == "True"


def test_default_prompt() -> None:
    child = Child(
        """
        p = memsafe.SecretStr.getpass()
        report(hexof(p))
        """
    )
    child.wait_for(b"Password: ")
    child.type(b"pw\r")
    lines, out, _ = child.finish()
    assert lines == [b"pw".hex()]
    assert quiet_terminal(out, b"Password: ") == b""


def test_non_ascii_password_and_prompt() -> None:
    password = "pässwörd€𝄞"
    report, out = tty_session(password.encode() + b"\r", prompt="Clé: ")
    assert bytes.fromhex(report["hex"]) == password.encode()
    assert report["len"] == str(len(password)) == "10"
    assert quiet_terminal(out, "Clé: ".encode()) == b""


def test_long_line_crosses_scratch_growth() -> None:
    # A canonical-mode line holds up to 4095 characters; the scratch region
    # starts at 4080 bytes and must grow once.
    password = (b"0123456789abcdef" * 256)[:4090]
    report, out = tty_session(password + b"\r")
    assert bytes.fromhex(report["hex"]) == password
    assert report["len"] == "4090"
    assert b"0123456789" not in out


def test_empty_line_gives_an_empty_secret() -> None:
    report, _ = tty_session(b"\r")
    assert report["hex"] == ""
    assert report["len"] == "0"


def test_ctrl_c_restores_the_terminal() -> None:
    report, out = tty_session(b"abc\x03", pause=0.1)
    assert report["raised"] == "KeyboardInterrupt True"
    assert b"abc" not in out


def test_sigint_restores_the_terminal() -> None:
    child = Child("PROMPT = 'Enter PIN: '\nKW = {}\n" + TTY_READ)
    child.wait_for(b"Enter PIN: ")
    child.type(b"partial")
    time.sleep(0.1)  # let the child block in read()
    os.kill(child.proc.pid, signal.SIGINT)
    lines, out, _ = child.finish()
    report = dict(line.split(" ", 1) for line in lines)
    assert report["raised"] == "KeyboardInterrupt True"
    assert b"partial" not in out


def test_ctrl_d_at_empty_prompt_is_eoferror() -> None:
    report, _ = tty_session(b"\x04")
    assert report["raised"] == "EOFError True"


def test_invalid_utf8_from_terminal() -> None:
    report, out = tty_session(b"secretA\xffsecretB\r")
    assert report["raised"] == "ValueError True"
    message = report["message"]
    assert "7" in message  # the byte offset of \xff
    for fragment in ("secretA", "secretB", "xff", "ÿ", "255"):
        assert fragment not in message
    assert b"secret" not in out


@pytest.mark.parametrize(
    ("keys", "max_size", "ok"),
    [
        (b"hunter2", 7, True),
        (b"hunter2", 6, False),
        ("pässwörd".encode(), 10, True),  # 8 characters, 10 bytes
        ("pässwörd".encode(), 9, False),  # the limit counts bytes
        (b"", 0, True),
        (b"qq", 1, False),
    ],
)
def test_max_size_on_a_terminal(keys: bytes, max_size: int, ok: bool) -> None:
    report, out = tty_session(keys + b"\r", kw={"max_size": max_size})
    if ok:
        assert bytes.fromhex(report["hex"]) == keys
        return
    assert report["raised"] == "ValueError True"  # terminal restored
    assert "max_size" in report["message"]
    assert keys.decode() not in report["message"]
    assert keys not in out


def test_storage_argument_on_a_terminal(storage: str) -> None:
    other = "sealed" if storage == "guarded" else "guarded"
    report, _ = tty_session(b"pw\r", kw={"storage": other})
    assert bytes.fromhex(report["hex"]) == b"pw"
    assert report["flags"].split()[2] == other
    report, _ = tty_session(b"pw\r")  # storage=None: the default engine
    assert report["flags"].split()[2] == storage


def test_subclass_getpass_returns_the_subclass() -> None:
    child = Child(
        """
        class Pin(memsafe.SecretStr):
            pass
        p = Pin.getpass("PIN? ")
        report(type(p).__name__, hexof(p))
        """
    )
    child.wait_for(b"PIN? ")
    child.type(b"1234\r")
    lines, _, _ = child.finish()
    assert lines == ["Pin " + b"1234".hex()]


def test_bad_prompt_type() -> None:
    child = Child(
        """
        before = termios.tcgetattr(0)
        for bad in (123, b"bytes", "\\ud800: "):
            try:
                memsafe.SecretStr.getpass(bad)
            except (TypeError, ValueError) as e:
                report(type(e).__name__)
        report(termios.tcgetattr(0) == before)
        """
    )
    lines, out, _ = child.finish()
    assert lines == ["TypeError", "TypeError", "UnicodeEncodeError", "True"]
    assert out == b""  # nothing was written to the terminal


# ---- without a terminal -------------------------------------------------------


NO_TTY_READ = """
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        p = memsafe.SecretStr.getpass("PW: ")
    except BaseException as e:
        report("raised", type(e).__name__)
        report("message", repr(str(e)))
    else:
        report("hex", hexof(p))
        report("len", len(p))
        report("locked", p.locked)
report("warnings", ",".join(w.category.__name__ for w in caught) or "-")
report("rest", rest_of_stdin().hex() or "-")
"""


def no_tty_session(stdin: bytes) -> tuple[dict[str, str], bytes]:
    child = Child(NO_TTY_READ, tty=False, stdin=stdin)
    lines, _, err = child.finish()
    return dict(line.split(" ", 1) for line in lines), err


def test_no_terminal_reads_one_line_from_stdin_with_a_warning() -> None:
    report, err = no_tty_session(b"line one\nline two\n")
    assert bytes.fromhex(report["hex"]) == b"line one"
    assert report["len"] == "8"
    assert report["locked"] == "True"
    assert report["warnings"] == "GetPassWarning"
    assert b"PW: " in err  # the prompt goes to stderr, as getpass.getpass does
    # Exactly one line was consumed.
    assert bytes.fromhex(report["rest"]) == b"line two\n"


def test_no_terminal_last_line_without_newline() -> None:
    report, _ = no_tty_session(b"no newline")
    assert bytes.fromhex(report["hex"]) == b"no newline"


def test_no_terminal_empty_line() -> None:
    report, _ = no_tty_session(b"\nnext\n")
    assert report["hex"] == ""
    assert report["len"] == "0"
    assert bytes.fromhex(report["rest"]) == b"next\n"


def test_no_terminal_crlf_line_ending() -> None:
    # sys.stdin on POSIX does not translate "\r\n" (newline="\n"): getpass
    # drops the "\r" itself, as getpass.getpass's callers expect.
    report, _ = no_tty_session(b"pw\r\nnext\n")
    assert bytes.fromhex(report["hex"]) == b"pw"
    assert bytes.fromhex(report["rest"]) == b"next\n"


def test_no_terminal_eof_is_eoferror() -> None:
    report, _ = no_tty_session(b"")
    assert report["raised"] == "EOFError"
    assert report["warnings"] == "GetPassWarning"


def test_no_terminal_long_line() -> None:
    line = os.urandom(6000).hex().encode()  # 12000 bytes: several growths
    report, _ = no_tty_session(line + b"\n")
    assert bytes.fromhex(report["hex"]) == line
    assert report["len"] == str(len(line))


def test_no_terminal_invalid_utf8() -> None:
    report, _ = no_tty_session(b"goodpart\xc3(badpart\n")
    assert report["raised"] == "ValueError"
    message = report["message"]
    assert "8" in message
    for fragment in ("goodpart", "badpart", "xc3", "c3"):
        assert fragment not in message


def test_no_terminal_closed_stdin_is_oserror() -> None:
    child = Child(
        """
        import errno
        os.close(0)
        warnings.simplefilter("ignore")
        try:
            memsafe.SecretStr.getpass("PW: ")
        except OSError as e:
            report("OSError", e.errno == errno.EBADF)
        """,
        tty=False,
    )
    lines, _, _ = child.finish()
    assert lines == ["OSError True"]


def test_issue_input_then_getpass_from_a_pipe() -> None:
    """The reported scenario: printf 'alice\\nhunter2\\n' | setsid python -c
    "user = input(); password = memsafe.SecretStr.getpass()" - input() has
    pulled the whole pipe into sys.stdin's buffer, and getpass must read the
    password from there, not find fd 0 at EOF."""
    code = textwrap.dedent(
        """
        import os
        import memsafe
        try:
            os.close(os.open("/dev/tty", os.O_RDWR))
        except OSError:
            print("no-tty")
        user = input()
        password = memsafe.SecretStr.getpass()
        print(repr(user), password == "hunter2", password.reveal() == "hunter2",
              len(password), type(password).__name__)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=b"alice\nhunter2\n",
        capture_output=True,
        start_new_session=True,  # setsid: no controlling terminal
        env=helpers.child_env(),
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().splitlines() == [
        "no-tty",
        "'alice' True True 7 SecretStr",
    ]
    assert b"GetPassWarning" in proc.stderr
    assert b"Password: " in proc.stderr
    assert b"hunter2" not in proc.stderr


def test_no_terminal_lines_stay_in_order() -> None:
    child = Child(
        """
        warnings.simplefilter("ignore")
        report("readline", repr(sys.stdin.readline()))
        report("getpass", hexof(memsafe.SecretStr.getpass("")))
        report("input", repr(input()))
        report("getpass", hexof(memsafe.SecretStr.getpass("")))
        report("rest", rest_of_stdin().hex())
        """,
        tty=False,
        stdin=b"one\ntwo\nthree\nfour\nfive\nsix",
    )
    lines, _, _ = child.finish()
    assert lines == [
        "readline 'one\\n'",
        "getpass " + b"two".hex(),
        "input 'three'",
        "getpass " + b"four".hex(),
        "rest " + b"five\nsix".hex(),
    ]


def test_no_terminal_without_sys_stdin_reads_fd0() -> None:
    """sys.stdin is None (pythonw, a daemon that closed it): file
    descriptor 0 is read directly, one line and no more."""
    child = Child(
        """
        sys.stdin = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = memsafe.SecretStr.getpass("PW: ")
        report("hex", hexof(p))
        report("warnings", ",".join(w.category.__name__ for w in caught))
        report("rest", os.read(0, 1000).hex())
        """,
        tty=False,
        stdin=b"line one\nline two\n",
    )
    lines, _, err = child.finish()
    report = dict(line.split(" ", 1) for line in lines)
    assert bytes.fromhex(report["hex"]) == b"line one"
    assert report["warnings"] == "GetPassWarning"
    assert bytes.fromhex(report["rest"]) == b"line two\n"
    assert b"PW: " in err


# (line, max_size argument as Python source or None for the default, result)
MAX_SIZE_CASES = [
    ("x" * 8, "8", "ok 8"),
    ("x" * 9, "8", "ValueError"),
    ("é" * 4, "8", "ok 8"),
    ("é" * 5, "8", "ValueError"),  # 5 characters, 10 bytes: bytes count
    ("", "0", "ok 0"),
    ("a", "0", "ValueError"),
    ("y" * 65536, None, "ok 65536"),  # the default limit
    ("y" * 65537, None, "ValueError"),
    ("z" * 100000, "None", "ok 100000"),  # max_size=None: no limit
    ("w" * 5, "Index(5)", "ok 5"),  # sizes are operator.index integers
]


def test_no_terminal_max_size() -> None:
    """A line over max_size UTF-8 bytes is a ValueError that shows nothing
    of the line."""
    calls = [
        "memsafe.SecretStr.getpass('')"
        if arg is None
        else f"memsafe.SecretStr.getpass('', max_size={arg})"
        for _, arg, _ in MAX_SIZE_CASES
    ]
    child = Child(
        f"""
        warnings.simplefilter("ignore")
        class Index:
            def __init__(self, n):
                self.n = n
            def __index__(self):
                return self.n
        for call in {calls!r}:
            try:
                p = eval(call)
            except ValueError as e:
                report("ValueError")
                if "max_size" not in str(e):
                    report("bad message", repr(str(e)))
                for ch in "xéyzw":
                    if ch * 3 in str(e):
                        report("content in message", repr(str(e)))
            else:
                report("ok", p.nbytes)
        report("rest", rest_of_stdin().hex() or "-")
        """,
        tty=False,
        stdin=b"".join(t.encode() + b"\n" for t, _, _ in MAX_SIZE_CASES) + b"end\n",
    )
    lines, _, _ = child.finish()
    assert lines == [want for _, _, want in MAX_SIZE_CASES] + ["rest " + b"end\n".hex()]


def test_no_terminal_bad_max_size_reads_nothing() -> None:
    child = Child(
        """
        warnings.simplefilter("ignore")
        for bad in (-1, "8", 8.0, b"8"):
            try:
                memsafe.SecretStr.getpass("", max_size=bad)
            except (TypeError, ValueError) as e:
                report(type(e).__name__)
        report("rest", rest_of_stdin().hex())
        """,
        tty=False,
        stdin=b"pw\n",
    )
    lines, _, _ = child.finish()
    assert lines == [
        "ValueError",
        "TypeError",
        "TypeError",
        "TypeError",
        "rest " + b"pw\n".hex(),
    ]


def test_no_terminal_storage_argument(storage: str) -> None:
    child = Child(
        """
        warnings.simplefilter("ignore")
        kws = [{}, {"storage": None}, {"storage": "guarded"}, {"storage": "sealed"}]
        for kw in kws:
            p = memsafe.SecretStr.getpass("", **kw)
            report(p.storage, hexof(p), flags(p).split()[-1])
        try:
            memsafe.SecretStr.getpass("", storage="bogus")
        except ValueError:
            report("ValueError")
        report("rest", rest_of_stdin().hex())
        """,
        tty=False,
        stdin=b"a\nb\nc\nd\ne\n",
    )
    lines, _, _ = child.finish()
    assert lines == [
        f"{storage} {b'a'.hex()} True",  # the default: MEMSAFE_STORAGE
        f"{storage} {b'b'.hex()} True",
        f"guarded {b'c'.hex()} True",
        f"sealed {b'd'.hex()} True",
        "ValueError",  # refused before anything was read
        "rest " + b"e\n".hex(),
    ]


@helpers.not_sanitized
@helpers.linux_only
def test_no_terminal_wipes_the_line_object_nobody_else_holds() -> None:
    """The str that sys.stdin.readline() returned is overwritten before it
    is freed when memsafe holds the only reference; a str that someone else
    also holds is left intact (never corrupt another object)."""
    child = Child(
        """
        import ctypes
        HEADER = sys.getsizeof("") - 1  # a compact ASCII str's data offset
        secret = "".join(["hunter2-", "q" * 300])  # built at run time: not interned
        kept = []
        class Stdin:
            def __init__(self, keep):
                self.keep = keep
                self.addr = 0
            def readline(self, size=-1):
                line = "".join([secret, "\\n"])
                self.addr = id(line)
                if self.keep:
                    kept.append(line)
                return line
        warnings.simplefilter("ignore")
        for keep in (False, True):
            sys.stdin = Stdin(keep)
            p = memsafe.SecretStr.getpass("")
            data = ctypes.string_at(sys.stdin.addr + HEADER, len(secret))
            wiped = data == bytes(len(secret))
            report(keep, p == secret, data == secret.encode(), wiped)
        report("kept", kept[0] == secret + "\\n")
        """,
        tty=False,
    )
    lines, _, _ = child.finish()
    assert lines == ["False True False True", "True True True False", "kept True"]


@pytest.mark.storage("any")
def test_no_terminal_invalid_utf8_with_strict_stdin() -> None:
    """With sys.stdin.errors == 'strict' (PYTHONIOENCODING=utf-8:strict, or
    a UTF-8 locale other than C/POSIX) sys.stdin.readline() raises a
    UnicodeDecodeError that names the byte and carries the raw input - the
    password and the lines after it - in .object: memsafe raises a
    ValueError that carries none of it instead."""
    child = Child(
        """
        warnings.simplefilter("ignore")
        try:
            memsafe.SecretStr.getpass("PW: ")
        except ValueError as e:
            report("message", repr(str(e)))
            report("unicode-error", isinstance(e, UnicodeError))
            held = [getattr(e, "object", None), getattr(e.__context__, "object", None)]
            report("carries", any(
                isinstance(x, (bytes, bytearray)) and b"goodpart" in x for x in held
            ))
        """,
        tty=False,
        stdin=b"goodpart\xc3(badpart\nnext line\n",
        env={"PYTHONIOENCODING": "utf-8:strict"},
    )
    lines, _, _ = child.finish()
    report = dict(line.split(" ", 1) for line in lines)
    assert report["unicode-error"] == "False"  # which would carry the bytes
    assert "8" in report["message"]
    for fragment in ("goodpart", "badpart", "xc3", "c3"):
        assert fragment not in report["message"]
    assert report["carries"] == "False"


def test_utf8_validation_matches_python() -> None:
    """ingest's UTF-8 check accepts and rejects what Python's decoder does
    and reports the same offset (many lines through one child's stdin)."""
    import random

    rng = random.Random(1234)
    samples: list[bytes] = [
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xc2\x80",
        b"\xdf\xbf",
        b"\xe0\x80\x80",
        b"\xe0\xa0\x80",
        b"\xed\x9f\xbf",
        b"\xed\xa0\x80",
        b"\xef\xbf\xbf",
        b"\xf0\x8f\xbf\xbf",
        b"\xf0\x90\x80\x80",
        b"\xf4\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xff",
        b"\x80",
        b"ab\xe2\x82",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"x\xf0\x9f\x98\x80y",
        "é€𝄞".encode(),
    ]
    alphabet = [
        b"a",
        b"\x80",
        b"\xbf",
        b"\xc2",
        b"\xe0",
        b"\xed",
        b"\xf0",
        b"\xf4",
        b"\xff",
        "é".encode(),
        "€".encode(),
        "𝄞".encode(),
    ]
    for _ in range(300):
        samples.append(b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))))
    child = Child(
        f"""
        warnings.simplefilter("ignore")
        for expected in {samples!r}:
            try:
                want = ("ok", len(expected.decode("utf-8")))
            except UnicodeDecodeError as e:
                want = ("bad", e.start)
            try:
                p = memsafe.SecretStr.getpass("")
                with p.read() as view:
                    same = bytes(view) == expected
                got = ("ok", len(p)) if same else ("wrong", 0)
            except ValueError as e:
                got = ("bad", int(str(e).split("offset ")[1].split(")")[0]))
            if got != want:
                report("mismatch", expected.hex(), got, want)
        report("done")
        """,
        tty=False,
        stdin=b"".join(s + b"\n" for s in samples),
    )
    lines, _, _ = child.finish()
    assert lines == ["done"]


def test_no_terminal_overlong_line_leaves_no_tail_for_the_next_reader() -> None:
    """A line over max_size is refused, and the rest of it is read and
    dropped (wiped), so the next input() does not get the tail of the
    password; the next line is intact."""
    for stdin_is_none in (False, True):
        code = (
            "import sys, warnings, memsafe\n"
            "warnings.simplefilter('ignore')\n"
            + ("sys.stdin = None\n" if stdin_is_none else "")
            + "try:\n"
            "    memsafe.SecretStr.getpass('', max_size=10)\n"
            "except ValueError as e:\n"
            "    print('refused', 'max_size' in str(e))\n"
            + (
                "import os; print('next', os.read(0, 100).decode().strip())\n"
                if stdin_is_none
                else "print('next', sys.stdin.read().strip())\n"
            )
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=b"hunter2hunter2hunter2hunter2\nnext line\n",
            capture_output=True,
            start_new_session=True,
            env=helpers.child_env(),
            timeout=60,
        )
        out = proc.stdout.decode().split("\n")
        assert out[0] == "refused True", proc.stderr.decode()
        assert out[1] == "next next line", (stdin_is_none, out)
