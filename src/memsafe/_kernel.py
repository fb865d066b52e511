"""The kernel's own view of a secret's pages (Linux ``/proc``).

Used by the self-check (``python -m memsafe``) and by the tests: protections
are verified by what the kernel reports, not by the library's own flags.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

SMAPS = "/proc/self/smaps"


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps, with the VmFlags of its smaps entry."""

    start: int
    end: int
    perms: str
    path: str
    vmflags: frozenset[str] = field(default_factory=frozenset)

    def covers(self, addr: int) -> bool:
        """True if addr lies inside this mapping."""
        return self.start <= addr < self.end


def available() -> bool:
    """True on Linux with /proc mounted (wine maps "/proc" on Windows too)."""
    return sys.platform.startswith("linux") and os.path.exists(SMAPS)


def _parse_header(line: str) -> tuple[int, int, str, str]:
    parts = line.split(maxsplit=5)
    start, end = (int(x, 16) for x in parts[0].split("-"))
    path = parts[5].strip() if len(parts) > 5 else ""
    return start, end, parts[1], path


def _is_header(line: str) -> bool:
    head = line.split(maxsplit=1)[0] if line.strip() else ""
    return "-" in head and not head.endswith(":")


def mappings(pid: int | str = "self") -> list[Mapping]:
    """All mappings of a process, with VmFlags (from /proc/PID/smaps)."""
    out: list[Mapping] = []
    current: tuple[int, int, str, str] | None = None
    flags: frozenset[str] = frozenset()
    with open(f"/proc/{pid}/smaps", encoding="ascii", errors="replace") as f:
        for line in f:
            if _is_header(line):
                if current is not None:
                    out.append(Mapping(*current, vmflags=flags))
                current = _parse_header(line)
                flags = frozenset()
            elif line.startswith("VmFlags:"):
                flags = frozenset(line.split()[1:])
    if current is not None:
        out.append(Mapping(*current, vmflags=flags))
    return out


def mapping_at(addr: int, pid: int | str = "self") -> Mapping | None:
    """The mapping that contains addr, or None if nothing is mapped there."""
    for m in mappings(pid):
        if m.covers(addr):
            return m
    return None


def maps(pid: int | str = "self") -> list[Mapping]:
    """All mappings of a process from /proc/PID/maps (no VmFlags: cheaper)."""
    with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as f:
        return [Mapping(*_parse_header(line)) for line in f if line.strip()]


def perms_at(addr: int) -> str | None:
    """Permissions ('---p', 'r--p', 'rw-p', ...) of the page holding addr."""
    for m in maps():
        if m.covers(addr):
            return m.perms
    return None


def status_field(name: str, pid: int | str = "self") -> str | None:
    """A field of /proc/PID/status (e.g. 'VmLck'), or None."""
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return None
