"""Shared pieces of the mutation proofs: a server harness, replay helpers, the champion.

The mutation proofs inject the real defect each gate exists for and assert that the gate
fails (or is inconclusive) naming the cause, next to the clean counterpart that passes.
They use the root session fixtures (``ref_settings``, ``reference_system``, ...) read-only:
every defect is built in a private temporary directory (own Feast store, own prediction log,
own app instance), never in the shared system.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlref.features.online import OnlineAggregator
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import LoadedModel
    from mlref.settings import Settings


@contextlib.contextmanager
def serve_app(app: FastAPI, *, ready_timeout_s: float = 60.0) -> Iterator[str]:
    """``app`` (built here: injected model or feature source) on 127.0.0.1, as
    ``mlref.pipeline.running_server`` serves the reference one."""
    from mlref.pipeline import serving_in_thread

    with serving_in_thread(app, ready_timeout_s=ready_timeout_s) as url:
        yield url


def timed_requests(
    url: str, frame: pd.DataFrame, *, concurrency: int, timeout_s: float = 30.0
) -> tuple[np.ndarray, list[int]]:
    """POST each transaction to /predict; client-side wall latency (ms) and status per request."""
    import httpx

    from mlref.pipeline import transaction_payloads

    assert url.startswith("http://127.0.0.1"), url
    payloads = transaction_payloads(frame)

    async def run() -> list[tuple[float, int]]:
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

            async def one(body: dict[str, Any]) -> tuple[float, int]:
                async with sem:
                    started = time.perf_counter()
                    response = await client.post("/predict", json=body)
                    return (time.perf_counter() - started) * 1000.0, response.status_code

            return list(await asyncio.gather(*(one(p) for p in payloads)))

    out = asyncio.run(run())
    return np.array([ms for ms, _ in out]), [status for _, status in out]


def replay_chunks(sample: pd.DataFrame, max_chunk: int) -> list[pd.DataFrame]:
    """Consecutive chunks of time-ordered transactions in which no user repeats.

    A chunk is scored before it is pushed to the online store (as a stream processor does);
    a user's second transaction in the same chunk would be scored on stale state, and that
    harness artefact would look like skew.
    """
    bounds = [0]
    seen: set[int] = set()
    for i, user in enumerate(sample["user_id"].to_numpy().tolist()):
        if user in seen or i - bounds[-1] >= max_chunk:
            bounds.append(i)
            seen = set()
        seen.add(int(user))
    bounds.append(len(sample))
    return [sample.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]


class StreamStateSource:
    """A ``FeatureSource`` reading the stream processor's state directly (no Feast hop).

    The state is the real ``OnlineAggregator`` (what ``push_events`` pushes to Feast), read
    with ``state_from_rows``: the specification of the Feast online read (same TTL and
    previous-row rules, proven equal to Feast by ``tests/mlref/features/test_feast_replay``).
    Used where a test needs many users' live state without its own copy of the reference
    store; the feature values are those the Feast path serves.
    """

    def __init__(self, aggregator: OnlineAggregator) -> None:
        self.aggregator = aggregator
        self._rows: pd.DataFrame | None = None
        self._seen = -1

    def _latest_rows(self) -> pd.DataFrame:
        # rebuilt only when the stream moved on (between replay chunks, not per batch)
        if self._rows is None or self._seen != self.aggregator.events_seen:
            self._rows = self.aggregator.latest_rows()
            self._seen = self.aggregator.events_seen
        return self._rows

    def lookup(self, batch: Any) -> pd.DataFrame:
        requests = batch.frame()  # a RequestBatch (mlref.serve.features) as a DataFrame
        from mlref.features.definitions import LOOKUP_OFFSET, to_epoch_ns
        from mlref.features.offline import transform_inputs
        from mlref.features.online import state_from_rows
        from mlref.features.transforms import request_features

        lookup_ns = to_epoch_ns(requests["event_timestamp"]) - LOOKUP_OFFSET.value
        state = state_from_rows(self._latest_rows(), requests["user_id"].to_numpy(), lookup_ns)
        state.index = requests.index
        out = request_features(transform_inputs(requests, state))
        out["unknown_user"] = state["unknown_user"].to_numpy()
        return out


def wait_for_log(path: Path, ids: set[str], timeout_s: float = 30.0) -> pd.DataFrame:
    """The prediction-log rows of ``ids`` (one per id), once all of them were flushed."""
    from mlref.monitor.log import read_log

    deadline = time.monotonic() + timeout_s
    while True:
        frame = read_log(path) if path.exists() else pd.DataFrame({"transaction_id": []})
        frame = frame.loc[frame["transaction_id"].isin(ids)]
        if frame["transaction_id"].nunique() >= len(ids):
            return frame.drop_duplicates("transaction_id", keep="last").reset_index(drop=True)
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {frame['transaction_id'].nunique()} of {len(ids)} transactions reached "
                f"the prediction log {path} within {timeout_s:.0f}s"
            )
        time.sleep(0.1)


@pytest.fixture(scope="session")
def champion(ref_settings: Settings, reference_system: ReferenceSystem) -> LoadedModel:
    """The registry's champion of the reference system (ONNX path, card, version); read-only."""
    from mlref.registry import CHAMPION, Registry

    return Registry(ref_settings).load(CHAMPION)


@pytest.fixture(scope="session")
def evaluation_window(reference_system: ReferenceSystem, champion: LoadedModel) -> pd.DataFrame:
    """The latest labelled window the promotion compares on (a private copy)."""
    from mlref.promote import latest_labelled_window

    config = champion.card["training_config"]
    span = pd.Timestamp(config["test_end"]) - pd.Timestamp(config["test_start"])
    window = latest_labelled_window(
        reference_system.frame,
        days=span / pd.Timedelta(days=1),
        label_delay=pd.Timedelta(seconds=float(config["label_delay"])),
    )
    return window.copy()


@pytest.fixture(scope="session")
def champion_scores(champion: LoadedModel, evaluation_window: pd.DataFrame) -> np.ndarray:
    """The champion's ONNX scores on the evaluation window, as promotion computes them."""
    from mlref.export import OnnxScorer
    from mlref.train.fit import feature_matrix

    scorer = OnnxScorer(champion.onnx_path)
    return scorer.score(feature_matrix(evaluation_window, champion.card["feature_names"]))


@pytest.fixture(scope="session")
def mutation_kit() -> SimpleNamespace:
    """The helpers above, for the test modules (conftest modules are not importable)."""
    return SimpleNamespace(
        serve_app=serve_app,
        timed_requests=timed_requests,
        replay_chunks=replay_chunks,
        StreamStateSource=StreamStateSource,
        wait_for_log=wait_for_log,
    )
