"""Inject realistic defects into a raw frame, and say which reason validation must give.

Used by the unit tests and by the gate-proof tests ("corrupt rows in raw data -> the data
gate fails with counts per reason"). Each injected row gets exactly one defect, so its
expected reason is exactly one string from ``mlref.data.validate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlref.data.columns import (
    AMOUNT,
    EVENT_TIMESTAMP,
    LABEL,
    LABEL_TIMESTAMP,
    MERCHANT_CATEGORY,
    TRANSACTION_ID,
    USER_ID,
)
from mlref.data.validate import (
    ABOVE_MAX,
    BEFORE_EVENT,
    DUPLICATE,
    INVALID_TIMESTAMP,
    MAX_AMOUNT,
    MISSING,
    NAIVE_TIMESTAMP,
    NEGATIVE,
    NOT_A_NUMBER,
    NOT_BINARY,
    UNKNOWN_CATEGORY,
    reason,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

__all__ = ["DEFECTS", "corrupt"]

# defect name -> the reason validation must report for a row with this defect
DEFECTS: dict[str, str] = {
    "amount_not_a_number": reason(AMOUNT, NOT_A_NUMBER),
    "negative_amount": reason(AMOUNT, NEGATIVE),
    "amount_too_large": reason(AMOUNT, ABOVE_MAX),
    "duplicate_id": reason(TRANSACTION_ID, DUPLICATE),
    "naive_timestamp": reason(EVENT_TIMESTAMP, NAIVE_TIMESTAMP),
    "invalid_timestamp": reason(EVENT_TIMESTAMP, INVALID_TIMESTAMP),
    "unknown_category": reason(MERCHANT_CATEGORY, UNKNOWN_CATEGORY),
    "null_user_id": reason(USER_ID, MISSING),
    "label_not_binary": reason(LABEL, NOT_BINARY),
    "label_before_event": reason(LABEL_TIMESTAMP, BEFORE_EVENT),
}


def corrupt(
    df: pd.DataFrame,
    n: int,
    seed: int = 0,
    *,
    kinds: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Return a copy of ``df`` with ``n`` rows corrupted, and the expected reason per row.

    Defects cycle through ``kinds`` (default: every key of ``DEFECTS``, in random order),
    so each kind appears when ``n >= len(kinds)``. The reasons come back as a Series
    indexed by the corrupted rows' index labels. A duplicate id copies the id of an earlier,
    untouched row, so only the later copy is a defect. ``amount`` and ``event_timestamp``
    become object columns when they receive a string or a naive timestamp.
    """
    import pandas as pd

    kinds = list(DEFECTS) if kinds is None else list(kinds)
    unknown = [k for k in kinds if k not in DEFECTS]
    if unknown:
        raise ValueError(f"unknown defect kinds {unknown}; choose from {list(DEFECTS)}")
    if not kinds:
        raise ValueError("kinds must name at least one defect")
    if n < 0 or n > len(df) - ("duplicate_id" in kinds):
        raise ValueError(f"n must be in [0, {len(df) - 1}] for a frame of {len(df)} rows")
    rng = np.random.default_rng(seed)
    out = df.copy()
    order = [kinds[i] for i in rng.permutation(len(kinds))]
    assigned = [order[i % len(order)] for i in range(n)]
    # duplicates need an earlier untouched row: never pick position 0 for corruption
    positions = np.sort(1 + rng.choice(len(df) - 1, size=n, replace=False))
    untouched = np.setdiff1d(np.arange(len(df)), positions)

    for column, kind_set in (
        (AMOUNT, {"amount_not_a_number"}),
        (EVENT_TIMESTAMP, {"naive_timestamp", "invalid_timestamp"}),
        (USER_ID, {"null_user_id"}),
    ):
        if kind_set & set(assigned):
            out[column] = out[column].astype(object)

    col = {c: out.columns.get_loc(c) for c in out.columns}
    for pos, kind in zip(positions.tolist(), assigned, strict=True):
        if kind == "amount_not_a_number":
            out.iat[pos, col[AMOUNT]] = "abc"
        elif kind == "negative_amount":
            out.iat[pos, col[AMOUNT]] = -abs(float(df.iat[pos, col[AMOUNT]])) - 0.01
        elif kind == "amount_too_large":
            out.iat[pos, col[AMOUNT]] = MAX_AMOUNT * 2.5
        elif kind == "duplicate_id":
            earlier = untouched[untouched < pos]
            source = int(earlier[rng.integers(0, len(earlier))])
            out.iat[pos, col[TRANSACTION_ID]] = df.iat[source, col[TRANSACTION_ID]]
        elif kind == "naive_timestamp":
            out.iat[pos, col[EVENT_TIMESTAMP]] = pd.Timestamp(
                df.iat[pos, col[EVENT_TIMESTAMP]]
            ).tz_localize(None)
        elif kind == "invalid_timestamp":
            out.iat[pos, col[EVENT_TIMESTAMP]] = "yesterday-ish"
        elif kind == "unknown_category":
            out.iat[pos, col[MERCHANT_CATEGORY]] = "casino"
        elif kind == "null_user_id":
            out.iat[pos, col[USER_ID]] = None
        elif kind == "label_not_binary":
            out.iat[pos, col[LABEL]] = 2
        elif kind == "label_before_event":
            event = pd.Timestamp(df.iat[pos, col[EVENT_TIMESTAMP]])
            out.iat[pos, col[LABEL_TIMESTAMP]] = event - pd.Timedelta(hours=1)
    expected = pd.Series(
        [DEFECTS[k] for k in assigned], index=df.index[positions], name="reason", dtype=object
    )
    return out, expected
