"""Session fixtures of the reference system, shared by the gate suite and the mutation proofs.

Everything is built lazily, once per pytest process, in a temporary directory (never in the
source tree): a test that requests none of these fixtures pays nothing, and importing this
file is cheap (Feast, MLflow, XGBoost and ONNX Runtime are imported inside the fixtures).

Dependency chain (each fixture builds what it needs first)::

    ref_settings -> reference_system -> server_url -> served_log
                                    \\-> live_traffic(drifted)
                                    \\-> full_history_store

Consumers must treat every session object as READ-ONLY (do not mutate the frames, do not
move registry aliases, do not push to the store): other tests share them. Build a private
copy (``frame.copy()``, a ``tmp_path`` workdir) to inject a defect.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings

log = logging.getLogger(__name__)

# Size of the reference system: the windows need 70 days (14 test + 2 x 14 embargo + 14
# validation + 14 for the last labels) and training starts after the 30-day feature burn-in
# (mlref.pipeline.burn_in), so 120 days leave ~20 days of training; 800 users keep the build
# near a minute on two shared cores. Fixed seed: every run builds the same data and model.
REF_USERS = 800
REF_DAYS = 120
REF_SEED = 7
# A week of live traffic: hour_of_day and day_of_week are model inputs, so a serving window
# shorter than a week differs from the multi-week training window by design (clean 2-day
# windows of this data cross PSI 0.2 on the scores about half the time).
LIVE_DAYS = 7
# bounded replay of live traffic against the server (see served_log): 3,600 of the live
# week's 6,672 transactions hold ~44 fraud rows whose labels mature, above the 30 that
# offline_online_agreement (model-2) needs to decide (1,200 held 13: inconclusive)
REPLAY_REQUESTS = 3600
REPLAY_CHUNK = 16


@pytest.fixture(scope="session")
def ref_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the session's reference system: a fresh temporary workdir, 800 users,
    120 days of history (+7 live days), generator seed 7, defaults otherwise (MLflow on a
    SQLite file under the workdir, Feast with parquet offline / SQLite online stores)."""
    from mlref.settings import make_settings

    workdir = tmp_path_factory.mktemp("mlref-reference") / "mlref"
    return make_settings(workdir, n_users=REF_USERS, days=REF_DAYS, seed=REF_SEED)


@pytest.fixture(scope="session")
def reference_system(ref_settings: Settings) -> ReferenceSystem:
    """``build_reference_system(ref_settings, live_days=LIVE_DAYS, drift_live=False)``: data ->
    validation -> Feast (apply + materialize) -> training rows (Feast historical) -> XGBoost
    -> ONNX (+ parity) -> MLflow registry -> promotion (the first model becomes champion).

    ``.live`` holds the clean live week after the history (never seen by the store or
    the model). Read-only: shared by every test of the session.
    """
    from mlref.pipeline import build_reference_system

    started = time.perf_counter()
    system = build_reference_system(ref_settings, live_days=LIVE_DAYS, drift_live=False)
    log.info("reference system built in %.1fs", time.perf_counter() - started)
    if not system.decision.promoted:
        raise RuntimeError(
            "the reference system's first model was not promoted to champion:\n"
            + system.decision.explain()
        )
    return system


@pytest.fixture(scope="session")
def live_traffic(
    ref_settings: Settings, reference_system: ReferenceSystem
) -> Callable[[bool], pd.DataFrame]:
    """Factory ``live_traffic(drifted: bool) -> DataFrame`` of the live window (raw
    transactions after the history, ``LIVE_DAYS`` days).

    ``drifted=False`` is ``reference_system.live``. ``drifted=True`` regenerates the same
    stream with the generator's drift switch on half-way through the live days (amounts
    scaled, a new merchant category); rows before the switch are identical to the clean
    ones (the generator draws the same numbers either way). ``frame.attrs["drift_from"]``
    holds the switch time (ISO string, None when clean); the drifted part is
    ``frame[frame.event_timestamp >= pd.Timestamp(frame.attrs["drift_from"])]``.
    Results are cached; treat them as read-only.
    """
    from mlref.pipeline import history_and_live

    cache: dict[bool, pd.DataFrame] = {}

    def make(drifted: bool = False) -> pd.DataFrame:
        if drifted not in cache:
            if drifted:
                _, live, drift_from = history_and_live(
                    ref_settings, live_days=LIVE_DAYS, drift_live=True
                )
            else:
                live, drift_from = reference_system.live, None
            frame = live.copy()
            frame.attrs["drift_from"] = drift_from
            cache[drifted] = frame
        return cache[drifted]

    return make


@pytest.fixture(scope="session")
def full_history_store(
    ref_settings: Settings,
    reference_system: ReferenceSystem,
    tmp_path_factory: pytest.TempPathFactory,
) -> FeatureStore:
    """A second Feast store (own temporary workdir) built from history + ALL clean live
    events: the offline truth after the fact. ``training_frame(full_history_store, txns)``
    gives the Feast point-in-time features every live transaction should have been served
    with (what the online path must reproduce). Costs one Feast apply + materialize."""
    import pandas as pd

    from mlref.features.store import build_feature_store

    settings = ref_settings.with_(workdir=tmp_path_factory.mktemp("mlref-full") / "mlref")
    settings.ensure_dirs()
    events = pd.concat([reference_system.events, reference_system.live], ignore_index=True)
    return build_feature_store(settings, events)


@pytest.fixture(scope="session")
def server_url(ref_settings: Settings, reference_system: ReferenceSystem) -> Iterator[str]:
    """The scoring server (FastAPI under uvicorn in a thread) on 127.0.0.1 for the whole
    session, serving the registry's champion with features from the reference Feast store;
    stopped (graceful drain) at session end. Yields its base URL."""
    from mlref.pipeline import running_server

    with running_server(ref_settings) as url:
        yield url


@dataclass(frozen=True)
class ServedLog:
    """What ``served_log`` replayed and what the server answered and logged.

    ``sample``: the replayed live transactions (raw columns, time order); ``responses``: the
    /predict answers in the same order (``status``, ``score``, ...); ``log``: the
    prediction-log rows of exactly those transactions (``read_log`` frame, one per
    transaction, with the logged model inputs as columns), in ``sample`` order.
    """

    sample: pd.DataFrame
    responses: list[dict[str, Any]]
    log: pd.DataFrame


def exact_chunks(sample: pd.DataFrame, stream: pd.DataFrame, max_chunk: int) -> list[pd.DataFrame]:
    """Split time-ordered requests into consecutive chunks that can be scored concurrently
    with exact online state.

    Before a chunk is sent, every ``stream`` event older than its first request is pushed.
    A request may join the chunk only if its user has no stream event between the chunk's
    first request and its own time (that event would not be in the store yet) and is not
    already in the chunk. Cutting there keeps the replay exact, so any skew the gates find
    is the system's, not the harness's.
    """
    import numpy as np

    times = stream["event_timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    by_user = {int(u): np.sort(times[idx]) for u, idx in stream.groupby("user_id").indices.items()}
    req_users = sample["user_id"].to_numpy()
    req_times = sample["event_timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    bounds = [0]
    chunk_users: set[int] = set()
    for i, (user, t) in enumerate(zip(req_users, req_times, strict=True)):
        t0 = req_times[bounds[-1]]
        mine = by_user.get(int(user), np.empty(0, np.int64))
        between = np.searchsorted(mine, t, "left") - np.searchsorted(mine, t0, "left")
        if i > bounds[-1] and (
            int(user) in chunk_users or between > 0 or i - bounds[-1] >= max_chunk
        ):
            bounds.append(i)
            chunk_users = set()
        chunk_users.add(int(user))
    bounds.append(len(sample))
    return [sample.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@pytest.fixture(scope="session")
def served_log(reference_system: ReferenceSystem, server_url: str) -> ServedLog:
    """Replay a bounded random sample of the clean live traffic against ``server_url`` as
    production would see it; return the answers and the prediction-log rows of those
    transactions.

    The whole live stream goes through the online path (``warm_started`` on the history,
    as the pipeline's replay -> ``push_events``) in time order; the ``REPLAY_REQUESTS``
    sampled transactions (seed 0, spread over the live days) are POSTed to /predict in time
    order, in chunks (``exact_chunks``) whose state is complete before they are sent. After
    the last chunk the rest of the stream is pushed, so the reference store's online side
    then holds every user's state at the end of the live window. The offline truth for
    every served transaction is therefore the full event log (history + live).
    Mutates only the reference store's ONLINE rows (the intended live state).
    """
    import numpy as np

    from mlref.features.online import warm_started
    from mlref.features.store import push_events
    from mlref.monitor.log import read_log
    from mlref.pipeline import send_traffic

    system = reference_system
    live = system.live.sort_values(["event_timestamp", "transaction_id"], kind="mergesort")
    live = live.reset_index(drop=True)
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(live), size=min(REPLAY_REQUESTS, len(live)), replace=False))
    sample = live.iloc[picked].reset_index(drop=True)

    # warmed as the pipeline's replay warms it (window + TTL), so a user's first live row
    # carries the same previous state the offline join sees
    aggregator = warm_started(system.events)
    live_ts = live["event_timestamp"]
    pushed = 0
    responses: list[dict[str, Any]] = []
    for chunk in exact_chunks(sample, live, REPLAY_CHUNK):
        upto = int(live_ts.searchsorted(chunk["event_timestamp"].iloc[0], side="left"))
        if upto > pushed:
            push_events(system.store, live.iloc[pushed:upto], aggregator=aggregator)
            pushed = upto
        responses.extend(send_traffic(server_url, chunk, concurrency=8))
    if pushed < len(live):
        push_events(system.store, live.iloc[pushed:], aggregator=aggregator)
    bad = [r for r in responses if r.get("status") != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(responses)} replayed requests failed: {bad[:3]}")

    ids = set(sample["transaction_id"].astype(str))
    deadline = time.monotonic() + 30.0
    while True:  # the log is written off the request path; wait for the last flush
        frame = read_log(system.settings.prediction_log)
        frame = frame.loc[frame["transaction_id"].isin(ids)]
        if frame["transaction_id"].nunique() >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if frame["transaction_id"].nunique() < len(ids):
        raise RuntimeError(
            f"only {frame['transaction_id'].nunique()} of {len(ids)} replayed transactions "
            f"reached the prediction log {system.settings.prediction_log} within 30 s"
        )
    frame = frame.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")
    frame = frame.loc[sample["transaction_id"].astype(str)].reset_index()
    return ServedLog(sample=sample, responses=responses, log=frame)


# --- code_coverage from this run (tests/gates/test_policy_gates.py) -----------------------
# The code_coverage gate tests (data-7, infra-2) judge the feature code and the model code by
# their own unit tests. Those unit tests run in this session anyway, so their coverage is
# measured here, while they run, instead of running them again in child processes (which
# cost ~3 min of the suite on two cores): coverage.py traces only during those tests' own
# setup/call/teardown (the rest of the suite, its servers and latency gates, is never
# traced), with one data set per test file, so a mutation proof can drop one file's tests.
# The targets' module-level lines (imports, defs) are measured by importing the modules under
# coverage before any test runs. The gate tests that read the data move after the unit tests.
# Falls back to the child processes (SessionCoverage.active False) when it cannot measure
# the same thing: a unit-test file not selected, a target module already imported before
# collection ended, another tracer (pytest-cov, a debugger), or xdist workers.

COVERAGE_SUITE = "tests/gates/test_policy_gates.py"


def _source_file(module: str) -> str:
    """The source file of a dotted module name, found WITHOUT importing its packages
    (``importlib.util.find_spec("a.b.c")`` imports ``a.b``, whose ``__init__`` may import
    the very modules to be measured)."""
    import importlib.util

    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    assert spec is not None, module
    assert spec.submodule_search_locations, module
    base = Path(next(iter(spec.submodule_search_locations)), *rest)
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    assert path.is_file(), f"{module}: no source file at {path}"
    return str(path)


class SessionCoverage:
    """Per target (``features``/``model``) and per unit-test file, coverage.py data of this
    session; see the comment above."""

    def __init__(self, root: Any, targets: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]):
        self.root = root
        self.targets = targets  # name -> (modules, test files)
        self.active: dict[str, bool] = {}
        self.why_not: dict[str, str] = {}
        self.covs: dict[tuple[str, str], Any] = {}  # (target, test file or "import") -> Coverage
        self.by_file: dict[str, str] = {}  # test file -> target
        self.expected: dict[str, int] = {}  # test file -> selected items
        self.finished: dict[str, int] = {}
        self.failed: dict[str, list[str]] = {}

    def measure_imports(self) -> None:
        """Import every target's modules under one coverage (before collection imports
        them: a module's import-time lines, its imports and defs, count as its tests' do in
        a child process); one target's modules may import another's."""
        import importlib
        import sys

        import coverage

        for name, (modules, _) in self.targets.items():
            loaded = [m for m in modules if m in sys.modules]
            if loaded:
                self.why_not[name] = f"imported before measuring: {', '.join(loaded)}"
            elif sys.gettrace() is not None:
                self.why_not[name] = "another tracer is active (pytest-cov or a debugger)"
        measured = {n: t for n, t in self.targets.items() if n not in self.why_not}
        if not measured:
            return
        files = {n: [_source_file(m) for m in modules] for n, (modules, _) in measured.items()}
        for name, (_, tests) in measured.items():
            for test in tests:
                self.covs[(name, test)] = coverage.Coverage(
                    data_file=None, branch=True, include=files[name]
                )
        every = [f for name in measured for f in files[name]]
        cov = coverage.Coverage(data_file=None, branch=True, include=every)
        cov.start()
        try:
            for modules, _ in measured.values():
                for module in modules:
                    importlib.import_module(module)
        finally:
            cov.stop()
        for name in measured:
            self.covs[(name, "import")] = cov

    def start(self, items: list[pytest.Item]) -> None:
        """Measure the targets whose unit-test files are all selected."""
        for item in items:
            rel = item.path.relative_to(self.root).as_posix()
            self.expected[rel] = self.expected.get(rel, 0) + 1
        for name, (_, tests) in self.targets.items():
            missing = [t for t in tests if t not in self.expected]
            if missing:
                self.why_not.setdefault(name, f"unit tests not selected: {', '.join(missing)}")
            if name in self.why_not:
                continue
            self.by_file.update({t: name for t in tests})
            self.active[name] = True

    def cov_for(self, item: pytest.Item) -> Any:
        rel = item.path.relative_to(self.root).as_posix()
        target = self.by_file.get(rel)
        return None if target is None else self.covs[(target, rel)]

    def record(self, item: pytest.Item, failed: bool, done: bool) -> None:
        rel = item.path.relative_to(self.root).as_posix()
        if rel not in self.by_file:
            return
        if failed:
            self.failed.setdefault(rel, []).append(item.nodeid)
        if done:
            self.finished[rel] = self.finished.get(rel, 0) + 1

    def data(self, name: str, tests: tuple[str, ...], data_file: Any) -> Any | None:
        """The coverage data file of ``tests`` (a subset of the target's files) on ``name``'s
        modules, or None when this session did not measure it (fall back)."""
        from coverage import CoverageData

        if not self.active.get(name):
            return None
        unfinished = [t for t in tests if self.finished.get(t, 0) < self.expected.get(t, 1)]
        if unfinished:
            self.why_not[name] = f"unit tests not run (yet): {', '.join(unfinished)}"
            return None
        failed = [n for t in tests for n in self.failed.get(t, [])]
        assert not failed, f"the unit tests failed: {', '.join(failed)}"
        out = CoverageData(basename=str(data_file))
        for key in ("import", *tests):
            out.update(self.covs[(name, key)].get_data())
        out.write()
        return data_file


SESSION_COVERAGE = pytest.StashKey[SessionCoverage]()


def _collects(config: pytest.Config, rel: str) -> bool:
    """Whether this run's arguments (or testpaths) take in the file ``rel``."""
    target = config.rootpath / rel
    args = config.args or [str(config.rootpath / p) for p in config.getini("testpaths")]
    for arg in args:
        path = Path(arg.split("::")[0])
        path = path if path.is_absolute() else config.invocation_params.dir / path
        if path.resolve() == target or path.resolve() in target.parents:
            return True
    return False


def pytest_sessionstart(session: pytest.Session) -> None:
    import importlib.util

    config = session.config
    if hasattr(config, "workerinput") or config.getoption("dist", "no") != "no":
        return  # xdist: the unit tests and the gate may run in different workers
    if not _collects(config, COVERAGE_SUITE):
        return
    spec = importlib.util.spec_from_file_location(
        "mlref_coverage_targets", config.rootpath / COVERAGE_SUITE
    )
    assert spec is not None
    assert spec.loader is not None
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)  # only constants and functions at module level
    measured = SessionCoverage(
        config.rootpath,
        {
            "features": (suite.FEATURE_CODE, suite.FEATURE_TESTS),
            "model": (suite.MODEL_CODE, suite.MODEL_TESTS),
        },
    )
    measured.measure_imports()
    config.stash[SESSION_COVERAGE] = measured


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    measured = config.stash.get(SESSION_COVERAGE, None)
    if measured is None:
        return
    measured.start(items)
    if measured.active:  # the gate tests that read the data run after the unit tests
        users = [i for i in items if "coverage_data" in getattr(i, "fixturenames", ())]
        items[:] = [i for i in items if i not in users] + users


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    session = item.config.stash.get(SESSION_COVERAGE, None)
    cov = None if session is None else session.cov_for(item)
    if cov is None:
        yield
        return
    cov.start()
    try:
        yield
    finally:
        cov.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome = yield
    session = item.config.stash.get(SESSION_COVERAGE, None)
    if session is not None:
        report = outcome.get_result()
        session.record(item, failed=report.failed, done=report.when == "teardown")


@pytest.fixture(scope="session")
def session_coverage(request: pytest.FixtureRequest) -> SessionCoverage | None:
    """This session's coverage of the feature and model code by their unit tests (None when
    the session did not measure it: the caller runs the tests in a child process)."""
    return request.config.stash.get(SESSION_COVERAGE, None)
