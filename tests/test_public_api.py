"""The public names and signatures match what the docs say, and help()
shows them cleanly.

docs/api.md documents memsafe.Plaintext (the with-form of plaintext()),
from_fd(..., strip_newline=False) on SecretBytes and SecretStr, and the
methods' signatures with self; pydoc (help(memsafe)) must not show
implementation details such as the module's __annotations__.
"""

from __future__ import annotations

import importlib
import inspect
import pydoc
import re
from pathlib import Path

import pytest

import memsafe
from memsafe import _memsafe

pytestmark = pytest.mark.storage("any")

DOCS = Path(__file__).resolve().parents[1] / "docs"


def help_text() -> str:
    return pydoc.render_doc(memsafe, renderer=pydoc.plaintext)


def test_plaintext_is_public() -> None:
    assert memsafe.Plaintext is _memsafe.Plaintext
    assert "Plaintext" in memsafe.__all__
    k = memsafe.SecretBytes(b"abc")
    ctx = k.plaintext()
    assert isinstance(ctx, memsafe.Plaintext)
    with ctx as b:
        assert b == b"abc"


def test_every_name_in_all_exists() -> None:
    for name in memsafe.__all__:
        assert hasattr(memsafe, name), name


def test_help_shows_no_annotations_dict() -> None:
    text = help_text()
    assert "__annotations__" not in text
    assert "DATA" not in text or "_SETTINGS" not in text


def test_module_docstring_stands_alone() -> None:
    # Shown by help() and on the docs site's reference page: no pointers
    # to files of the source tree.
    doc = memsafe.__doc__ or ""
    assert "README" not in doc
    assert "docs/" not in doc


@pytest.mark.parametrize(
    "method",
    [
        memsafe.SecretBytes.plaintext,
        memsafe.SecretStr.plaintext,
        memsafe.MemSafe.plaintext,
        memsafe.SecretBytes.read,
        memsafe.MemSafe.write,
    ],
)
def test_c_methods_show_self(method: object) -> None:
    assert str(inspect.signature(method)).startswith("(self"), method  # type: ignore[arg-type]


def test_help_shows_plaintext_with_self() -> None:
    text = help_text()
    assert "plaintext(self, fn=None, /)" in text
    assert not re.search(r"\bplaintext\(fn=None", text)


@pytest.mark.parametrize("cls", [memsafe.SecretBytes, memsafe.SecretStr])
def test_from_fd_signature(cls: type) -> None:
    sig = inspect.signature(cls.from_fd)  # type: ignore[attr-defined]
    assert sig.parameters["strip_newline"].default is False
    assert sig.parameters["strip_newline"].kind is inspect.Parameter.KEYWORD_ONLY


def test_from_file_signature() -> None:
    sig = inspect.signature(memsafe.SecretBytes.from_file)
    assert sig.parameters["strip_newline"].default is False


@pytest.mark.skipif(not DOCS.is_dir(), reason="no docs/ here")
def test_every_documented_memsafe_name_exists() -> None:
    """`memsafe.X` in README.md or docs/*.md names something real."""
    root = DOCS.parent
    texts = [root / "README.md", *sorted(DOCS.glob("*.md"))]
    missing = set()
    for path in texts:
        if not path.is_file():
            continue
        text = re.sub(  # the benchmark results' row labels are not names
            r"<!-- results:begin -->.*?<!-- results:end -->",
            "",
            path.read_text(),
            flags=re.S,
        )
        for m in re.finditer(r"\bmemsafe\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?", text):
            top, attr = m.group(1), m.group(2)
            if top.startswith("_") or top in ("readthedocs",):
                continue
            obj = getattr(memsafe, top, None)
            if obj is None:  # a public submodule (memsafe.pydantic)
                try:
                    obj = importlib.import_module(f"memsafe.{top}")
                except ImportError:
                    obj = None
            if obj is None:
                missing.add(f"{path.name}: memsafe.{top}")
            elif attr and inspect.isclass(obj) and not hasattr(obj, attr):
                missing.add(f"{path.name}: memsafe.{top}.{attr}")
    assert not missing, sorted(missing)


def _rst_tree(text: str) -> object:
    docutils_core = pytest.importorskip("docutils.core")
    return docutils_core.publish_doctree(
        inspect.cleandoc(text),
        settings_overrides={"report_level": 5, "halt_level": 5},
    )


def _public_docstrings() -> list[tuple[str, str]]:
    out = [("memsafe", memsafe.__doc__ or "")]
    for name in memsafe.__all__:
        obj = getattr(memsafe, name)
        if not (inspect.isclass(obj) or callable(obj)):
            continue
        out.append((name, obj.__doc__ or ""))
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                doc = getattr(getattr(value, "__func__", value), "__doc__", None)
                if not attr.startswith("_") and isinstance(doc, str):
                    out.append((f"{name}.{attr}", doc))
    return out


def test_docstrings_are_valid_restructuredtext() -> None:
    """What the API reference renders parses without a docutils problem."""
    nodes = pytest.importorskip("docutils.nodes")

    bad = []
    for name, doc in _public_docstrings():
        tree = _rst_tree(doc)
        problems = [
            m.astext()
            for m in tree.findall(nodes.system_message)  # type: ignore[attr-defined]
            if m["level"] >= 2
        ]
        if problems:
            bad.append((name, problems))
    assert not bad, bad


def test_harden_docstring_lists_the_measures() -> None:
    nodes = pytest.importorskip("docutils.nodes")

    tree = _rst_tree(memsafe.harden.__doc__ or "")
    lists = list(tree.findall(nodes.bullet_list))  # type: ignore[attr-defined]
    assert lists, "the measures do not render as a list"
    items = [i.astext() for i in lists[0].findall(nodes.list_item)]
    keys = ("not_dumpable", "deny_attach", "core_limit_zero", "process_dacl")
    for key in (*keys, "no_crash_dialog", "wer_no_heap", "remote_debug_veto"):
        assert any(i.startswith(key) for i in items), (key, items)
