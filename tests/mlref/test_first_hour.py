"""A newcomer's first hour, as the README writes it: the demo in a fresh directory (its
default workdir ``.mlref``), then monitor, serve + the README's curl, load and score-batch on
what the demo built; and each wrong step a newcomer takes, answered with one line that names
the command to run, nothing created and nothing lost.

One real demo run (Feast, XGBoost, ONNX, MLflow on SQLite, uvicorn on 127.0.0.1) serves the
whole module: about a minute alone, several on a busy machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlref.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
DEMO_TIMEOUT_S = 900
# a line another library logged at WARNING or above: "HH:MM:SS WARNING name: ..." from our
# format, "YYYY/MM/DD HH:MM:SS WARNING name: ..." from MLflow's own
_WARNING_LINE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\s+(?!mlref\b|mlgates\b)([\w.]+):")
# what Python's warnings module prints: "path.py:123: SomeWarning: ..."
_PYTHON_WARNING = re.compile(r"^\S+:\d+: \w*Warning: ", re.M)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLREF_HOME", "COLUMNS")}
    return env


def _mlref(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``mlref ARGS`` as the README runs it (``uv run mlref`` is this interpreter's script)."""
    return subprocess.run(
        [sys.executable, "-m", "mlref.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime: what "nothing lost" compares."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`uv run mlref demo` in an empty directory, once for the module."""
    home = tmp_path_factory.mktemp("newcomer")
    done = _mlref("demo", cwd=home, timeout=DEMO_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home, done


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def test_the_demo_prints_no_traceback_and_no_third_party_warning(demo) -> None:
    _, done = demo
    out = _output(done)
    assert "Traceback" not in out
    assert not [m.group(0) for m in _WARNING_LINE.finditer(out)]
    assert not _PYTHON_WARNING.findall(out)
    # MLflow's pip-version warning, fixed at the source (the registry passes its environment)
    assert "Failed to resolve installed pip version" not in out
    # Feast's materialize prints a header and a bare "<view>:" line per view
    assert "Materializing" not in out
    assert not re.search(r"^\S*user_velocity_24h\S*:\s*$", out, re.M)
    # MLflow's own INFO bookkeeping
    assert "Creating initial MLflow database tables" not in out
    # no progress drawing, no colour codes when the output is not a terminal
    assert "\x1b[" not in out


def test_each_block_of_the_demo_is_printed_once(demo) -> None:
    _, done = demo
    out = _output(done)
    # the first promotion's verdict: the pipeline prints it, promote() logs one status line
    assert out.count("note: first model: there is no champion to compare against") == 1
    # one verdict per promotion decision (the first model's, the retrained one's)
    assert len(re.findall(r"^evaluation window ", out, re.M)) == 2
    assert out.count("mlref demo: done") == 1


def test_the_demo_summary_states_the_registry_as_it_is(demo) -> None:
    from mlref.registry import CHAMPION, Registry
    from mlref.settings import make_settings

    home, done = demo
    champion = Registry(make_settings(home / ".mlref")).load(CHAMPION)
    summary = done.stdout[done.stdout.index("mlref demo: done") :]
    stated = re.search(r"^  champion\s+version (\S+): (\S+)$", summary, re.M)
    assert stated, summary
    assert stated.group(1) == champion.version
    assert Path(stated.group(2)) == Path(champion.onnx_path)
    # the retrain promoted a second version: the summary must not call version 1 the model
    retrained = re.search(r"^  retrained\s+version (\S+): .*PROMOTED", summary, re.M)
    assert retrained
    assert retrained.group(1) == champion.version == "2"


def test_the_demo_says_its_drift_was_injected_where_it_prints_the_alerts(demo) -> None:
    _, done = demo
    out = done.stdout
    # the note belongs to the monitor's own block: after its alerts, before its report paths
    alerts = out.index("monitor: CRITICAL")
    note = out.index("drift was injected on purpose (by the demo")
    assert alerts < note < out.index("report JSON:", alerts)
    assert "CRITICAL alerts (expected: the drift injected on purpose)" in out


def test_the_demo_ends_with_the_next_steps(demo) -> None:
    home, done = demo
    tail = done.stdout.rstrip().split("Next:")[-1]
    report = re.search(r"open the monitoring report\s+(\S+)", tail)
    assert report
    assert Path(report.group(1)).is_file()
    assert Path(report.group(1)) == (home / ".mlref" / "reports" / "monitor.html").resolve()
    # the default workdir: the commands carry no --workdir
    for command in ("uv run mlref serve", "uv run pytest --mlgates", "uv run nox -s load"):
        assert re.search(rf"\s{re.escape(command)}$", tail, re.M), command
    assert re.search(r"curl -s http://127\.0\.0\.1:\d+/predict .* -d '\{.*\}'$", tail, re.M)
    assert "uv run mlref demo --fresh" in tail


def test_running_the_demo_again_refuses_in_one_line_and_loses_nothing(demo) -> None:
    home, _ = demo
    before = _tree(home)
    again = _mlref("demo", cwd=home, timeout=120)
    assert again.returncode == 1
    assert again.stdout == ""
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1, again.stderr
    assert lines[0].startswith("mlref demo: .mlref already holds an mlref run")
    assert "`uv run mlref demo --fresh` deletes it and starts over" in lines[0]
    assert _tree(home) == before


def test_fresh_removes_only_what_mlref_made(tmp_path: Path) -> None:
    from mlref.settings import make_settings

    settings = make_settings(tmp_path / "w")
    settings.ensure_dirs()
    (settings.raw_path).write_bytes(b"x")
    (settings.workdir / "retrain" / "mlflow").mkdir(parents=True)
    (settings.workdir / "notes.txt").write_text("mine")
    removed = settings.clear()
    assert {p.name for p in removed} == {
        "data",
        "feature_repo",
        "artifacts",
        "mlflow",
        "logs",
        "reports",
        "retrain",
    }
    assert sorted(p.name for p in settings.workdir.iterdir()) == ["notes.txt"]
    assert settings.system_entries() == []


# -- the README's steps after the demo, in the order written ---------------------------------


def _readme_curl() -> str:
    block = re.search(r"^curl -s .*?/predict.*?(?=^\S|\Z)", README, re.M | re.S)
    assert block, "the README shows a curl request to /predict"
    return block.group(0)


def test_monitor_after_the_demo_exits_as_documented(demo) -> None:
    home, _ = demo
    done = _mlref("monitor", cwd=home)
    out = _output(done)
    assert "Traceback" not in out
    # the whole log: the canary's replay (12,000 undrifted requests, each version judged
    # against its own reference) outweighs the demo's 400 drifted live requests, as README says
    assert done.returncode == 0, out[-2000:]
    assert "monitor: OK" in done.stdout
    # the window before the canary holds only the live traffic: its injected drift is critical,
    # and `mlref monitor` exits 2 on critical
    import sqlite3
    from datetime import UTC, datetime

    con = sqlite3.connect(home / ".mlref" / "logs" / "predictions.sqlite")
    try:
        (first_canary_ts,) = con.execute(
            "SELECT min(ts) FROM predictions WHERE arm IS NOT NULL"
        ).fetchone()
    finally:
        con.close()
    end = datetime.fromtimestamp(first_canary_ts, UTC).isoformat()
    live = _mlref("monitor", "--end", end, cwd=home)
    assert live.returncode == 2, _output(live)[-2000:]
    assert "monitor: CRITICAL" in live.stdout


def test_serve_and_the_readme_curl_score_a_transaction(demo) -> None:
    import httpx

    from mlref.pipeline import free_port

    home, _ = demo
    port = free_port()
    log = home / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlref.cli", "serve", "--port", str(port)],
            cwd=home,
            env=_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.25)
        curl = _readme_curl().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        done = subprocess.run(
            ["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert set(answer) >= {"transaction_id", "score", "decision", "threshold", "model_version"}
        assert answer["model_version"] == "2"
        # and the response the README shows has the same fields as the real one
        shown = re.search(r"^\{\"transaction_id\".*\}$", README, re.M)
        assert shown
        assert set(json.loads(shown.group(0))) == set(answer)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    out = log.read_text()
    assert "Traceback" not in out
    # what the README says `mlref serve` prints while it loads, then when it is ready
    assert "loading model and feature store" in out
    assert out.index("loading model and feature store") < out.index("ready")


def test_load_against_the_demo_exits_as_documented(demo) -> None:
    home, _ = demo
    done = _mlref("load", "--", "-u", "4", "-r", "4", "-t", "5s", cwd=home, timeout=300)
    out = _output(done)
    assert "Traceback" not in out
    # 0: every budget held; 1: a budget broke (on a busy machine it may): both are verdicts
    assert done.returncode in (0, 1), out[-3000:]
    assert (home / ".mlref" / "reports" / "load" / "summary.json").is_file()


def test_score_batch_as_the_readme_writes_it(demo) -> None:
    home, _ = demo
    command = re.search(r"uv run mlref (score-batch [^`\n]*)", README)
    assert command, "the README shows a score-batch command"
    done = _mlref(*command.group(1).split(), cwd=home)
    out = _output(done)
    assert "Traceback" not in out
    assert done.returncode == 0, out[-2000:]
    assert re.search(r"^\d+ users scored at ", done.stdout, re.M)


# -- wrong steps: one line naming the command, exit 1, nothing created -----------------------

_WRONG_STEPS = {
    "features": "uv run mlref generate`",
    "train": "uv run mlref generate && uv run mlref features`",
    "promote": "uv run mlref generate && uv run mlref features && uv run mlref train`",
    "rollback": "uv run mlref generate && uv run mlref features && uv run mlref train`",
    "retrain": "uv run mlref generate`",
    "score-batch --as-of 2026-05-01T00:00:00+00:00": (
        "uv run mlref generate && uv run mlref features && uv run mlref train && "
        "uv run mlref promote`"
    ),
    "load": "uv run mlref promote`",
    "monitor": "no prediction log in .mlref: run `uv run mlref demo`",
    "shadow-report": "no prediction log in .mlref: run `uv run mlref demo`",
    "explain t000000001": "no prediction log in .mlref: run `uv run mlref demo`",
}


@pytest.mark.parametrize("command", list(_WRONG_STEPS))
def test_a_command_on_an_empty_directory_says_which_command_makes_its_input(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLREF_HOME", raising=False)
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")
    assert main(command.split()) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    name = command.split()[0]
    assert lines[0].startswith(f"mlref {name}: no ")
    assert _WRONG_STEPS[command] in lines[0]
    # no Python function names for a newcomer to call, and nothing made in the directory
    assert "mlref." not in lines[0].replace("mlref.cli", "")
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_step_names_the_workdir_it_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")
    workdir = tmp_path / "elsewhere"
    assert main(["train", "--workdir", str(workdir)]) == 1
    err = capsys.readouterr().err
    assert f"uv run mlref generate --workdir {workdir} && " in err
    assert not workdir.exists()


def test_later_commands_judge_the_data_by_the_config_it_was_generated_with(
    tmp_path: Path,
) -> None:
    """The demo generates 120 days; `mlref score-batch` without --days used to judge them
    by the default 90 and stop on 'stale data' (the newest event a month after 'as of')."""
    from mlref.settings import make_settings, save_data_config

    save_data_config(make_settings(tmp_path, days=120, seed=3))
    assert make_settings(tmp_path).data.days == 120
    assert make_settings(tmp_path).data.seed == 3
    assert make_settings(tmp_path, days=30).data.days == 30  # the command line wins
    assert make_settings(tmp_path / "other").data.days == 90


def test_progress_draws_a_line_per_stage_with_its_time_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from rich.console import Console

    from mlref import progress

    screen = io.StringIO()
    monkeypatch.setattr(
        progress, "console", lambda: Console(file=screen, force_terminal=True, width=80)
    )
    with progress.stage("features (Feast apply + materialize)"):
        pass
    assert "features (Feast apply + materialize)" in screen.getvalue()
    assert "0:00:00" in screen.getvalue()  # rich's elapsed-time column

    piped = io.StringIO()
    monkeypatch.setattr(progress, "console", lambda: Console(file=piped, width=80))
    with progress.stage("train"):
        pass
    assert piped.getvalue() == ""
