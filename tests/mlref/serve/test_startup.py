"""Start-up as an operator sees it: a workdir with nothing to serve is one line and a non-zero
exit, with nothing created there; a slow load says so before uvicorn says "running" and says
"ready in X.X s" when done."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mlref.serve.app import ServeConfig, create_app
from mlref.serve.preflight import NothingToServe, check_servable
from mlref.settings import make_settings

MLREF = Path(sys.executable).parent / "mlref"  # the console script `uv run mlref` runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_serve_on_an_empty_workdir_fails_with_one_line_and_creates_nothing(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [str(MLREF), "serve", "--workdir", "empty", "--port", str(_free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "mlref serve: no model in empty: run uv run mlref demo --workdir empty"
    ]
    assert _tree(empty) == []  # no mlflow.db, no logs/predictions.sqlite


def test_a_registry_without_a_champion_names_promote_and_is_left_as_it_was(
    tmp_path: Path,
) -> None:
    """A real MLflow registry (SQLite) holding the model but no champion alias: the preflight
    reads MLflow's own tables (read-only), so this also pins the schema it relies on."""
    import mlflow

    settings = make_settings(tmp_path / "mlref")
    settings.ensure_dirs()
    client = mlflow.MlflowClient(tracking_uri=settings.registry_uri)
    client.create_registered_model(settings.model_name)
    before = _tree(settings.workdir)
    with pytest.raises(NothingToServe, match=r"^no champion model in .*: run uv run mlref demo"):
        check_servable(settings, ServeConfig.from_settings(settings))
    assert _tree(settings.workdir) == before
    # with the alias set (and no feature store yet), the next missing piece is named instead
    client.create_model_version(settings.model_name, source=str(tmp_path))
    client.set_registered_model_alias(settings.model_name, "champion", "1")
    with pytest.raises(NothingToServe, match=r"^no feature store in .*: run uv run mlref demo"):
        check_servable(settings, ServeConfig.from_settings(settings))


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "mlref")
    config = ServeConfig(model_path=tmp_path / "gone.onnx")
    with pytest.raises(NothingToServe, match=r"no model file .*gone\.onnx: check model_path"):
        check_servable(settings, config)


class _SlowFeatures:
    """The test feature source, blocked on its first lookup (the warm-up) until released."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = threading.Event()

    def lookup(self, requests: Any) -> Any:
        if not self.release.wait(20):
            raise TimeoutError("test never released the feature store")
        return self.inner.lookup(requests)


@pytest.mark.anyio
async def test_a_slow_load_says_loading_before_running_then_ready_with_the_time(
    settings: Any, champion: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlref.serve.runtime")
    features = _SlowFeatures(kit.StateTableSource(kit.user_state()))
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with app.router.lifespan_context(app):
        # lifespan start-up is done: this is where uvicorn logs "running"; loading is said
        messages = [r.getMessage() for r in caplog.records]
        assert "loading model and feature store..." in messages
        assert not any(m.startswith("ready") for m in messages)
        await asyncio.sleep(0.3)
        features.release.set()
        await kit.wait_for(lambda: app.state.runtime.ready, what="ready")
    (ready,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ready")]
    took = re.match(r"ready in (\d+\.\d) s: model champion-v1", ready)
    assert took is not None, ready
    assert float(took.group(1)) >= 0.3


def test_the_reference_system_passes_the_preflight(
    ref_settings: Any, reference_system: Any
) -> None:
    """The real layout (MLflow on SQLite with a champion, Feast with its SQLite online store)
    is servable: the preflight's checks match what the pipeline writes."""
    check_servable(ref_settings, ServeConfig.from_settings(ref_settings))


def test_no_challenger_is_said_as_a_fact_not_an_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Serving without a challenger is normal: the log says shadow mode is off, not
    "register a model first (mlref train)" (issue 19: read like an order mid-demo)."""
    from mlref.registry import Registry
    from mlref.serve.runtime import ServingRuntime

    settings = make_settings(tmp_path / "mlref")
    settings.ensure_dirs()
    Registry(settings).client.search_registered_models()  # a registry, with no model in it
    runtime = ServingRuntime(settings, ServeConfig(), model=None, features=None, shadow=None)
    caplog.set_level(logging.INFO, logger="mlref.serve.runtime")
    assert runtime._try_load_shadow("challenger") is None
    said = [r.getMessage() for r in caplog.records if r.name == "mlref.serve.runtime"]
    assert said == ["shadow mode off: no challenger model registered"]


def test_a_load_that_fails_stops_the_server_instead_of_answering_503_for_ever(
    tmp_path: Path,
) -> None:
    """The files are there (the preflight passes) but loading fails: ``serve`` stops uvicorn
    and raises, so ``mlref serve`` exits non-zero with the reason."""
    from mlref.serve.run import StartupFailed, serve

    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx model")
    broken.with_suffix(".card.json").write_text('{"feature_names": [], "decision": {}}')
    settings = make_settings(tmp_path / "mlref", port=_free_port())
    feature_repo = settings.feature_repo
    (feature_repo / "data").mkdir(parents=True)
    (feature_repo / "feature_store.yaml").write_text("project: none\n")
    (feature_repo / "data" / "online_store.db").write_bytes(b"")
    config = ServeConfig(
        model_path=broken,
        shadow_alias=None,
        graceful_timeout_s=5.0,
        load_retry_s=0.2,  # retried with backoff for load_give_up_s, then given up
        load_give_up_s=2.0,
    )
    raised: list[BaseException] = []

    def run() -> None:
        try:
            serve(settings, config=config)
        except BaseException as exc:  # handed to the test thread
            raised.append(exc)

    server = threading.Thread(target=run, name="serve-under-test", daemon=True)
    server.start()
    server.join(60)
    assert not server.is_alive(), "still serving 60 s after its load failed"
    (error,) = raised
    assert isinstance(error, StartupFailed)
    assert str(error).startswith("could not load the model and feature store: ")
