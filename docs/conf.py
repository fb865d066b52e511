"""Sphinx configuration of the memsafe documentation.

Build (the API reference imports the *installed* memsafe, C extension
included, so install the package with the docs extra first):

    pip install '.[docs]'
    sphinx-build -W --keep-going -b html docs docs/_build/html

or just ``bash scripts/docs`` (the same, from a fresh venv, plus a check of
every link within the built site).  The pages are the Markdown files of docs/
(MyST); reference.md is generated from the docstrings by autodoc.
"""

from __future__ import annotations

import inspect
from typing import Any

try:
    import memsafe
except ImportError as e:  # the source tree alone has no built extension
    raise ImportError(
        f"the docs need memsafe installed ({e}): pip install '.[docs]', "
        "or run scripts/docs"
    ) from e

project = "memsafe"
author = "memsafe developers"
copyright = "memsafe developers"
release = memsafe.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: "#"-anchors for headings down to ### so that links such as
# [x](testing.md#scripts-sanitize) resolve; ```{directive} fences only.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# The docstrings are plain prose with `code` in single backquotes.
default_role = "literal"

autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autoclass_content = "class"

html_theme = "furo"
html_title = f"memsafe {release}"
# _static/memsafe.css: wide tables wrap inside the content column (see it).
html_static_path = ["_static"]
html_css_files = ["memsafe.css"]
html_show_sourcelink = False

nitpicky = False

# ---- every public name documented, with a docstring ----------------------
#
# The build fails (a warning, and -W makes warnings errors) when a name in
# memsafe.__all__ is not documented anywhere in the site, or when it, or a
# public method or property of a public class, has no docstring of its own.
# Data (__version__) cannot carry a docstring; its reference entry is
# written in reference.md instead.


def _own_doc(obj: Any) -> str:
    """The docstring an object has itself (not one inherited from a base)."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return ""
    if not (inspect.isclass(obj) or callable(obj) or inspect.isdatadescriptor(obj)):
        return ""  # instances of str, int, ...: __doc__ is their type's
    if inspect.isclass(obj):
        for base in obj.__mro__[1:]:
            if getattr(base, "__doc__", None) == doc:
                return ""
    return doc


def undocumented_public_names() -> list[str]:
    """Public names (and public members of public classes) without a docstring."""
    missing = []
    for name in memsafe.__all__:
        obj = getattr(memsafe, name)
        if not (inspect.isclass(obj) or callable(obj)):
            continue  # data: documented by hand in reference.md
        if not _own_doc(obj):
            missing.append(f"memsafe.{name}")
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                raw = getattr(value, "__func__", value)
                if not _own_doc(raw):
                    missing.append(f"memsafe.{name}.{attr}")
    return missing


def _check_public_api(app: Any, env: Any) -> None:
    from sphinx.util import logging

    log = logging.getLogger("memsafe.apicheck")
    documented = set(env.get_domain("py").objects)
    for name in memsafe.__all__:
        if f"memsafe.{name}" not in documented:
            log.warning(
                "public name memsafe.%s (in memsafe.__all__) is not documented: "
                "add it to docs/reference.md",
                name,
                type="memsafe",
                subtype="api",
            )
    for qualname in undocumented_public_names():
        log.warning(
            "public name %s has no docstring", qualname, type="memsafe", subtype="api"
        )


def _drop_type_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Module data (__version__) has no docstring: do not show str's."""
    if what == "data" and not _own_doc(obj):
        lines[:] = []


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _drop_type_docstring)
    app.connect("env-check-consistency", _check_public_api)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
