"""The scoring hot path's decode and encode: pydantic-core + json (what mlref does) vs msgspec.

Measured before choosing (issue #18): per /predict request the server parses and validates
one ``Transaction`` body and encodes one ``Prediction`` dict; per /predict/batch call, 1000
of each. msgspec gets a ``Struct`` with the same types and bounds (strict ints and strings,
non-negative finite amount, a timezone-aware time; the event-time range is checked after,
as mlref's after-validator does). The figures are microseconds per call in one process and
their ratios; the saving per request is set against the server's CPU per request (from the
server benchmark) to judge whether it is worth a second schema.

    uv run python benchmarks/bench_hotpath.py
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perfutil import time_call

EVENT_MIN = datetime(1970, 1, 1, tzinfo=UTC)
EVENT_MAX = datetime(2200, 1, 1, tzinfo=UTC)


class MsgTransaction(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    transaction_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    user_id: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    amount: Annotated[float, msgspec.Meta(ge=0.0)]
    merchant_category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    event_timestamp: Annotated[datetime, msgspec.Meta(tz=True)]


class MsgBatch(msgspec.Struct, forbid_unknown_fields=True):
    transactions: Annotated[list[MsgTransaction], msgspec.Meta(min_length=1)]


def _msg_one(body: bytes, decoder: Any) -> MsgTransaction:
    txn = decoder.decode(body)
    if not EVENT_MIN <= txn.event_timestamp < EVENT_MAX:
        raise ValueError("event_timestamp out of range")
    return txn  # type: ignore[no-any-return]


def bench_hotpath(batch: int = 1000) -> dict[str, Any]:
    from mlref.serve.schemas import BatchRequest, Transaction

    txn = {
        "transaction_id": "t-000123",
        "user_id": 42,
        "amount": 37.5,
        "merchant_category": "grocery",
        "event_timestamp": "2026-03-01T12:34:56Z",
    }
    body = json.dumps(txn).encode()
    batch_body = json.dumps({"transactions": [txn] * batch}).encode()
    prediction = {
        "transaction_id": "t-000123",
        "score": 0.0123456789,
        "decision": False,
        "threshold": 0.5,
        "model_version": "model-8c9d8c0d0286",
        "unknown_user": False,
        "unknown_category": False,
    }
    many = {"predictions": [prediction] * batch}
    one_decoder = msgspec.json.Decoder(MsgTransaction)
    batch_decoder = msgspec.json.Decoder(MsgBatch)
    encoder = msgspec.json.Encoder()
    # the same answers, or the comparison would be meaningless
    a, b = Transaction.model_validate_json(body), _msg_one(body, one_decoder)
    assert (a.user_id, a.amount, a.event_timestamp) == (b.user_id, b.amount, b.event_timestamp)
    assert json.loads(encoder.encode(prediction)) == prediction
    for bad in (b'{"user_id": "42"}', body.replace(b"42", b"-1")):
        for parse in (lambda x: Transaction.model_validate_json(x), one_decoder.decode):
            try:
                parse(bad)
            except (ValueError, msgspec.ValidationError):
                continue
            raise AssertionError(f"{bad!r} was accepted")
    rows = {
        "decode_one": (
            time_call(lambda: Transaction.model_validate_json(body)),
            time_call(lambda: _msg_one(body, one_decoder)),
        ),
        f"decode_batch_{batch}": (
            time_call(lambda: BatchRequest.model_validate_json(batch_body)),
            time_call(lambda: batch_decoder.decode(batch_body)),
        ),
        "encode_one": (
            time_call(lambda: json.dumps(prediction, allow_nan=False).encode()),
            time_call(lambda: encoder.encode(prediction)),
        ),
        f"encode_batch_{batch}": (
            time_call(lambda: json.dumps(many, allow_nan=False).encode()),
            time_call(lambda: encoder.encode(many)),
        ),
    }
    out: dict[str, Any] = {"msgspec_version": msgspec.__version__, "rows": []}
    for name, (current, candidate) in rows.items():
        out["rows"].append(
            {
                "what": name,
                "mlref_us": current * 1e6,
                "msgspec_us": candidate * 1e6,
                "mlref_over_msgspec": current / candidate,
            }
        )
    one = [r for r in out["rows"] if r["what"] in ("decode_one", "encode_one")]
    out["saving_us_per_request"] = sum(r["mlref_us"] - r["msgspec_us"] for r in one)
    return out


def main() -> int:
    print(json.dumps(bench_hotpath(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
