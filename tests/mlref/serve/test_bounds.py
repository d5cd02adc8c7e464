"""Out-of-range request values: 422 naming the field, never a failed batch for the others.

``user_id`` and ``event_timestamp`` become int64 arrays in the batch worker; before the
bounds, one ``user_id >= 2**63`` or a year-9999 timestamp raised ``OverflowError`` there and
every request of its batch got 500. The champion is a real ONNX model; the feature source is
the in-memory ``StateTableSource`` (see conftest).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from mlref.serve.app import create_app
from mlref.serve.batching import BatchFailed
from mlref.serve.features import (
    EVENT_NS_FIRST,
    EVENT_NS_LAST,
    conversion_errors,
    request_batch,
)
from mlref.serve.schemas import (
    EVENT_TIME_MAX,
    EVENT_TIME_MIN,
    USER_ID_MAX,
    Transaction,
    ValidationErrorResponse,
)
from mlref.serve.scoring import score

pytestmark = pytest.mark.anyio

TIME_RANGE_MESSAGE = (
    "event_timestamp: Input should be between 1970-01-01T00:00:00Z (inclusive) and "
    "2200-01-01T00:00:00Z (exclusive)"
)

OUT_OF_RANGE = [
    pytest.param(
        "user_id",
        2**63,
        "user_id: Input should be less than or equal to 9007199254740991",
        id="user_id-2**63",
    ),
    pytest.param(
        "user_id",
        2**64 + 5,
        "user_id: Input should be less than or equal to 9007199254740991",
        id="user_id-2**64",
    ),
    pytest.param(
        "user_id", -1, "user_id: Input should be greater than or equal to 0", id="user_id-neg"
    ),
    pytest.param("event_timestamp", "9999-12-31T23:59:59+00:00", TIME_RANGE_MESSAGE, id="y9999"),
    pytest.param("event_timestamp", "0001-01-01T00:00:00+00:00", TIME_RANGE_MESSAGE, id="y1"),
    pytest.param("event_timestamp", "1969-12-31T23:59:59+00:00", TIME_RANGE_MESSAGE, id="1969"),
    pytest.param("event_timestamp", "2200-01-01T00:00:00+00:00", TIME_RANGE_MESSAGE, id="2200"),
    pytest.param("event_timestamp", "1969-12-31T23:59:59+05:00", TIME_RANGE_MESSAGE, id="1969-tz"),
]


@pytest.mark.parametrize(("field", "value", "message"), OUT_OF_RANGE)
async def test_out_of_range_values_are_422_naming_the_field(
    settings: Any, champion: Any, features: Any, kit: Any, field: str, value: Any, message: str
) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        single = await client.post("/predict", json={**kit.txn(0), field: value})
        in_batch = await client.post(
            "/predict/batch", json={"transactions": [kit.txn(1), {**kit.txn(2), field: value}]}
        )
        good = await client.post("/predict", json=kit.txn(0))
    assert single.status_code == 422
    body = single.json()
    assert message in body["detail"]
    assert [e["field"] for e in body["errors"]] == [field]
    assert in_batch.status_code == 422
    assert f"transactions[1].{message}" in in_batch.json()["detail"]
    assert [e["field"] for e in in_batch.json()["errors"]] == [f"transactions[1].{field}"]
    assert good.status_code == 200


async def test_values_at_the_edges_of_the_ranges_are_scored(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    last_second = (EVENT_TIME_MAX - dt.timedelta(seconds=1)).isoformat()
    bodies = [
        {**kit.txn(0), "user_id": 0},
        {**kit.txn(1), "user_id": USER_ID_MAX},
        {**kit.txn(2), "event_timestamp": EVENT_TIME_MIN.isoformat()},
        {**kit.txn(3), "event_timestamp": last_second},
        {**kit.txn(4), "event_timestamp": "2199-12-31T23:59:59+05:00"},  # 18:59:59Z
        # the bound is on the year as written (the documented pattern), not the instant: in
        # 2199 locally, already 2200 in UTC, and int64 ns still hold it
        {**kit.txn(5), "event_timestamp": "2199-12-31T23:59:59-05:00"},
        {**kit.txn(6), "event_timestamp": "1970-01-01T00:00:00+05:00"},  # 1969 in UTC
    ]
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        singles = [await client.post("/predict", json=b) for b in bodies]
        batch = await client.post("/predict/batch", json={"transactions": bodies})
    assert [r.status_code for r in singles] == [200] * len(bodies)
    assert batch.status_code == 200
    assert batch.json()["predictions"] == [r.json() for r in singles]
    assert [r.json()["unknown_user"] for r in singles[:2]] == [True, True]  # ids 0, 2**53-1


async def test_an_out_of_range_request_leaves_its_batch_mates_200(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """The confirmed defect: 4 valid requests queued behind a running batch, plus requests
    with values int64 cannot hold. The bad ones are refused at once; the 4 are one batch."""
    model, gate = kit.gated(champion)
    app = create_app(
        settings, model=model, features=features, config=kit.serve_config(max_wait_ms=0)
    )
    async with kit.running_app(app) as client:
        gate.gate.clear()
        gate.calls.clear()
        blocker = asyncio.create_task(client.post("/predict", json=kit.txn(0)))
        await kit.wait_for(lambda: len(gate.calls) == 1, what="blocker running")
        good = [asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in range(1, 5)]
        bad_bodies = [
            {**kit.txn(5), "user_id": 2**63},
            {**kit.txn(6), "event_timestamp": "9999-12-31T23:59:59+00:00"},
            {**kit.txn(7), "event_timestamp": "0001-01-01T00:00:00+00:00"},
        ]
        bad = [asyncio.create_task(client.post("/predict", json=b)) for b in bad_bodies]
        bad_batch = asyncio.create_task(
            client.post("/predict/batch", json={"transactions": [kit.txn(8), bad_bodies[0]]})
        )
        # refused while the model is still blocked: nothing bad reaches the queue
        await kit.wait_for(lambda: all(t.done() for t in (*bad, bad_batch)), what="bad answered")
        await kit.wait_for(lambda: app.state.runtime.batcher.queue_depth == 4, what="queue")
        assert not gate.gate.is_set()
        gate.gate.set()
        good_responses = await asyncio.gather(blocker, *good)
        bad_responses = await asyncio.gather(*bad, bad_batch)
    assert [r.status_code for r in good_responses] == [200] * 5
    assert [r.status_code for r in bad_responses] == [422] * 4
    assert [r.json()["errors"][0]["field"] for r in bad_responses] == [
        "user_id",
        "event_timestamp",
        "event_timestamp",
        "transactions[1].user_id",
    ]
    assert gate.calls == [1, 4]  # the four valid requests scored together


def _unconvertible(i: int, kit: Any, **fields: Any) -> Transaction:
    """A Transaction that skipped validation (``model_construct``): what the schema's bounds
    would refuse, as if they had a hole."""
    good = Transaction.model_validate(kit.txn(i))
    return Transaction.model_construct(**{**good.model_dump(), **fields})


def test_conversion_errors_name_each_unconvertible_value(kit: Any) -> None:
    year_9999 = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
    rows = [
        Transaction.model_validate(kit.txn(0)),
        _unconvertible(1, kit, user_id=2**63),
        _unconvertible(2, kit, event_timestamp=year_9999),
        _unconvertible(3, kit, user_id=-(2**63) - 1, event_timestamp="not a time"),
    ]
    errors = conversion_errors(rows)
    assert [(i, f) for i, f, _ in errors] == [
        (1, "user_id"),
        (2, "event_timestamp"),
        (3, "user_id"),
        (3, "event_timestamp"),
    ]
    assert "int64" in errors[0][2]
    assert "1677-09-21 .. 2262-04-11" in errors[1][2]
    # the worker's conversion of the same rows fails, naming them (the hazard the check stops)
    with pytest.raises(ValueError, match=r"unconvertible: \[\(1, 'user_id'"):
        request_batch(rows)
    # clean rows: nothing to report, and they convert
    clean = [Transaction.model_validate(kit.txn(i)) for i in range(4)]
    assert conversion_errors(clean) == []
    assert request_batch(clean).user_id.tolist() == [t.user_id for t in clean]


def test_conversion_errors_agree_with_the_conversion_at_the_int64_edges(kit: Any) -> None:
    """The check compares, the worker converts: at each edge and one step past it, the check
    flags exactly the rows the conversion cannot take."""
    from mlref.features.definitions import datetime_ns

    us = dt.timedelta(microseconds=1)
    edges = [
        ("user_id", 2**63 - 1),
        ("user_id", -(2**63)),
        ("event_timestamp", EVENT_NS_FIRST),
        ("event_timestamp", EVENT_NS_LAST),
        ("event_timestamp", EVENT_NS_LAST.replace(tzinfo=None)),  # naive: read as UTC
    ]
    past = [
        ("user_id", 2**63),
        ("user_id", -(2**63) - 1),
        ("event_timestamp", EVENT_NS_FIRST - us),
        ("event_timestamp", EVENT_NS_LAST + us),
        ("event_timestamp", (EVENT_NS_LAST + us).replace(tzinfo=None)),
    ]
    for i, (field, value) in enumerate(edges):
        row = [_unconvertible(i, kit, **{field: value})]
        assert conversion_errors(row) == [], (field, value)
        request_batch(row)  # converts
    for i, (field, value) in enumerate(past):
        row = [_unconvertible(i, kit, **{field: value})]
        assert [f for _, f, _ in conversion_errors(row)] == [field], (field, value)
        with pytest.raises(ValueError, match="cannot convert the request fields"):
            request_batch(row)
    assert datetime_ns(EVENT_NS_FIRST) > -(2**63)  # above the int64-min "no time" sentinel


async def test_an_unconvertible_request_past_the_schema_fails_alone_not_its_batch(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """Defence in depth: a value the schema let through by mistake. Straight into the batch
    worker it fails every batch-mate; through ``scoring.score`` it is refused with 422
    before queueing and the batch-mates are scored."""
    model, gate = kit.gated(champion)
    app = create_app(
        settings, model=model, features=features, config=kit.serve_config(max_wait_ms=0)
    )
    bad = _unconvertible(9, kit, user_id=2**63)
    async with kit.running_app(app) as client:
        runtime = app.state.runtime
        gate.gate.clear()
        gate.calls.clear()

        # the hazard: queued next to good requests, it fails the whole batch
        blocker = asyncio.create_task(client.post("/predict", json=kit.txn(0)))
        await kit.wait_for(lambda: len(gate.calls) == 1, what="blocker running")
        mates = [
            asyncio.create_task(runtime.batcher.submit(Transaction.model_validate(kit.txn(i))))
            for i in (1, 2)
        ]
        doomed = asyncio.create_task(runtime.batcher.submit(bad))
        await kit.wait_for(lambda: runtime.batcher.queue_depth == 3, what="queue")
        gate.gate.set()
        assert (await blocker).status_code == 200
        raw = await asyncio.gather(*mates, doomed, return_exceptions=True)
        assert all(isinstance(r, BatchFailed) for r in raw)
        assert "unconvertible: [(2, 'user_id'" in str(raw[0])

        # the guard: refused on the loop, batch-mates scored
        gate.gate.clear()
        gate.calls.clear()
        blocker = asyncio.create_task(client.post("/predict", json=kit.txn(0)))
        await kit.wait_for(lambda: len(gate.calls) == 1, what="blocker running")
        good = [asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in (3, 4)]
        await kit.wait_for(lambda: runtime.batcher.queue_depth == 2, what="queue")
        with pytest.raises(RequestValidationError) as single:
            await score(runtime, [bad])
        good_txn = Transaction.model_validate(kit.txn(5))
        with pytest.raises(RequestValidationError) as in_batch:
            await score(runtime, [good_txn, bad], loc=("transactions",))
        assert runtime.batcher.queue_depth == 2  # neither call queued anything
        gate.gate.set()
        responses = await asyncio.gather(blocker, *good)
        handler = app.exception_handlers[RequestValidationError]
        answer = await handler(_json_request(), single.value)
    assert [r.status_code for r in responses] == [200] * 3
    assert gate.calls == [1, 2]
    assert [e["loc"] for e in single.value.errors()] == [("body", "user_id")]
    assert [e["loc"] for e in in_batch.value.errors()] == [("body", "transactions", 1, "user_id")]
    # answered like any other 422, in the documented body
    assert answer.status_code == 422
    body = ValidationErrorResponse.model_validate_json(answer.body)
    assert [e.field for e in body.errors] == ["user_id"]
    assert "int64" in body.detail


def _json_request() -> Any:
    from starlette.requests import Request

    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/predict",
            "headers": [(b"content-type", b"application/json")],
        }
    )


async def test_load_generator_bodies_valid_200_and_every_invalid_kind_422(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """The load generator's invalid share must stay 422 (not 400/500); its valid bodies,
    unknown users (ids from 10**9) included, are scored."""
    from mlref.load.traffic import INVALID_KINDS, Traffic, UserSampler

    traffic = Traffic(
        sampler=UserSampler.zipf(kit.n_users),
        event_time=dt.datetime(2026, 3, 1, 13, tzinfo=dt.UTC),
        rng=random.Random(0),
        unknown_share=0.5,
    )
    valid = [traffic.transaction() for _ in range(8)]
    invalid = [traffic.invalid(kind) for kind in INVALID_KINDS]
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        ok = [await client.post("/predict", json=b) for b in valid]
        batch = await client.post("/predict/batch", json=traffic.batch(5))
        refused = {kind: await client.post("/predict", json=b) for kind, b in invalid}
    assert [r.status_code for r in ok] == [200] * len(valid)
    assert any(r.json()["unknown_user"] for r in ok)
    assert batch.status_code == 200
    assert {kind: r.status_code for kind, r in refused.items()} == dict.fromkeys(INVALID_KINDS, 422)


def test_python_callers_may_pass_an_aware_datetime_in_range(kit: Any) -> None:
    """The replay and batch scoring build Transactions from frames (pandas Timestamps); JSON
    cannot carry such objects, so this is no hole in the HTTP contract."""
    import pandas as pd
    from pydantic import ValidationError

    body = kit.txn(0)
    stamp = pd.Timestamp("2026-05-02T23:52:56Z")
    assert Transaction.model_validate({**body, "event_timestamp": stamp}).event_timestamp == stamp
    for bad in (dt.datetime(2026, 5, 2), dt.datetime(2200, 1, 1, tzinfo=dt.UTC)):
        with pytest.raises(ValidationError):
            Transaction.model_validate({**body, "event_timestamp": bad})
