"""Helpers of the fuzz harness that atheris does not instrument.

They run on every input (decoding bytes, reading /proc/self/maps), so
instrumenting them would only slow the fuzzer down without telling it
anything about the code under test.
"""

from __future__ import annotations

import os

MAPS = "/proc/self/maps"


def perms_of(addrs: list[int]) -> list[str | None]:
    """Permissions of the mappings holding addrs, from one read of
    /proc/self/maps (None where nothing is mapped)."""
    if not addrs:
        return []
    spans = []
    with open(MAPS, encoding="ascii") as f:
        for line in f:
            span, perms = line.split(maxsplit=2)[:2]
            lo, hi = span.split("-")
            spans.append((int(lo, 16), int(hi, 16), perms))
    out: list[str | None] = []
    for addr in addrs:
        out.append(next((p for lo, hi, p in spans if lo <= addr < hi), None))
    return out


class Reader:
    """Takes values off the front of the fuzz input (zeros once it ends)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uint(self, nbytes: int) -> int:
        v = 0
        for _ in range(nbytes):
            v = (v << 8) | self.byte()
        return v

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def chunk(self, limit: int = 256) -> bytes:
        return self.take(self.byte() % (limit + 1) if limit < 256 else self.byte())


def pipe_with(data: bytes) -> int:
    """A read end that yields data, then end of file."""
    rfd, wfd = os.pipe()
    try:
        os.write(wfd, data)  # the caller keeps data under the pipe buffer size
    finally:
        os.close(wfd)
    return rfd
