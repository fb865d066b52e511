"""Every behavioural test runs over both storage engines.

The ``storage`` fixture is used by every test: it sets the default engine
(``memsafe.set_default_storage``) and ``MEMSAFE_STORAGE`` for child
processes, so a test written once runs as ``[guarded]`` and ``[sealed]``.
A test (or module, through ``pytestmark``) that is about one engine only -
the guarded engine's page protections, say - says so with
``@pytest.mark.storage("guarded")``; one that does not depend on the engine
at all (the AEAD vectors, the docs) with ``@pytest.mark.storage("any")``,
which runs it once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

import memsafe

# MEMSAFE_TEST_ENGINES=guarded (or sealed) narrows the runs to one engine:
# the slower verification stages (the older interpreters of the test
# matrix) use it; the main run, 3.14 and 3.14t run both.
ENGINES = tuple(
    e
    for e in os.environ.get("MEMSAFE_TEST_ENGINES", "guarded,sealed").split(",")
    if e in ("guarded", "sealed")
) or ("guarded", "sealed")


def _ignored_here(signum: int, frame: object) -> None:
    """The handler that stands for SIG_IGN in the test process itself."""


def _unignore_signals_for_children() -> None:
    # A shell starts background jobs with SIGINT and SIGQUIT ignored, nohup
    # ignores SIGHUP, and an ignored signal stays ignored across exec: every
    # child the tests start would inherit that, and memsafe rightly leaves
    # an ignored signal alone, so the Ctrl-C and purge-on-signal tests could
    # not work.  A handler is reset to the default action in each child;
    # this process goes on ignoring them (SIGINT raises KeyboardInterrupt,
    # as Python's default).
    for name in ("SIGINT", "SIGQUIT", "SIGHUP", "SIGTERM"):
        signum = getattr(signal, name, None)
        if signum is None or signal.getsignal(signum) != signal.SIG_IGN:
            continue
        handler = signal.default_int_handler if name == "SIGINT" else _ignored_here
        signal.signal(signum, handler)


def pytest_configure(config: pytest.Config) -> None:
    _unignore_signals_for_children()
    config.addinivalue_line(
        "markers",
        "storage(*engines): run only over these storage engines "
        "('guarded', 'sealed'), or once ('any')",
    )


def _engines_for(item: pytest.Function | pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker("storage")
    if marker is None:
        return ENGINES
    if marker.args == ("any",):
        return ("any",)
    wanted = tuple(e for e in marker.args if e in ENGINES)
    return wanted or tuple(marker.args)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "storage" not in metafunc.fixturenames:
        return
    metafunc.parametrize(
        "storage", _engines_for(metafunc.definition), indirect=True
    )


@pytest.fixture(autouse=True)
def storage(request: pytest.FixtureRequest) -> Iterator[str]:
    """The storage engine this run of the test uses (also the default)."""
    engine = getattr(request, "param", "guarded")
    if engine == "any":
        engine = "guarded"
    before = memsafe.get_default_storage()
    saved_env = os.environ.get("MEMSAFE_STORAGE")
    memsafe.set_default_storage(engine)
    os.environ["MEMSAFE_STORAGE"] = engine
    try:
        yield engine
    finally:
        memsafe.set_default_storage(before)
        if saved_env is None:
            os.environ.pop("MEMSAFE_STORAGE", None)
        else:
            os.environ["MEMSAFE_STORAGE"] = saved_env
