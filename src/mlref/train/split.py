"""Time-based train / validation / test split with an embargo. Random splits are refused.

Transactions are temporal: a user's features summarise their past, fraud comes in bursts
and labels arrive days late. A random split puts next week's transactions (and labels) into
training and scores the model on the past it has effectively seen, so its metrics are
optimistic and the comparison with the champion is meaningless. Only time splits exist here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlref.train.config import (
    LABEL_COL,
    LABEL_TIME_COL,
    REQUIRED_COLS,
    TIME_COL,
    TrainConfig,
    _require_columns,
)

if TYPE_CHECKING:
    from mlgates.result import GateResult

log = logging.getLogger(__name__)

RANDOM_SPLIT_REFUSED = (
    "random splits are refused: transactions are temporal data. A random split puts later "
    "transactions (and their labels) into training, so the model is scored on a past it has "
    "effectively seen: it leaks the future and its metrics are optimistic. Use "
    "time_split(frame, config) with dates from TrainConfig (TrainConfig.from_dates derives "
    "them from the data span)."
)


class SplitError(ValueError):
    """The frame cannot be split as asked without leaking the future or losing a window."""


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    check: GateResult | None = None

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in ("train", "val", "test"):
            part: pd.DataFrame = getattr(self, name)
            out[name] = {
                "rows": len(part),
                "positives": int(part[LABEL_COL].sum()),
                "first_event": part[TIME_COL].min().isoformat(),
                "last_event": part[TIME_COL].max().isoformat(),
            }
        return out


# share of a window's fraud rows whose labels may arrive too late before the split is refused
MAX_LATE_POSITIVE_SHARE = 0.05


def time_split(frame: pd.DataFrame, config: TrainConfig, *, method: str = "time") -> Split:
    """Cut ``frame`` into the config's half-open windows; rows in the embargo gaps are dropped.

    A row counts only if its label was known when its window was used: training labels by
    ``val_start``, validation labels by ``test_start``, test labels by ``test_end +
    label_delay``. Later labels did not exist yet; those rows are left out and logged. When
    more than ``MAX_LATE_POSITIVE_SHARE`` of a window's fraud would be left out, the label
    delay (and embargo) is too short for this data and the split is refused. The result is
    verified with the ``time_split`` gate (the same check CI runs).
    """
    if method != "time":
        raise SplitError(f"method={method!r}: {RANDOM_SPLIT_REFUSED}")
    _require_columns(frame, (*REQUIRED_COLS, *config.feature_names), "time_split")
    times = frame[TIME_COL]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise SplitError(
            f"time_split: column {TIME_COL!r} has dtype {times.dtype}; it must be timezone-aware "
            "UTC (datetime64[ns, UTC])"
        )
    labelled = frame[LABEL_COL].notna() & frame[LABEL_TIME_COL].notna()
    label_times = frame[LABEL_TIME_COL]
    in_train = times < config.train_end
    if config.train_start is not None:
        in_train &= times >= config.train_start
    in_test = times >= config.test_start
    if config.test_end is not None:
        in_test &= times < config.test_end
    windows = (
        (
            "train",
            in_train,
            config.val_start,
            "val_start",
            f"[{config.train_start or 'start'}, {config.train_end})",
        ),
        (
            "validation",
            (times >= config.val_start) & (times < config.val_end),
            config.test_start,
            "test_start",
            f"[{config.val_start}, {config.val_end})",
        ),
        (
            "test",
            in_test,
            None if config.test_end is None else config.test_end + config.label_delay,
            "test_end + label_delay",
            f"[{config.test_start}, {config.test_end or 'end'})",
        ),
    )
    span = f"data spans {times.min()} .. {times.max()}"
    parts: list[pd.DataFrame] = []
    for name, in_window, known_by, known_name, window in windows:
        rows = in_window & labelled
        if known_by is not None:
            late = rows & (label_times > known_by)
            n_late = int(late.sum())
            if n_late:
                late_pos = int(frame.loc[late, LABEL_COL].sum())
                all_pos = int(frame.loc[rows, LABEL_COL].sum())
                share = late_pos / all_pos if all_pos else 0.0
                if share > MAX_LATE_POSITIVE_SHARE:
                    delay = (label_times - times)[rows].max()
                    raise SplitError(
                        f"time_split: {late_pos} of {all_pos} fraud rows in the {name} window "
                        f"{window} ({share:.0%}) got their labels after {known_name}="
                        f"{known_by} (largest label delay in the data {delay}, configured "
                        f"label_delay {config.label_delay}, embargo {config.embargo}): those "
                        "labels did not exist yet, and leaving them out would bias the window. "
                        "Set label_delay and embargo to the real delay (TrainConfig.from_dates "
                        "measures it)."
                    )
                log.info(
                    "time_split: %d %s rows (%d fraud) labelled after %s are left out",
                    n_late,
                    name,
                    late_pos,
                    known_name,
                )
                rows &= ~late
        part = frame.loc[rows]
        if part.empty:
            raise SplitError(
                f"time_split: the {name} window {window} has no labelled rows ({span})"
            )
        classes = {int(v) for v in part[LABEL_COL].unique()}
        if classes != {0, 1}:
            raise SplitError(
                f"time_split: the {name} window {window} holds only class {sorted(classes)} "
                f"({len(part)} rows); widen the window or use more data"
            )
        parts.append(part)
    train, val, test = parts
    log.info(
        "time_split: train %d rows (%d fraud), validation %d (%d), test %d (%d); "
        "%d rows unlabelled, in embargo gaps or outside the windows",
        len(train),
        int(train[LABEL_COL].sum()),
        len(val),
        int(val[LABEL_COL].sum()),
        len(test),
        int(test[LABEL_COL].sum()),
        len(frame) - len(train) - len(val) - len(test),
    )
    result = check_split(train, val, test, embargo=config.embargo)
    return Split(train=train, val=val, test=test, check=result)


def random_split(*_args: Any, **_kwargs: Any) -> Split:
    """Refused on purpose; exists so the refusal has a name and a reason."""
    raise SplitError(RANDOM_SPLIT_REFUSED)


def check_split(
    train: pd.DataFrame,
    val: pd.DataFrame | None,
    test: pd.DataFrame,
    *,
    embargo: pd.Timedelta | None = None,
) -> GateResult:
    """Run the ``time_split`` gate on a split; raise ``SplitError`` with its explanation.

    Use it on any train/validation/test triple built elsewhere: windows that interleave
    (a validation or test event before a training event, or closer than ``embargo``) are
    refused.
    """
    from mlgates.gates import time_split as time_split_gate

    result = time_split_gate(train, test, TIME_COL, val=val, embargo=embargo)
    if not result.passed:
        raise SplitError(
            "the split interleaves in time, so training would see the future it is tested "
            f"on:\n{result.explain()}"
        )
    return result
