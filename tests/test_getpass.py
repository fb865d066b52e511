"""SecretStr.getpass on a real terminal (a pty) and without one.

Each case runs in a child process.  With a terminal, the child is a session
leader whose controlling terminal is the slave side of a pty; the test
types on the master side and reads back everything the child wrote to the
terminal.  Results come back over a separate status pipe, so the terminal
output holds only what getpass itself wrote.  Without a terminal, the child
runs in a new session (so /dev/tty cannot be opened) with stdin a pipe.
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


def flags(secret):
    m = _kernel.mapping_at(secret._region_info()["data"])
    return ",".join(sorted(m.vmflags)) + " " + m.perms
"""


class Child:
    """A child Python running PRELUDE + body, with or without a pty."""

    def __init__(self, body: str, *, tty: bool = True, stdin: bytes = b"") -> None:
        code = PRELUDE + textwrap.dedent(body)
        status_r, status_w = os.pipe()
        self.status_fd = status_r
        self.master = -1
        self.output = b""
        env = helpers.child_env()
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
    p = memsafe.SecretStr.getpass(PROMPT)
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
    keys: bytes, prompt: str = "Enter PIN: ", *, pause: float = 0.0
) -> tuple[dict[str, str], bytes]:
    """Type keys at the prompt; return the child's report and the terminal."""
    child = Child(f"PROMPT = {prompt!r}\n" + TTY_READ)
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
def test_result_is_locked_and_hardened() -> None:
    report, _ = tty_session(b"correct horse\r")
    assert bytes.fromhex(report["hex"]) == b"correct horse"
    assert report["locked"] == "True"
    vmflags, perms = report["flags"].split()
    assert {"lo", "dd"} <= set(vmflags.split(","))
    assert "wf" in vmflags.split(",") or "dc" in vmflags.split(",")
    assert perms in ("---p", "---s")


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
    child = Child("PROMPT = 'Enter PIN: '\n" + TTY_READ)
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
report("rest", os.read(0, 1000).hex() or "-")
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
    # getpass.getpass reads text-mode stdin, which turns "\r\n" into "\n".
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
