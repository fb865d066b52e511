"""docs/integration.md's table is generated from the integration tests.

Each test in tests/integration carries its row (_table.row); this test
rebuilds the table and fails when the document differs, or when a test has
no row.  Regenerate the document with:

    python tests/integration/test_table.py --write
"""

from __future__ import annotations

import importlib
import pathlib
import sys

import pytest

if __package__ in (None, ""):  # run as a script: import as the package
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    __package__ = "integration"

from ._table import LIBRARIES, ROWS, STDLIB, Row, render

HERE = pathlib.Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "integration.md"
BEGIN = "<!-- BEGIN GENERATED TABLE: python tests/integration/test_table.py --write -->"
END = "<!-- END GENERATED TABLE -->"


def modules() -> list[object]:
    names = sorted(p.stem for p in HERE.glob("test_*.py") if p.stem != "test_table")
    return [importlib.import_module(f"{__package__}.{name}") for name in names]


def rows() -> list[Row]:
    modules()  # registers every row (whatever is installed)
    return list(ROWS)


def generated(text: str) -> str:
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END)].strip("\n") + "\n"


def rewrite(text: str, table: str) -> str:
    start = text.index(BEGIN) + len(BEGIN)
    return text[:start] + "\n\n" + table + "\n" + text[text.index(END) :]


def test_the_document_matches_the_tests() -> None:
    if not DOC.exists():  # a copy of tests/ outside the source tree
        pytest.skip(f"no {DOC.name} beside this copy of the tests")
    text = DOC.read_text(encoding="utf-8")
    assert generated(text) == render(rows()), (
        "docs/integration.md is out of date: run "
        "python tests/integration/test_table.py --write"
    )


def test_every_integration_test_has_a_row() -> None:
    missing = []
    for mod in modules():
        for name, fn in vars(mod).items():
            if name.startswith("test_") and callable(fn):
                marks = {m.name for m in getattr(fn, "pytestmark", [])}
                if "integration" not in marks:
                    missing.append(f"{mod.__name__}.{name}")  # type: ignore[attr-defined]
    assert not missing, f"tests without a table row: {missing}"


def test_every_library_is_covered() -> None:
    covered = {r.library for r in rows()}
    assert covered == set(LIBRARIES), set(LIBRARIES) - covered
    assert set(STDLIB) <= covered


def test_every_row_names_a_test_that_exists() -> None:
    for r in rows():
        module, function = r.test.split("::")
        mod = importlib.import_module(f"{__package__}.{module}")
        assert callable(getattr(mod, function)), r


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/integration/test_table.py --write")
    DOC.write_text(
        rewrite(DOC.read_text(encoding="utf-8"), render(rows())), encoding="utf-8"
    )
    print(f"wrote {DOC.relative_to(HERE.parents[1])}: {len(ROWS)} rows")
