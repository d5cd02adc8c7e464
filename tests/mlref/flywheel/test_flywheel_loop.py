"""The whole data flywheel on real parts, outside ``run_demo``.

A private, small reference system (its own workdir, MLflow registry on SQLite, Feast store)
serves live traffic from uvicorn on 127.0.0.1, so the prediction log is the one the server
wrote. Then: hard-example mining over that log -> the SQLite review queue -> the simulated
reviewer (ground truth of the generator) -> reviewed labels merged into the training events ->
a real (small, seeded) XGBoost retrain registered as challenger -> the promotion gates decide,
and the registry follows the decision.

Each step is checked against something computed independently (the server's answers, the
generator's labels, the registry's aliases), so a loop that silently does nothing fails:
``test_the_checks_fail_when_*`` run the cheap middle of the loop again with a step broken
(mining finds nothing; the reviewed labels are dropped) and show the same checks refuse it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlref.flywheel.labeler as labeler
import mlref.flywheel.mining as mining
import mlref.flywheel.review_queue as review_queue

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:On demand feature view is an experimental feature:RuntimeWarning"
    ),
]

# Small but real: the training windows need ~70 days (test, two embargoes, validation, the
# last labels' delay), so 80 days of history; 300 users keep the build well under a minute
# on a quiet machine. A few live days are served; the K least certain become the review batch.
N_USERS = 300
DAYS = 80
LIVE_DAYS = 3
SEED = 13
SERVED = 300
K = 40


@dataclass
class Round:
    """One turn of the flywheel after the traffic: what each step produced."""

    queue_path: Path
    hard: pd.DataFrame
    counts: dict[str, int]
    feedback: pd.DataFrame
    events: pd.DataFrame  # training events with the reviewed labels merged in
    reviewed_at: pd.Timestamp


@dataclass
class Loop:
    settings: Any
    system: Any
    champion_before: str
    served: pd.DataFrame  # the server's answers (transaction_id, score, threshold, ...)
    log: pd.DataFrame  # the prediction log the server wrote
    truth: pd.DataFrame  # generator's transactions, history + live
    round: Round
    run: Any  # the retrain's TrainingRun
    used: Any  # feedback_use of that run
    decision: Any  # PromotionDecision
    champion_after: str | None


def flywheel_round(loop_log: pd.DataFrame, truth: pd.DataFrame, queue_path: Path) -> Round:
    """Mine -> enqueue -> review -> feedback -> merge, through the modules' attributes so a
    test can break one step (monkeypatch) and run the rest for real."""
    hard = mining.mine_hard_examples(loop_log, k=K)
    queue = review_queue.ReviewQueue(queue_path)
    queue.enqueue(hard)
    # reviewed at the end of the served days (simulated time, as run_demo does): long before
    # most chargebacks, so a reviewed label is known earlier than it would have been
    reviewed_at = pd.Timestamp(truth["event_timestamp"].max())
    labeler.SimulatedReviewer(truth).review(queue, now=reviewed_at)
    feedback = review_queue.labelled_feedback(queue_path)
    events = labeler.merge_feedback(truth, feedback)
    return Round(queue_path, hard, queue.counts(), feedback, events, reviewed_at)


def round_problems(rnd: Round, served: pd.DataFrame, truth: pd.DataFrame) -> list[str]:
    """What is wrong with one turn of the loop, checked against independent figures."""
    problems: list[str] = []
    # mining: the K served predictions nearest their deployed threshold, by hand on the logit
    # scale from the server's own answers (not from the log the miner read)
    s = np.clip(served["score"].to_numpy(float), 1e-6, 1 - 1e-6)
    t = served["threshold"].to_numpy(float)
    dist = pd.Series(
        np.abs(np.log(s / (1 - s)) - np.log(t / (1 - t))), index=served["transaction_id"]
    )
    mined = set(rnd.hard["transaction_id"].astype(str))
    if len(mined) != K:
        problems.append(f"mining returned {len(mined)} hard examples, want {K}")
    elif not mined <= set(dist.index):
        problems.append(
            f"mined transactions that were never served: {sorted(mined - set(dist.index))[:3]}"
        )
    else:
        inside, outside = dist[dist.index.isin(mined)], dist[~dist.index.isin(mined)]
        if len(outside) and inside.max() > outside.min() + 1e-9:
            problems.append(
                f"mining missed harder examples: a mined one is {inside.max():.4f} logits from "
                f"its threshold, an unmined one {outside.min():.4f}"
            )
    # review queue: every mined transaction has ground truth, so all are labelled
    if rnd.counts != {"pending": 0, "labelled": len(mined), "skipped": 0}:
        problems.append(f"review queue counts {rnd.counts}, want all {len(mined)} labelled")
    # feedback: the reviewer's labels are the generator's, known at review time
    labels = truth.set_index(truth["transaction_id"].astype(str))["is_fraud"]
    fb = rnd.feedback.set_index(rnd.feedback["transaction_id"].astype(str))
    if set(fb.index) != mined or len(mined) == 0:
        problems.append(f"{len(fb)} feedback labels for {len(mined)} reviewed transactions")
    elif not (fb["is_fraud"].to_numpy() == labels.loc[fb.index].to_numpy()).all():
        problems.append("feedback labels differ from the ground truth")
    # merge: the reviewed rows carry their labels from the review time on
    applied = rnd.events.attrs.get("feedback_applied")
    if applied != len(mined) or len(mined) == 0:
        problems.append(f"merge_feedback applied {applied} labels, want {len(mined)}")
    else:
        merged = rnd.events.set_index(rnd.events["transaction_id"].astype(str)).loc[sorted(mined)]
        stamps = pd.to_datetime(merged["label_timestamp"], utc=True)
        if not (stamps <= rnd.reviewed_at).all():
            problems.append("reviewed transactions' labels are not known from the review time")
        if not (merged["is_fraud"].to_numpy() == labels.loc[sorted(mined)].to_numpy()).all():
            problems.append("merged labels differ from the reviewed ones")
    return problems


def _wait_for_log(path: Path, ids: set[str], timeout_s: float = 30.0) -> pd.DataFrame:
    from mlref.monitor.log import read_log

    deadline = time.monotonic() + timeout_s
    while True:  # the server writes the log off the request path
        frame = read_log(path)
        if set(frame["transaction_id"].astype(str)) >= ids or time.monotonic() > deadline:
            return frame
        time.sleep(0.2)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    from mlref.features.store import build_feature_store, training_frame
    from mlref.flywheel import feedback_use
    from mlref.pipeline import build_reference_system, burn_in, replay_live, running_server
    from mlref.promote import promote
    from mlref.registry import CHAMPION, Registry
    from mlref.settings import make_settings
    from mlref.train.pipeline import run_training

    workdir = tmp_path_factory.mktemp("flywheel") / "mlref"
    settings = make_settings(workdir, n_users=N_USERS, days=DAYS, seed=SEED)
    system = build_reference_system(settings, live_days=LIVE_DAYS)
    assert system.decision.promoted, system.decision.explain()
    registry = Registry(settings)
    champion_before = registry.version_of(CHAMPION)
    assert champion_before is not None

    with running_server(settings) as url:
        sample, responses = replay_live(system, url, SERVED, seed=SEED)
    served = pd.DataFrame([r for r in responses if r["status"] == 200])
    assert len(served) == len(sample), [r for r in responses if r["status"] != 200][:3]
    served["transaction_id"] = served["transaction_id"].astype(str)
    log = _wait_for_log(settings.prediction_log, set(served["transaction_id"]))

    truth = pd.concat([system.events, system.live], ignore_index=True)
    rnd = flywheel_round(log, truth, workdir / "flywheel" / "review_queue.sqlite")

    # retrain on history + live with the reviewed labels, in its own feature repo (the
    # served store stays as it is), registered in the same registry as the challenger
    retrain = settings.with_(workdir=workdir / "retrain")
    retrain.ensure_dirs()
    store = build_feature_store(retrain, rnd.events)
    frame = training_frame(store, rnd.events)
    run = run_training(settings, frame, **burn_in(frame))
    used = feedback_use(rnd.feedback, rnd.events, run.result.split, run.result.config.test_end)
    decision = promote(settings, frame)
    return Loop(
        settings=settings,
        system=system,
        champion_before=champion_before,
        served=served,
        log=log,
        truth=truth,
        round=rnd,
        run=run,
        used=used,
        decision=decision,
        champion_after=registry.version_of(CHAMPION),
    )


def test_the_server_wrote_the_log_the_loop_mines(loop: Loop) -> None:
    log = loop.log.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")
    served = loop.served.set_index("transaction_id")
    assert set(served.index) <= set(log.index)
    rows = log.loc[served.index]
    np.testing.assert_allclose(rows["score"], served["score"], rtol=1e-6)
    assert set(rows["model_version"]) == {loop.champion_before}


def test_one_turn_mines_reviews_and_merges_the_hardest_served_predictions(loop: Loop) -> None:
    assert round_problems(loop.round, loop.served, loop.truth) == []


def test_the_retrain_accounts_for_every_reviewed_label(loop: Loop) -> None:
    used = loop.used
    assert used.reviewed == K
    assert used.in_events == K
    # each reviewed label is either in this run's windows or said to be newer than them
    # (the live days are newer than the newest mature-label window: a later retrain uses them)
    assert 0 <= used.in_split <= K
    assert used.in_split + used.newer_than_windows <= K
    # recounted from the run's own windows: reviewed transactions at or after the test end
    events = loop.round.events
    reviewed = events["transaction_id"].astype(str).isin(loop.round.feedback["transaction_id"])
    test_end = loop.run.result.config.test_end
    assert used.newer_than_windows == int(
        (events.loc[reviewed, "event_timestamp"] >= test_end).sum()
    )
    split = loop.run.result.split
    in_windows = pd.concat([split.train, split.val, split.test])["transaction_id"].astype(str)
    assert used.in_split == int(
        events.loc[reviewed, "transaction_id"].astype(str).isin(in_windows).sum()
    )
    assert str(K) in used.explain()


def test_the_promotion_gates_decide_and_the_registry_follows(loop: Loop) -> None:
    decision = loop.decision
    assert loop.run.version is not None
    assert decision.challenger_version == loop.run.version != loop.champion_before
    assert decision.champion_version == loop.champion_before
    names = {g.name for g in decision.gates}
    assert {"no_worse", "model_parity", "time_split"} <= names, names
    assert decision.promoted == all(g.passed for g in decision.gates)
    want = loop.run.version if decision.promoted else loop.champion_before
    assert loop.champion_after == want, decision.explain()


def test_the_checks_fail_when_mining_finds_nothing(
    loop: Loop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = mining.mine_hard_examples
    monkeypatch.setattr(mining, "mine_hard_examples", lambda frame, k=100: real(frame).head(0))
    broken = flywheel_round(loop.log, loop.truth, tmp_path / "queue.sqlite")
    problems = round_problems(broken, loop.served, loop.truth)
    assert any("mining returned 0" in p for p in problems), problems


def test_the_checks_fail_when_reviewed_labels_are_dropped(
    loop: Loop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = review_queue.labelled_feedback
    monkeypatch.setattr(review_queue, "labelled_feedback", lambda path: real(path).head(0))
    broken = flywheel_round(loop.log, loop.truth, tmp_path / "queue.sqlite")
    problems = round_problems(broken, loop.served, loop.truth)
    assert any("feedback labels" in p for p in problems), problems
    assert any("merge_feedback applied 0" in p for p in problems), problems
