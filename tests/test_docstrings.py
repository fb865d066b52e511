"""Every public name of memsafe has a docstring.

The docs build fails on the same check (docs/conf.py, which also fails when
a name in memsafe.__all__ is missing from the API reference); this runs it
without Sphinx.  Skipped where the tests run without the docs/ folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

CONF = Path(__file__).resolve().parents[1] / "docs" / "conf.py"

pytestmark = [
    pytest.mark.storage("any"),
    pytest.mark.skipif(not CONF.is_file(), reason="no docs/conf.py here"),
]


@pytest.fixture
def conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memsafe_docs_conf", CONF)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_a_docstring(conf: ModuleType) -> None:
    assert conf.undocumented_public_names() == []


def test_the_check_finds_what_has_none(
    conf: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Bare:
        pass

    class Error(OSError):
        pass

    class Documented:
        """Has a docstring; two of its public members do not."""

        def method(self) -> None:
            pass

        @property
        def prop(self) -> int:
            return 1

        @classmethod
        def make(cls) -> Documented:
            """Documented."""
            return cls()

        def _private(self) -> None:
            pass

    def func() -> None:
        pass

    fake = SimpleNamespace(
        __all__=["Bare", "Documented", "Error", "__version__", "func"],
        Bare=Bare,
        Documented=Documented,
        Error=Error,
        __version__="1.0",
        func=func,
    )
    monkeypatch.setattr(conf, "memsafe", fake)
    assert conf.undocumented_public_names() == [
        "memsafe.Bare",
        "memsafe.Documented.method",
        "memsafe.Documented.prop",
        "memsafe.Error",
        "memsafe.func",
    ]
