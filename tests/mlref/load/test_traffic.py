"""The request bodies the load test sends: valid ones pass the server's schema, each invalid
kind breaks exactly the rule it names, and users follow the configured popularity."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from mlref.load.traffic import (
    INVALID_KINDS,
    UNKNOWN_USER_BASE,
    Traffic,
    UserSampler,
    write_users_file,
)
from mlref.serve.schemas import BatchRequest, Transaction


def _traffic(seed: int = 0, unknown: float = 0.05) -> Traffic:
    import datetime as dt

    return Traffic(
        sampler=UserSampler.zipf(50),
        event_time=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        rng=random.Random(seed),
        unknown_share=unknown,
    )


def test_valid_bodies_pass_the_server_schema() -> None:
    traffic = _traffic()
    for _ in range(200):
        Transaction.model_validate(traffic.transaction())
    batch = BatchRequest.model_validate(traffic.batch(7))
    assert len(batch.transactions) == 7
    assert len({t.transaction_id for t in batch.transactions}) == 7


@pytest.mark.parametrize(
    ("kind", "field", "error_type"),
    [
        ("negative_amount", "amount", "greater_than_equal"),
        ("missing_user_id", "user_id", "missing"),
        ("naive_timestamp", "event_timestamp", "timezone_aware"),
        ("user_id_as_string", "user_id", "int_type"),
        ("unknown_field", "card_number", "extra_forbidden"),
    ],
)
def test_each_invalid_kind_breaks_its_rule(kind: str, field: str, error_type: str) -> None:
    got, body = _traffic().invalid(kind)
    assert got == kind
    with pytest.raises(ValidationError) as info:
        Transaction.model_validate(body)
    errors = info.value.errors()
    assert [(e["loc"][0], e["type"]) for e in errors] == [(field, error_type)]


def test_invalid_kinds_are_all_covered_and_unknown_kind_is_refused() -> None:
    traffic = _traffic(seed=5)
    kinds = {traffic.invalid()[0] for _ in range(200)}
    assert kinds == set(INVALID_KINDS)
    with pytest.raises(ValueError, match="unknown invalid kind 'nope'"):
        traffic.invalid("nope")


def test_zipf_popularity_matches_the_law() -> None:
    n_users, draws, s = 50, 20_000, 1.1
    sampler = UserSampler.zipf(n_users, s=s)
    rng = random.Random(1)
    counts: dict[int, int] = {}
    for _ in range(draws):
        uid = sampler.draw(rng)
        counts[uid] = counts.get(uid, 0) + 1
    assert set(counts) <= set(range(1, n_users + 1))
    # expected frequency of rank r: r**-s / H(n, s); ranks follow the sampler's id order
    expected = np.array([r**-s for r in range(1, n_users + 1)])
    expected = expected / expected.sum() * draws
    observed = np.array([counts.get(uid, 0) for uid in sampler.user_ids])
    assert stats.chisquare(observed, expected).pvalue > 0.001
    assert observed[0] > 10 * observed[-1]  # a real skew, not uniform


def test_weights_from_a_users_file(tmp_path: Path) -> None:
    path = write_users_file(tmp_path / "users.csv", {7: 60, 3: 30, 11: 10})
    sampler = UserSampler.from_file(path)
    assert sampler.user_ids == [7, 3, 11]  # most active first
    rng = random.Random(2)
    draws = [sampler.draw(rng) for _ in range(10_000)]
    observed = [draws.count(u) for u in (7, 3, 11)]
    assert stats.chisquare(observed, [6000, 3000, 1000]).pvalue > 0.001


def test_bad_users_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("user_id,weight\n1,5\n2;7\n")
    with pytest.raises(ValueError, match=r"users.csv:3: expected 'user_id,weight', got '2;7'"):
        UserSampler.from_file(path)
    path.write_text("user_id,weight\n")
    with pytest.raises(ValueError, match="no user ids"):
        UserSampler.from_file(path)
    with pytest.raises(ValueError, match="weights must be finite"):
        UserSampler([1, 2], [1.0, -1.0])


def test_unknown_user_share_is_binomial() -> None:
    traffic = _traffic(seed=3, unknown=0.2)
    n = 5_000
    unknown = sum(traffic.user_id() >= UNKNOWN_USER_BASE for _ in range(n))
    assert stats.binomtest(unknown, n, 0.2).pvalue > 0.001


def test_same_seed_same_traffic() -> None:
    a, b = _traffic(seed=9), _traffic(seed=9)
    assert [a.transaction() for _ in range(20)] == [b.transaction() for _ in range(20)]
    assert _traffic(seed=10).transaction() != _traffic(seed=9).transaction()


def test_from_env_reads_the_runner_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = write_users_file(tmp_path / "u.csv", {42: 1})
    monkeypatch.setenv("MLREF_LOAD_USERS_FILE", str(users))
    monkeypatch.setenv("MLREF_LOAD_EVENT_TIME", "2026-02-01T10:00:00+00:00")
    monkeypatch.setenv("MLREF_LOAD_UNKNOWN_SHARE", "0")
    body = Traffic.from_env(stream=1).transaction()
    assert body["user_id"] == 42
    assert body["event_timestamp"].startswith("2026-02-01T1")
    monkeypatch.setenv("MLREF_LOAD_EVENT_TIME", "2026-02-01T10:00:00")
    with pytest.raises(ValueError, match="has no timezone"):
        Traffic.from_env()
