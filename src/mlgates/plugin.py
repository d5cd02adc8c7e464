"""pytest entry point of mlgates: options, the ``mlgate`` marker and the ``mlgates`` fixture.

This module is loaded for every pytest run of any project that installs mlgates, so it
imports pytest and the standard library only. The gate machinery (``mlgates.session``,
config reading, the report) is imported and registered only when the gates are on
(``--mlgates`` or ini ``mlgates = true``), the way pytest-cov handles ``--cov``.

Off means: no header line, no files written, tests marked ``mlgate`` (or using the
``mlgates`` fixture) skipped with a reason that says how to run them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from mlgates.state import MARKER, is_gate_item

if TYPE_CHECKING:
    from mlgates.config import GatesConfig
    from mlgates.fixture import Gates

SESSION_PLUGIN = "mlgates-session"
SKIP_REASON = "ML gate test: re-run with --mlgates (or set ini mlgates = true) to run it"

enabled_key = pytest.StashKey[bool]()


def _output_path(value: str) -> str:
    """argparse ``type=`` for report paths: a file path, not empty, not a directory."""
    if not value.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty string")
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a directory; give a file path such as {os.path.join(value, 'x')!r}"
        )
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlgates", "ML quality gates (mlgates)")
    group.addoption(
        "--mlgates",
        action="store_true",
        dest="mlgates",
        default=None,
        help="run the ML gate tests (marked mlgate) and print the gate summary and ML Test Score",
    )
    group.addoption(
        "--no-mlgates",
        action="store_false",
        dest="mlgates",
        help="turn the gates off even if the ini file turns them on",
    )
    group.addoption(
        "--mlgates-report",
        metavar="PATH",
        type=_output_path,
        default=None,
        help="write the gate results as versioned JSON to PATH (needs --mlgates; PATH's "
        "directory must exist and be writable: checked at start-up, before any test runs)",
    )
    group.addoption(
        "--mlgates-markdown",
        metavar="PATH",
        type=_output_path,
        default=None,
        help="write the gate summary as a markdown table to PATH (needs --mlgates; checked "
        "at start-up like --mlgates-report)",
    )
    parser.addini("mlgates", type="bool", default=False, help="run the ML gates (like --mlgates)")
    parser.addini(
        "mlgates_report", type="string", default="", help="JSON report path when gates are on"
    )
    parser.addini(
        "mlgates_markdown", type="string", default="", help="markdown summary path when gates on"
    )
    parser.addini(
        "mlgates_thresholds",
        type="linelist",
        default=[],
        help="gate settings, one 'gate.key = value' per line (wins over [tool.mlgates])",
    )


# what a near-miss on the command line is compared with (pytest_load_initial_conftests)
OPTIONS = ("--mlgates", "--no-mlgates", "--mlgates-report", "--mlgates-markdown")


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None]:
    """``pytest --mlgate`` gets "did you mean --mlgates?" instead of argparse's bare
    "unrecognized arguments". After the initial conftests every option is registered (pytest
    parses for good right after this hook), so an argument unknown here is one pytest is about
    to refuse; only those close to an mlgates option get the hint, the rest pytest answers."""
    result = yield
    unknown = parser.parse_known_and_unknown_args(args)[1]
    flags = [arg.split("=", 1)[0] for arg in unknown if arg.startswith("--")]
    if flags:
        import difflib

        for flag in flags:
            close = difflib.get_close_matches(flag, OPTIONS, n=1, cutoff=0.75)
            if close:
                raise pytest.UsageError(f"unrecognized argument {flag}: did you mean {close[0]}?")
    return result


def gates_enabled(config: pytest.Config) -> bool:
    """Whether the gates are on: the command line wins, then the ini key ``mlgates``."""
    option = config.getoption("mlgates")
    if option is not None:
        return bool(option)
    try:
        return bool(config.getini("mlgates"))
    except (ValueError, TypeError, pytest.UsageError) as exc:
        # pytest >= 9.2 raises UsageError itself, older versions ValueError; name the key.
        raise pytest.UsageError(
            f"ini key 'mlgates' must be true or false ({exc}); fix it in {config.inipath}"
        ) from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(name, rubric=(), settings={{}}, **overrides): an ML quality gate test; runs "
        "only with --mlgates; overrides win over [tool.mlgates.<name>] in pyproject.toml; "
        "rubric adds ML Test Score item ids; settings are read with mlgates.setting()",
    )
    enabled = gates_enabled(config)
    config.stash[enabled_key] = enabled
    if not enabled:
        for flag in ("mlgates_report", "mlgates_markdown"):
            if config.getoption(flag):
                raise pytest.UsageError(
                    f"--{flag.replace('_', '-')} needs --mlgates (or ini mlgates = true): "
                    "the gates are off, so there is nothing to report"
                )
        return
    if config.pluginmanager.has_plugin(SESSION_PLUGIN):
        return
    from mlgates.session import GateSession

    config.pluginmanager.register(GateSession(config), SESSION_PLUGIN)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash.get(enabled_key, False):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if is_gate_item(item):
            item.add_marker(skip)


@pytest.fixture
def mlgates(request: pytest.FixtureRequest) -> Gates:
    """Run gates and record their results: ``mlgates.run(gate_fn, *args, **kwargs)``.

    Threshold keyword arguments the call leaves out come from the ``mlgate`` marker, then
    ``[tool.mlgates.<gate>]``. A failing gate fails the test with its explanation; a warn
    passes and shows in the summary. ``mlgates.check(result)`` records a ready result;
    ``mlgates.setting(key, default)`` reads a configured value.
    """
    session: Any = request.config.pluginmanager.get_plugin(SESSION_PLUGIN)
    if session is None:
        pytest.skip(SKIP_REASON)
    return session.gates_for(request.node)


@pytest.fixture(scope="session")
def mlgates_config(pytestconfig: pytest.Config) -> GatesConfig:
    """The run's validated ``[tool.mlgates]`` settings, for session-scoped fixtures (which
    cannot use the function-scoped ``mlgates`` fixture).

    ``mlgates_config.threshold(gate, key)`` is what ``mlgates.run`` would use without a
    marker or call override (``[tool.mlgates.<gate>]``, ini lines winning, else the gate's
    default); ``mlgates_config.setting(key, default)`` reads ``[tool.mlgates.settings]``.
    Read-only, shared by the session. Available with the gates off too (read on first use).
    """
    session: Any = pytestconfig.pluginmanager.get_plugin(SESSION_PLUGIN)
    if session is not None:
        return session.state.config
    from mlgates.session import read_config

    return read_config(pytestconfig)
