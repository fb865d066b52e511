"""Windows: protections as the kernel reports them, and the console.

The Windows counterpart of test_kernel_view.py: page protections from
VirtualQuery, the locked bit from QueryWorkingSetEx, the reservation gone
after close (VirtualFree MEM_RELEASE), locking beyond the default working
set (SetProcessWorkingSetSize), and SecretStr.getpass reading the console
with ReadConsoleW, echo off, straight into locked memory.

What wine (used by scripts/windows-test) cannot honour is detected at run
time (ntdll exports wine_get_version) and skipped with that reason.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import memsafe

pytestmark = [
    pytest.mark.skipif(sys.platform != "win32", reason="Windows only"),
    pytest.mark.storage("guarded"),
]

PAGE_NOACCESS = 0x01
PAGE_READONLY = 0x02
PAGE_READWRITE = 0x04
MEM_COMMIT = 0x1000
MEM_FREE = 0x10000
ENABLE_ECHO_INPUT = 0x0004
ENABLE_LINE_INPUT = 0x0002
CREATE_NEW_PROCESS_GROUP = 0x00000200
DETACHED_PROCESS = 0x00000008


def wine_version() -> str | None:
    """The wine version when running under wine, else None."""
    ntdll: Any = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined,unused-ignore]
    try:
        get = ntdll.wine_get_version
    except AttributeError:
        return None
    get.restype = ctypes.c_char_p
    return "wine " + str(get().decode())


class MemoryBasicInformation(ctypes.Structure):
    _fields_ = [
        ("BaseAddress", ctypes.c_void_p),
        ("AllocationBase", ctypes.c_void_p),
        ("AllocationProtect", ctypes.c_uint32),
        ("PartitionId", ctypes.c_uint16),
        ("RegionSize", ctypes.c_size_t),
        ("State", ctypes.c_uint32),
        ("Protect", ctypes.c_uint32),
        ("Type", ctypes.c_uint32),
    ]


class WorkingSetExInformation(ctypes.Structure):
    _fields_ = [
        ("VirtualAddress", ctypes.c_void_p),
        ("VirtualAttributes", ctypes.c_size_t),
    ]


def kernel32() -> Any:
    k: Any = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    k.VirtualQuery.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(MemoryBasicInformation),
        ctypes.c_size_t,
    ]
    k.VirtualQuery.restype = ctypes.c_size_t
    k.GetCurrentProcess.restype = ctypes.c_void_p
    k.K32QueryWorkingSetEx.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_uint32,
    ]
    k.K32QueryWorkingSetEx.restype = ctypes.c_int
    k.VirtualAlloc.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint32,
        ctypes.c_uint32,
    ]
    k.VirtualAlloc.restype = ctypes.c_void_p
    k.VirtualLock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    k.VirtualFree.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32]
    return k


def query(addr: int) -> MemoryBasicInformation:
    """VirtualQuery: the kernel's record of the pages at addr."""
    mbi = MemoryBasicInformation()
    got = kernel32().VirtualQuery(addr, ctypes.byref(mbi), ctypes.sizeof(mbi))
    assert got == ctypes.sizeof(mbi), ctypes.get_last_error()  # type: ignore[attr-defined,unused-ignore]
    return mbi


def pages(start: int, length: int) -> list[int]:
    ps = 4096
    return list(range(start - start % ps, start + length, ps))


def protections(addr: int, length: int) -> set[int]:
    """The Protect values of every page in [addr, addr + length)."""
    return {query(p).Protect for p in pages(addr, length)}


def guard_addresses(info: dict[str, int]) -> tuple[int, int]:
    """Last byte of the leading guard page, first byte of the trailing one."""
    return info["data"] - 1, info["data"] + info["data_len"]


# ---- page protections (VirtualQuery) ------------------------------------------


@pytest.mark.parametrize("size", [1, 32, 4080, 4081, 4096, 65536])
def test_no_access_outside_windows_and_guards(size: int) -> None:
    with memsafe.MemSafe(size) as m:
        info = m._region_info()
        assert protections(info["data"], info["data_len"]) == {PAGE_NOACCESS}
        assert {query(a).State for a in pages(info["data"], info["data_len"])} == {
            MEM_COMMIT
        }
        before, after = guard_addresses(info)
        assert query(before).Protect == PAGE_NOACCESS
        assert query(after).Protect == PAGE_NOACCESS
        # The secret ends right before the trailing guard page.
        assert info["secret"] + info["len"] == after


def test_read_window_is_read_only_write_window_read_write() -> None:
    with memsafe.MemSafe(b"k" * 5000) as m:
        info = m._region_info()
        data, n = info["data"], info["data_len"]
        before, after = guard_addresses(info)
        with m.read() as view:
            assert protections(data, n) == {PAGE_READONLY}
            assert query(before).Protect == PAGE_NOACCESS
            assert query(after).Protect == PAGE_NOACCESS
            assert bytes(view[:1]) == b"k"
        assert protections(data, n) == {PAGE_NOACCESS}
        with m.write() as view:
            assert protections(data, n) == {PAGE_READWRITE}
            view[0] = ord("j")
        assert protections(data, n) == {PAGE_NOACCESS}


def test_last_read_window_to_close_restores_no_access() -> None:
    k = memsafe.SecretBytes(b"s" * 100)
    info = k._region_info()
    outer = k.read()
    outer.__enter__()
    inner = k.read()
    inner.__enter__()
    inner.__exit__(None, None, None)
    assert query(info["data"]).Protect == PAGE_READONLY
    outer.__exit__(None, None, None)
    assert query(info["data"]).Protect == PAGE_NOACCESS
    k.close()


def test_close_releases_the_whole_reservation() -> None:
    m = memsafe.MemSafe(10_000)
    info = m._region_info()
    base = info["base"]
    assert query(base).AllocationBase == base
    m.close()
    for addr in (base, info["data"], info["data"] + info["data_len"]):
        mbi = query(addr)
        # Released (MEM_RELEASE), not merely decommitted: the addresses are
        # free, or already part of some other, newer allocation.
        assert mbi.State == MEM_FREE or mbi.AllocationBase != base


def test_extend_releases_the_old_region() -> None:
    m = memsafe.MemSafe(b"a" * 100)
    old = m._region_info()
    m.extend(b"b" * 9000)
    new = m._region_info()
    assert new["base"] != old["base"]
    mbi = query(old["base"])
    assert mbi.State == MEM_FREE or mbi.AllocationBase != old["base"]
    assert protections(new["data"], new["data_len"]) == {PAGE_NOACCESS}
    m.close()


# ---- locking (QueryWorkingSetEx) ---------------------------------------------


def working_set_bits(addr: int) -> tuple[bool, bool]:
    """(Valid, Locked) for the page at addr, from QueryWorkingSetEx."""
    k = kernel32()
    entry = WorkingSetExInformation(addr - addr % 4096, 0)
    ok = k.K32QueryWorkingSetEx(
        k.GetCurrentProcess(), ctypes.byref(entry), ctypes.sizeof(entry)
    )
    assert ok, ctypes.get_last_error()  # type: ignore[attr-defined,unused-ignore]
    attrs = entry.VirtualAttributes
    return bool(attrs & 1), bool(attrs >> 22 & 1)


def locked_bit_reported() -> bool:
    """True if QueryWorkingSetEx reports VirtualLock here (wine may not)."""
    k = kernel32()
    mem_commit_reserve, mem_release = 0x3000, 0x8000
    p = k.VirtualAlloc(None, 4096, mem_commit_reserve, PAGE_READWRITE)
    assert p
    try:
        ctypes.memset(p, 1, 1)
        assert k.VirtualLock(p, 4096)
        return working_set_bits(p) == (True, True)
    finally:
        k.VirtualFree(p, 0, mem_release)


@pytest.mark.parametrize("size", [1, 4096, 65536])
def test_data_pages_locked_in_working_set(size: int) -> None:
    if not locked_bit_reported():
        pytest.skip(
            f"QueryWorkingSetEx does not report VirtualLock here ({wine_version()})"
        )
    plain = bytearray(4096 * 3)
    with memsafe.MemSafe(size) as m:
        assert m.locked
        info = m._region_info()
        # Inside a window the pages are accessible, so their working-set
        # entries are valid and carry the locked bit.
        with m.read():
            bits = {working_set_bits(a) for a in pages(info["data"], info["data_len"])}
        assert bits == {(True, True)}
    # The bit discriminates: ordinary heap memory is not locked.
    addr = ctypes.addressof((ctypes.c_char * len(plain)).from_buffer(plain)) + 4096
    assert working_set_bits(addr)[1] is False


def test_locking_beyond_default_working_set_grows_it() -> None:
    version = wine_version()
    if version is not None:
        pytest.skip(f"{version}: VirtualLock never fails (no working-set limits)")
    code = """
        import ctypes, memsafe
        k = ctypes.WinDLL("kernel32")
        k.GetCurrentProcess.restype = ctypes.c_void_p
        k.GetProcessWorkingSetSize.argtypes = [ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
        def ws():
            lo, hi = ctypes.c_size_t(), ctypes.c_size_t()
            assert k.GetProcessWorkingSetSize(k.GetCurrentProcess(),
                                              ctypes.byref(lo), ctypes.byref(hi))
            return lo.value
        memsafe.set_lock_policy("strict")
        before = ws()
        count = 4 + before // (1 << 20)
        held = [memsafe.SecretBytes.random(1 << 20) for _ in range(count)]
        assert all(s.locked for s in held)
        print(before, ws())
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "MEMSAFE_LOCK_POLICY"},
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    before, after = map(int, proc.stdout.split())
    assert after > before


# ---- the console (ReadConsoleW, echo off) ------------------------------------

CONSOLE_CHILD = r"""
import ctypes, sys, threading, time
from ctypes import wintypes as w
import memsafe

k = ctypes.WinDLL("kernel32", use_last_error=True)
k.CreateFileW.restype = w.HANDLE
k.CreateFileW.argtypes = [w.LPCWSTR, w.DWORD, w.DWORD, ctypes.c_void_p,
                          w.DWORD, w.DWORD, w.HANDLE]
cin = k.CreateFileW("CONIN$", 0xC0000000, 3, None, 3, 0, None)
cout = k.CreateFileW("CONOUT$", 0xC0000000, 3, None, 3, 0, None)
mode = w.DWORD()
if cin in (None, w.HANDLE(-1).value) or not k.GetConsoleMode(cin, ctypes.byref(mode)):
    print("NO-CONSOLE")
    sys.exit(0)
saved = mode.value

class KEY(ctypes.Structure):
    _fields_ = [("down", w.BOOL), ("repeat", w.WORD), ("vk", w.WORD),
                ("scan", w.WORD), ("ch", w.WCHAR), ("state", w.DWORD)]

class RECORD(ctypes.Structure):
    _fields_ = [("type", w.WORD), ("key", KEY)]

typed = sys.argv[1].encode("utf-16-le")
seen = {}

def typist():
    # Wait for getpass to turn echo off (and flush the input buffer), then
    # type: one key event per UTF-16 unit, as the console delivers them.
    m = w.DWORD()
    for _ in range(1000):
        k.GetConsoleMode(cin, ctypes.byref(m))
        if not m.value & 0x4:
            break
        time.sleep(0.01)
    seen["mode"] = m.value
    time.sleep(0.3)
    recs = []
    for i in range(0, len(typed), 2):
        unit = typed[i:i + 2].decode("utf-16-le", "surrogatepass")
        vk = {"\r": 0x0D, "\b": 0x08}.get(unit, 0)
        for down in (1, 0):
            recs.append(RECORD(1, KEY(down, 1, vk, 0, unit, 0)))
    arr = (RECORD * len(recs))(*recs)
    n = w.DWORD()
    k.WriteConsoleInputW(cin, arr, len(recs), ctypes.byref(n))

threading.Thread(target=typist, daemon=True).start()
prompt = sys.argv[2]
try:
    s = memsafe.SecretStr.getpass(prompt)
except EOFError:
    print("EOF")
    sys.exit(0)
k.GetConsoleMode(cin, ctypes.byref(mode))
info = ctypes.create_string_buffer(64)
k.GetConsoleScreenBufferInfo(cout, info)
cols = int.from_bytes(info.raw[0:2], "little")
rows = int.from_bytes(info.raw[2:4], "little")
screen = ctypes.create_unicode_buffer(cols * rows)
n = w.DWORD()
k.ReadConsoleOutputCharacterW(cout, screen, cols * rows, 0, ctypes.byref(n))
print(repr({
    "text": s.reveal(),
    "len": len(s),
    "utf8": s.read(lambda v: bytes(v)).hex(),
    "locked": s.locked,
    "echo_off_seen": not seen.get("mode", 0x4) & 0x4,
    "restored": mode.value == saved,
    "screen": screen.value[: n.value],
}))
"""


def console_getpass(typed: str) -> dict[str, Any] | str:
    """Run getpass in a child sharing this console; keys typed by a thread."""
    prompt = f"Prompt-{secrets.token_hex(4)}: "
    proc = subprocess.run(
        [sys.executable, "-X", "utf8", "-c", CONSOLE_CHILD, typed, prompt],
        capture_output=True,
        timeout=60,
    )
    out = proc.stdout.decode("utf-8", errors="replace").strip()
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    if out == "NO-CONSOLE":
        pytest.skip("this process has no console (CONIN$ cannot be opened)")
    if out == "EOF":
        return out
    result: dict[str, Any] = eval(out)  # our own child's repr of plain values
    assert prompt.strip() in result["screen"]
    return result


@pytest.mark.parametrize(
    "password",
    ["hunter2", "pässwörd", "日本語のパスワード", "emoji\U0001f600x", "a b\tc"],
)
def test_getpass_reads_console_echo_off(password: str) -> None:
    tag = secrets.token_hex(6)
    result = console_getpass(password + tag + "\r")
    assert isinstance(result, dict)
    assert result["text"] == password + tag
    assert result["len"] == len(password + tag)  # a surrogate pair is one char
    assert result["utf8"] == (password + tag).encode("utf-8").hex()
    assert result["locked"]
    assert result["echo_off_seen"], "getpass did not turn echo off"
    assert result["restored"], "console mode not restored after getpass"
    # Echo was off: the prompt is on the screen, the password is not.
    assert tag not in result["screen"]


def test_getpass_console_line_editing() -> None:
    tag = secrets.token_hex(4)
    result = console_getpass(f"{tag}xy\b\bz\r")
    if isinstance(result, dict) and result["text"] != f"{tag}z":
        version = wine_version()
        if version is not None:
            pytest.skip(f"{version}: the console does not edit a line with echo off")
    assert isinstance(result, dict)
    assert result["text"] == f"{tag}z"


def test_getpass_console_ctrl_z_is_end_of_input() -> None:
    assert console_getpass("\x1a\r") == "EOF"


def test_getpass_without_console_reads_stdin() -> None:
    """Without a console the line comes through sys.stdin, decoded as
    sys.stdin decodes it (as getpass.getpass would): the same text as
    sys.stdin's own decoding of those bytes."""
    code = r"""
        import sys, warnings, memsafe
        expected = "w\u00f6rd\n".encode().decode(sys.stdin.encoding, "replace")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s = memsafe.SecretStr.getpass("P: ")
        print(s.reveal() == expected.rstrip("\n"),
              [w.category.__name__ for w in caught])
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        input="wörd\n".encode(),
        capture_output=True,
        timeout=60,
        creationflags=DETACHED_PROCESS,  # no console at all
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.decode().split() == ["True", "['GetPassWarning']"]


def test_getpass_without_console_strips_crlf() -> None:
    # Windows programs end lines with CR LF; the CR is not part of the
    # password (Python's own getpass reads stdin in text mode).
    code = "import memsafe; print(ascii(memsafe.SecretStr.getpass('P: ').reveal()))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=b"pw\r\n",
        capture_output=True,
        timeout=60,
        creationflags=DETACHED_PROCESS,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout.decode().strip() == "'pw'"


# ---- what the library reports -------------------------------------------------


def test_features_report_windows_mechanisms() -> None:
    f = memsafe._memsafe._features()
    assert f["os_family"] == "windows"
    assert f["wipe_mechanism"] == "SecureZeroMemory"
    assert f["random_source"] == "BCryptGenRandom"
    assert f["lock_mechanism"] == "VirtualLock"


def test_random_is_random() -> None:
    a = memsafe.SecretBytes.random(64)
    b = memsafe.SecretBytes.random(64)
    assert a != b
    assert a.read(lambda v: bytes(v)) != bytes(64)
