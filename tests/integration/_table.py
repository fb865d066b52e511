"""The table in docs/integration.md, built from the tests that check it.

Every integration test is decorated with @row(...): the library, the call,
the route memsafe recommends and what the consumer copies or keeps.  The
rows are registered when the test modules are imported, whether or not the
libraries are installed (tests import their library inside the test), so
test_table.py can rebuild the table anywhere and fail when the document
differs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

_F = TypeVar("_F", bound=Callable[..., Any])

# Routes, as they appear in the table.
VIEW = "view"  # with secret.read() as view: consumer(view)
PLAINTEXT = "plaintext()"  # secret.plaintext(consumer) / with secret.plaintext() as b
FIELD = "field type"  # a pydantic field annotated with the memsafe type
INGEST = "SecretStr(...)"  # the library returns a str: wrap it at once
DONT = "don't"  # the library keeps what it is given: no safe route
WRITER = "from_writer"  # SecretBytes.from_writer(n, lambda v: lib.x_into(..., v))

ROUTES = (VIEW, PLAINTEXT, FIELD, INGEST, DONT, WRITER)

# Table order; a library missing here fails test_table.
LIBRARIES = (
    "hashlib",
    "hmac",
    "ssl",
    "cryptography",
    "pycryptodome",
    "PyNaCl",
    "argon2-cffi",
    "bcrypt",
    "passlib",
    "PyJWT",
    "paramiko",
    "itsdangerous",
    "requests",
    "httpx",
    "psycopg",
    "PyMySQL",
    "hvac",
    "keyring",
    "pydantic",
    "pydantic-settings",
)

STDLIB = ("hashlib", "hmac", "ssl")


@dataclasses.dataclass(frozen=True)
class Row:
    library: str
    call: str
    route: str
    keeps: str
    test: str  # module::function


ROWS: list[Row] = []


def row(library: str, call: str, route: str, keeps: str) -> Callable[[_F], _F]:
    """Register the table row a test checks, and mark the test."""
    if library not in LIBRARIES:
        raise ValueError(f"unknown library {library!r}: add it to LIBRARIES")
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}")

    def mark(fn: _F) -> _F:
        module = fn.__module__.rsplit(".", 1)[-1]
        ROWS.append(Row(library, call, route, keeps, f"{module}::{fn.__name__}"))
        return pytest.mark.integration(fn)  # type: ignore[no-any-return]

    return mark


def render(rows: list[Row]) -> str:
    """The Markdown table, in LIBRARIES order, then by test module, then as
    registered (the same whichever order the modules were imported in)."""
    order = {lib: i for i, lib in enumerate(LIBRARIES)}
    ranked = sorted(
        enumerate(rows),
        key=lambda ir: (order[ir[1].library], ir[1].test.split("::")[0], ir[0]),
    )
    lines = [
        "| Library | Call | Route | What the consumer copies or keeps | Test |",
        "| --- | --- | --- | --- | --- |",
    ]
    for _, r in ranked:
        cells = [r.library, f"`{r.call}`", r.route, r.keeps, f"`{r.test}`"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
