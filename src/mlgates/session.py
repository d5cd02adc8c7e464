"""The gate machinery of a pytest run, registered only when the gates are on.

State lives in ``config.stash`` (``RunState``). Under pytest-xdist each worker records its
results and ships them in ``workeroutput``; the controller gathers them in
``pytest_testnodedown`` and alone prints the summary and writes the reports.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from mlgates import report, rubric
from mlgates.config import ConfigError, GatesConfig, default_registry, load_config
from mlgates.config import validate_overrides as check_overrides
from mlgates.fixture import (
    Gates,
    MarkerInfo,
    failed_by_gate_key,
    make_outcome_record,
    order_key,
    parse_marker,
)
from mlgates.state import MARKER, RunState, is_gate_item, state_key

WORKER_KEY = "mlgates_results"


marker_key = pytest.StashKey[MarkerInfo]()
marker_error_key = pytest.StashKey[str]()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _pyproject(config: pytest.Config) -> Path:
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        return config.inipath
    return config.rootpath / "pyproject.toml"


def _path_option(config: pytest.Config, option: str) -> Path | None:
    flag = "--" + option.replace("_", "-")
    value = config.getoption(option)
    if value:
        path = Path(value).absolute()
        check_writable(path, f"{flag}={value}")
        return path
    ini = str(config.getini(option) or "").strip()
    if not ini:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    path = base / ini
    if path.is_dir():
        raise pytest.UsageError(f"ini key {option!r}: {path} is a directory; give a file path")
    check_writable(path, f"ini key {option!r} = {ini}")
    return path


def check_writable(path: Path, label: str) -> None:
    """Refuse at start-up, before any test runs, a report path the run could not write at the
    end (a 3-minute suite should not end in "could not write"). The parent directory must
    exist: it is not created, so a mistyped path does not leave a directory tree behind.

    Writability is probed by creating and removing a temporary file next to the report:
    permission bits do not tell (root passes them, a read-only mount does not)."""
    parent = path.parent
    if not parent.exists():
        raise pytest.UsageError(
            f"mlgates: {label}: directory {parent} does not exist; create it first "
            f"(mkdir -p {parent}) or choose another path"
        )
    if not parent.is_dir():
        raise pytest.UsageError(f"mlgates: {label}: {parent} is not a directory")
    if path.exists() and not path.is_file():
        raise pytest.UsageError(f"mlgates: {label}: {path} exists and is not a regular file")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".mlgates-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise pytest.UsageError(
            f"mlgates: {label}: cannot write in {parent} ({reason}); choose a writable path"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise pytest.UsageError(f"mlgates: {label}: {path} is not writable; choose another path")


def read_config(config: pytest.Config) -> GatesConfig:
    """``[tool.mlgates]`` of the run's pyproject.toml plus ini ``mlgates_thresholds`` lines,
    validated; bad config is a usage error."""
    label = config.inipath.name if config.inipath is not None else "ini"
    try:
        return load_config(_pyproject(config), config.getini("mlgates_thresholds"), ini_label=label)
    except ConfigError as exc:
        raise pytest.UsageError(f"mlgates: {exc}") from None


def load_state(config: pytest.Config) -> RunState:
    gates_config = read_config(config)
    workers = None
    numprocesses = getattr(config.option, "numprocesses", None)
    if isinstance(numprocesses, int):
        workers = numprocesses
    return RunState(
        config=gates_config,
        report_path=_path_option(config, "mlgates_report"),
        markdown_path=_path_option(config, "mlgates_markdown"),
        workers=workers,
    )


def _registry_or_empty() -> dict[str, Any]:
    """The built-in gates, or none if they cannot be imported (then overrides of gates
    the registry would know are checked when the gate is called)."""
    try:
        return dict(default_registry())
    except ConfigError:
        return {}


def _test_order(record: dict[str, Any]) -> tuple[int, int, str]:
    order = record.get("order")
    if isinstance(order, int):
        return (0, order, "")
    return (1, 0, str(record.get("test")))


def _skip_reason(report: pytest.TestReport) -> str:
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        return f"xfail: {wasxfail}" if wasxfail else "xfail"
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr or "")
    return reason.removeprefix("Skipped: ") or "skipped (no reason given)"


def _failure_text(call: pytest.CallInfo[None], report: pytest.TestReport, root: Path) -> str:
    """What went wrong, in one line: the message of pytest.fail, else the exception's first
    line and where it was raised (the full traceback stays in the test's own report)."""
    excinfo = call.excinfo
    if excinfo is None:
        lines = report.longreprtext.strip().splitlines()
        return lines[-1] if lines else "failed"
    if isinstance(excinfo.value, pytest.fail.Exception):
        return str(excinfo.value.msg or "failed")
    lines = excinfo.exconly().strip().splitlines()
    text = lines[0] if lines else excinfo.typename
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        path = str(crash.path)
        with contextlib.suppress(ValueError):  # another drive on Windows: keep it absolute
            path = os.path.relpath(path, root)
        text += f" (at {path}:{crash.lineno})"
    return text


class GateSession:
    """Hooks active with ``--mlgates``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        config.stash[state_key] = load_state(config)

    @property
    def state(self) -> RunState:
        return self.config.stash[state_key]

    # ------------------------------------------------------------------ collection and setup

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        st = self.state
        sources = ", ".join(st.config.sources) or "defaults (no [tool.mlgates])"
        line = f"mlgates: gates on; settings from {sources}"
        if st.config.inconclusive != "fail":
            line += f"; inconclusive = {st.config.inconclusive}"
        if st.report_path:
            line += f"; report -> {st.report_path}"
        return [line]

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        registry: dict[str, Any] | None = None
        for item in items:
            marker = item.get_closest_marker(MARKER)
            if marker is None:
                continue
            try:
                info = parse_marker(marker)
                if info.overrides and info.name not in (None, *self.state.config.custom_gates):
                    if registry is None:
                        registry = _registry_or_empty()
                    check_overrides(
                        str(info.name),
                        info.overrides,
                        registry,
                        f"@pytest.mark.mlgate({info.name!r}) on {item.nodeid}:",
                    )
            except (ValueError, ConfigError) as exc:
                item.stash[marker_error_key] = str(exc)
                continue
            item.stash[marker_key] = info

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for index, item in enumerate(session.items):
            item.stash[order_key] = index

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        error = item.stash.get(marker_error_key, None)
        if error is not None:
            pytest.fail(f"[mlgates] {error}", pytrace=False)

    def gates_for(self, item: pytest.Item) -> Gates:
        info = item.stash.get(marker_key, None)
        if info is None:
            info = parse_marker(item.get_closest_marker(MARKER))
        return Gates(item, self.state, info)

    # ------------------------------------------------------------------ outcomes

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # Runs where the item runs (an xdist worker), so the record travels with the results.
        if is_gate_item(item):
            record = self._outcome(item, call, report)
            if record is not None:
                self.state.results.append(record)
                prefix = f"mlgates.{record['name']}"
                item.user_properties.extend(
                    [
                        (f"{prefix}.verdict", record["verdict"]),
                        (f"{prefix}.reason", record["message"]),
                    ]
                )
        return report

    def _outcome(
        self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
    ) -> dict[str, Any] | None:
        """The error/skipped record of a gate test whose gate did not decide, else None."""
        if report.skipped:
            if any(r.get("test") == item.nodeid for r in self.state.results):
                # the test recorded its gate's verdict (with its reason) and then skipped, as
                # a starved latency measurement does: that verdict is its row, not a second
                return None
            verdict = "skipped"
            reason = _skip_reason(report)
        elif report.failed:
            if report.when == "call" and item.stash.get(failed_by_gate_key, False):
                return None  # the gate's own verdict failed the test: already recorded
            verdict = "error"
            if report.when == "setup":
                where = "error in setup (the test did not run)"
            elif report.when == "teardown":
                where = "error in teardown"
            elif any(r.get("test") == item.nodeid for r in self.state.results):
                where = "the test failed after its gate returned"
            else:
                where = "the test raised before its gate returned"
            reason = f"{where}: {_failure_text(call, report, item.config.rootpath)}"
        else:
            return None
        info = item.stash.get(marker_key, None)
        marker = item.get_closest_marker(MARKER)
        name = info.name if info is not None else None
        if name is None and marker is not None and marker.args and isinstance(marker.args[0], str):
            name = marker.args[0]
        return make_outcome_record(
            item.nodeid,
            name or "-",
            verdict,
            reason,
            info.rubric if info is not None else (),
            report.when,
            order=item.stash.get(order_key, None),
        )

    # ------------------------------------------------------------------ gathering

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.state.results.extend(output.get(WORKER_KEY, []))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        st = self.state
        if is_worker(self.config):
            self.config.workeroutput[WORKER_KEY] = st.results  # type: ignore[attr-defined]
            return
        st.finished_at = time.time()
        # test (collection) order; a stable sort keeps the run order of one test's results
        st.results.sort(key=_test_order)
        try:
            self._write_outputs(int(exitstatus))
        except Exception as exc:  # the run's verdict must not hinge on a report bug
            st.errors.append(f"could not write the mlgates reports: {exc!r}")
        if st.errors and session.exitstatus == pytest.ExitCode.OK:
            # CI asked for the artefacts; a green run without them would hide the gates.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def score(self) -> rubric.RubricScore:
        st = self.state
        return rubric.score(st.results, manual=st.config.rubric_manual)

    def _write_outputs(self, exit_status: int) -> None:
        st = self.state
        score = self.score()
        if st.report_path is not None:
            doc = report.build_report(
                st.results,
                score=score,
                started_at=st.started_at,
                finished_at=st.finished_at or time.time(),
                exit_status=exit_status,
                env=report.environment(pytest.__version__, st.workers),
                git=report.git_state(self.config.rootpath),
                config={
                    "inconclusive": st.config.inconclusive,
                    "sources": list(st.config.sources),
                    "gates": {k: dict(v) for k, v in st.config.gates.items()},
                    "rubric_manual": list(st.config.rubric_manual),
                },
            )
            self._attempt(st.report_path, lambda p: report.write_json(p, doc))
        md: str | None = None
        if st.markdown_path is not None:
            md = report.markdown(st.results, score)
            self._attempt(st.markdown_path, lambda p: p.write_text(md or "", encoding="utf-8"))
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
        if step_summary:
            md = md or report.markdown(st.results, score)
            self._attempt(Path(step_summary), lambda p: report.append_text(p, md or ""))

    def _attempt(self, path: Path, write: Any) -> None:
        try:
            write(path)
        except OSError as exc:
            self.state.errors.append(f"could not write {path}: {exc}")
        else:
            self.state.written.append(str(path))

    # ------------------------------------------------------------------ summary

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if is_worker(config):
            return
        try:
            self._summary(terminalreporter, config)
        except Exception as exc:  # never break the run's own summary
            terminalreporter.write_line(f"mlgates: could not print the summary: {exc!r}", red=True)

    def _summary(self, tr: Any, config: pytest.Config) -> None:
        st = self.state
        tr.write_sep("=", "mlgates summary")
        if st.results:
            width = getattr(getattr(tr, "_tw", None), "fullwidth", 120)
            header, blocks = report.table_blocks(st.results, width=width)
            tr.write_line(header, bold=True)
            for block, r in zip(blocks, st.results, strict=True):
                verdict = r.get("verdict")
                if verdict == "pass":
                    markup = {"green": True}
                elif verdict == "note":
                    markup = {"cyan": True}
                elif verdict in ("warn", "skipped") or (
                    verdict == "inconclusive" and st.config.inconclusive == "warn"
                ):
                    markup = {"yellow": True}
                else:
                    markup = {"red": True}
                for line in block:
                    tr.write_line(line, **markup)
            tr.write_line(report.summary_line(st.results))
        else:
            tr.write_line("no gate ran (use the mlgates fixture in tests marked mlgate)")
        for line in report.score_lines(self.score(), verbose=config.get_verbosity() > 0):
            tr.write_line(line)
        for path in st.written:
            tr.write_line(f"mlgates: wrote {path}")
        for error in st.errors:
            tr.write_line(f"mlgates: {error}", red=True)
