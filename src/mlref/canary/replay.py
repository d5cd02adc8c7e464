"""Replaying labelled traffic through a server under a rollout (the demo, the gate, the tests).

A canary is judged on outcomes, so its traffic must have labels: the labelled days that no
model trained on (after the champion's validation window) are replayed through the real
server (uvicorn on 127.0.0.1, routing, batchers, ONNX Runtime, the prediction log) in time
order, as ``/predict/batch`` calls, and judged with their labels.

Features: a week of live traffic needs the online store stepped event by event to be
point-in-time exact (``mlref.pipeline.replay_live``: ~30 ms a request here); tens of
thousands of past requests cannot afford it. ``OfflineFeatureSource`` serves each replayed
transaction the features Feast's offline store joins for it point-in-time
(``training_frame``), which the skew gates prove the online path reproduces. It is the one
stand-in, at the feature-store boundary; everything after it is the server's own path.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mlref.serve.features import RequestBatch

REQUEST_COLUMNS = ("transaction_id", "user_id", "amount", "merchant_category", "event_timestamp")


class OfflineFeatureSource:
    """Model inputs of known transactions, looked up by ``transaction_id``."""

    def __init__(self, frame: pd.DataFrame, feature_names: tuple[str, ...] | list[str]) -> None:
        missing = sorted({"transaction_id", *feature_names} - set(frame.columns))
        if missing:
            raise ValueError(f"the feature frame lacks columns {missing}")
        table = frame.drop_duplicates("transaction_id").set_index("transaction_id")
        self.names = tuple(feature_names)
        self._index = table.index
        self._values = table[list(self.names)].to_numpy(np.float64)
        self.misses = 0

    def lookup(self, requests: RequestBatch) -> Mapping[str, Any]:
        """A transaction not in the frame (the server's warm-up probe) gets missing inputs
        and the unknown-user flag, and is counted in ``misses`` for the caller to check."""
        pos = self._index.get_indexer(list(requests.transaction_id))
        missing = pos < 0
        rows = self._values[np.where(missing, 0, pos)]
        if missing.any():
            rows = rows.copy()
            rows[missing] = np.nan
            self.misses += int(missing.sum())
        out: dict[str, Any] = {name: rows[:, i] for i, name in enumerate(self.names)}
        out["unknown_user"] = missing
        return out


def unseen_window(
    frame: pd.DataFrame,
    events: pd.DataFrame,
    cards: Sequence[Mapping[str, Any]],
    max_rows: int,
) -> pd.DataFrame:
    """The first ``max_rows`` labelled transactions after every model's validation window
    (``cards``: champion's and canary's; nothing either learned from or chose its threshold
    on), in time order, with the request columns, the model inputs and the labels
    (``amount`` included)."""
    val_end = max(pd.Timestamp(card["training_config"]["val_end"]) for card in cards)
    rows = frame[frame["event_timestamp"] >= val_end].dropna(subset=["is_fraud"])
    raw = events[["transaction_id", "amount", "merchant_category"]]
    rows = rows.merge(raw, on="transaction_id", how="inner")
    rows = rows.sort_values(["event_timestamp", "transaction_id"], kind="mergesort")
    if rows.empty:
        raise ValueError(f"no labelled transactions after the validation window ({val_end})")
    return rows.head(max_rows).reset_index(drop=True)


def send_batches(
    url: str,
    frame: pd.DataFrame,
    *,
    batch_size: int = 200,
    concurrency: int = 2,
    timeout_s: float = 60.0,
) -> list[int]:
    """POST ``frame``'s transactions to ``/predict/batch`` in time-ordered batches; one
    status per transaction. Bounded in count (the frame) and time; loopback only."""
    import httpx

    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError(f"traffic goes to loopback only, not {url}")
    payloads = [
        {
            "transaction_id": str(row.transaction_id),
            "user_id": int(row.user_id),
            "amount": float(row.amount),
            "merchant_category": str(row.merchant_category),
            "event_timestamp": pd.Timestamp(row.event_timestamp).isoformat(),
        }
        for row in frame[list(REQUEST_COLUMNS)].itertuples(index=False)
    ]
    chunks = [payloads[i : i + batch_size] for i in range(0, len(payloads), batch_size)]

    async def run() -> list[int]:
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=timeout_s) as client:

            async def one(chunk: list[dict[str, Any]]) -> list[int]:
                async with sem:
                    r = await client.post("/predict/batch", json={"transactions": chunk})
                return [r.status_code] * len(chunk)

            out = await asyncio.gather(*(one(c) for c in chunks))
        return [s for part in out for s in part]

    return asyncio.run(run())


def wait_for_rows(log_path: Path, rollout_id: str, n: int, timeout_s: float = 30.0) -> int:
    """Wait until the prediction log holds ``n`` rows of ``rollout_id`` (it is written off
    the request path); returns how many it holds."""
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        if Path(log_path).exists():
            conn = sqlite3.connect(f"file:{log_path}?mode=ro", uri=True)
            try:
                count = conn.execute(
                    "SELECT COUNT(*) FROM predictions WHERE rollout_id = ?", (rollout_id,)
                ).fetchone()[0]
            except sqlite3.OperationalError:  # no rollout columns yet
                count = 0
            finally:
                conn.close()
            if count >= n:
                return int(count)
        time.sleep(0.1)
    return int(count)


def copy_registry(source: Any, target: Any) -> None:
    """Copy the MLflow registry database of ``source`` settings under ``target``'s workdir,
    so a drill can move aliases without touching the original (the artefacts stay where
    they are, read in place)."""
    import shutil

    src = Path(source.mlflow_dir) / "mlflow.db"
    if not src.exists():
        raise FileNotFoundError(f"no registry database at {src}")
    dst = Path(target.mlflow_dir) / "mlflow.db"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def register_same_artefacts(settings: Any, version: str) -> str:
    """A new registry version of ``version``'s very artefacts, tagged as such, with the
    ``challenger`` alias: an A/A canary (the same model under another version)."""
    from mlref.registry import CHALLENGER, Registry

    reg = Registry(settings)
    original = reg.client.get_model_version(reg.name, version)
    if original.source is None:
        raise ValueError(f"version {version} has no artefact source to reuse")
    created = reg.client.create_model_version(
        reg.name,
        original.source,
        run_id=original.run_id,
        tags={**original.tags, "mlref.same_artefacts_as": str(version)},
        description=f"A/A canary: the artefacts of version {version}",
    )
    reg.client.set_registered_model_alias(reg.name, CHALLENGER, created.version)
    return str(created.version)


@dataclass(frozen=True)
class Drill:
    """What a replayed rollout produced."""

    settings: Any
    rollout: Any  # mlref.canary.state.Rollout
    judged: Any  # mlref.canary.decide.CanaryStatus, as of the last label
    window: pd.DataFrame  # the replayed transactions (request columns, inputs, labels)
    statuses: list[int]
    feature_misses: int
    replay_s: float


def run_rollout(
    settings: Any,
    frame: pd.DataFrame,
    events: pd.DataFrame,
    *,
    share: float,
    max_rows: int,
    knobs: Any = None,
    canary_loader: Callable[[Any], Any] | None = None,
    salt: str | None = None,
    shadow: bool = False,
) -> Drill:
    """Start a rollout of the registry's challenger in ``settings``' workdir, serve the
    champion's unseen labelled window (:func:`unseen_window`) through a real server on
    127.0.0.1 with routing on, and judge it as of the last label. ``canary_loader``
    replaces how the server loads the canary model (a drill's injected defect); ``salt``
    fixes the user split (reproducible runs); ``shadow`` also scores every request with
    the challenger in shadow (``shadow_score`` in the log)."""
    from mlref.canary import control
    from mlref.canary.decide import status
    from mlref.canary.outcomes import LABEL_COLUMNS
    from mlref.registry import CHALLENGER, CHAMPION, Registry
    from mlref.serve.app import ServeConfig, create_app

    registry = Registry(settings)
    champion, challenger = registry.load(CHAMPION), registry.load(CHALLENGER)
    rollout = control.start(settings, share, knobs=knobs, salt=salt)
    window = unseen_window(frame, events, (champion.card, challenger.card), max_rows)
    features = OfflineFeatureSource(window, tuple(champion.card["feature_names"]))
    app = create_app(
        settings,
        features=features,
        config=ServeConfig.from_settings(settings, shadow_alias="challenger" if shadow else None),
    )
    runtime = app.state.runtime
    runtime.router.poll_s = 0.05
    if canary_loader is not None:
        runtime.canary_loader = canary_loader
    with _serving(app) as url:
        deadline = time.monotonic() + 60
        while runtime.router.active is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the server never picked up the rollout (see its log)")
            time.sleep(0.05)
        started = time.perf_counter()
        statuses = send_batches(url, window)
        replay_s = time.perf_counter() - started
    logged = wait_for_rows(settings.prediction_log, rollout.rollout_id, len(window))
    if logged < len(window):
        raise RuntimeError(f"only {logged} of {len(window)} replayed requests were logged")
    labels = window[list(LABEL_COLUMNS)]
    judged = status(settings, labels, as_of=labels["label_timestamp"].max())
    return Drill(settings, rollout, judged, window, statuses, features.misses, replay_s)


@contextlib.contextmanager
def _serving(app: Any, ready_timeout_s: float = 120.0) -> Iterator[str]:
    """``app`` under uvicorn in a thread on 127.0.0.1 until ``/healthz`` answers; drained on
    exit. (``mlref.pipeline.serving_in_thread`` does the same for the demo's first server;
    the pipeline runs this module, so this one cannot import it back.)"""
    import socket
    import threading

    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="mlref-canary-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + ready_timeout_s
    try:
        while True:
            if not thread.is_alive():
                raise RuntimeError("the server stopped during start-up; see the log above")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"server at {url} not ready after {ready_timeout_s:.0f}s")
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
