"""Leakage gates: time-ordered splits, point-in-time features, shared entities, label leaks.

All four protect the same thing: offline metrics that predict online ones. A random split
of temporal data, a feature computed with information from after the event, the same
customer in train and test, or a column derived from the label all make the offline figure
look better than production will ever be. None of them tests the ML Test Score item on
that (model-2, "Offline proxy metrics correlate with actual online impact metrics": that
takes online metrics, e.g. from an A/B experiment), so they do not claim it; only
``point_in_time`` automates an item (data-7: it tests the feature code's output for
look-ahead).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from mlgates.gates._common import (
    MAX_EXAMPLES,
    Times,
    as_frame,
    as_list,
    as_times,
    fmt,
    jsonable_value,
    key_columns,
    pct,
    require_columns,
    same_clock,
)
from mlgates.metrics import binary_labels, roc_auc
from mlgates.result import GateInputError, GateResult


def _examples(frame: pd.DataFrame, mask: np.ndarray, cols: list[str]) -> list[dict[str, Any]]:
    idx = np.flatnonzero(mask)[:MAX_EXAMPLES]
    sub = frame.iloc[idx]
    return [
        {"index": jsonable_value(i), **{c: jsonable_value(r[c]) for c in cols}}
        for i, r in zip(sub.index, sub.to_dict("records"), strict=True)
    ]


def time_split(
    train: pd.DataFrame,
    test: pd.DataFrame,
    time_col: str,
    val: pd.DataFrame | None = None,
    embargo: Any = None,
    random_split_share: float = 0.1,
) -> GateResult:
    """Splits must be strictly ordered in time: train max < (val min <= val max <) test min.

    ``embargo`` (a duration for datetime columns, a number for numeric ones; should be
    >= the label delay) is the minimum gap required at each boundary. Rows on the wrong
    side of a boundary are counted; when both sides overlap by at least
    ``random_split_share`` the split is called out as a random split. Measured is the
    number of rows on the wrong side of a boundary (or inside the embargo window).
    """
    frames = [("train", train)] + ([("val", val)] if val is not None else []) + [("test", test)]
    times: dict[str, Times] = {}
    for name, f in frames:
        frame = as_frame(f, name)
        require_columns(frame, [time_col], name)
        times[name] = as_times(frame[time_col], f"{name}[{time_col!r}]")
    first = times["train"]
    for name, _ in frames[1:]:
        same_clock(first, times[name], f"time_split train vs {name}")
    gap_needed = 0.0 if embargo is None else first.span(embargo, "embargo")
    if gap_needed < 0:
        raise GateInputError(f"embargo must be >= 0, got {embargo!r}")

    boundaries: list[dict[str, Any]] = []
    problems: list[str] = []
    total_bad = 0
    for (early_name, early_frame), (late_name, late_frame) in itertools.pairwise(frames):
        e, late = times[early_name].values, times[late_name].values
        e_max, l_min = e.max(), late.min()
        gap = l_min - e_max
        early_after = e >= l_min  # strictly-ordered means early rows end before late rows start
        late_before = late <= e_max
        in_embargo = (
            (e < l_min) & (e > l_min - gap_needed) if gap_needed > 0 else np.zeros_like(early_after)
        )
        n_after, n_before, n_emb = (
            int(early_after.sum()),
            int(late_before.sum()),
            int(in_embargo.sum()),
        )
        share_after, share_before = n_after / e.size, n_before / late.size
        bad = n_after + n_before + n_emb
        total_bad += bad
        shown = f"{early_name} ends {first.show(e_max)}, {late_name} starts {first.show(l_min)}"
        row: dict[str, Any] = {
            "boundary": f"{early_name} -> {late_name}",
            f"{early_name}_max": first.show(e_max),
            f"{late_name}_min": first.show(l_min),
            "gap": first.show_span(gap),
            "embargo": first.show_span(gap_needed),
            f"{early_name}_rows_at_or_after_{late_name}_start": n_after,
            f"{late_name}_rows_at_or_before_{early_name}_end": n_before,
            f"{early_name}_rows_inside_embargo": n_emb,
            "examples_early_side": _examples(early_frame, early_after | in_embargo, [time_col]),
            "examples_late_side": _examples(late_frame, late_before, [time_col]),
        }
        if share_after >= random_split_share and share_before >= random_split_share:
            row["diagnosis"] = "random split"
            problems.append(
                f"looks like a random split: {pct(share_after)} of {early_name} rows "
                f"({n_after}) are later than the earliest {late_name} row "
                f"({first.show(l_min)}), and {pct(share_before)} of {late_name} rows ({n_before}) "
                f"are earlier than the latest {early_name} row"
            )
        elif n_after or n_before:
            row["diagnosis"] = "overlap"
            problems.append(
                f"{early_name} and {late_name} overlap in time ({shown}): {n_after} "
                f"{early_name} row(s) at or after the {late_name} start and {n_before} "
                f"{late_name} row(s) at or before the {early_name} end"
            )
        elif n_emb:
            row["diagnosis"] = "embargo"
            problems.append(
                f"gap {early_name} -> {late_name} is {first.show_span(gap)}, shorter than the "
                f"embargo {first.show_span(gap_needed)} ({shown}): {n_emb} {early_name} row(s) "
                f"fall inside the embargo window, so their labels may not have been known "
                f"before the {late_name} period started"
            )
        else:
            row["diagnosis"] = "ok"
        boundaries.append(row)

    if problems:
        message = "; ".join(problems)
        verdict = "fail"
    else:
        parts = [f"{b['boundary']}: gap {b['gap']} (embargo {b['embargo']})" for b in boundaries]
        message = "splits strictly ordered in time: " + "; ".join(parts)
        verdict = "pass"
    return GateResult(
        name="time_split",
        verdict=verdict,  # type: ignore[arg-type]
        measured=float(total_bad),
        threshold=0.0,
        direction="max",
        unit=" rows",
        message=message,
        hint=(
            "split by time: pick cut-off timestamps, put everything before the first cut in "
            "train and leave a gap of at least the label delay (embargo) before val/test"
        ),
        details={"time_col": time_col, "boundaries": boundaries},
        rubric=(),  # no ML Test Score item: see the module docstring
    )


def point_in_time(
    frame: pd.DataFrame,
    event_time_col: str,
    feature_time_cols: str | Iterable[str],
) -> GateResult:
    """Every feature timestamp must be <= its row's event time (no peeking ahead).

    Missing feature timestamps (no feature value) are counted but not offending.
    Measured is the number of rows with at least one future-dated feature.
    """
    df = as_frame(frame, "frame")
    cols = as_list(feature_time_cols)
    if not cols:
        raise GateInputError("feature_time_cols is empty: name the feature timestamp columns")
    require_columns(df, [event_time_col, *cols], "frame")
    event = as_times(df[event_time_col], f"frame[{event_time_col!r}]")
    any_bad = np.zeros(df.shape[0], dtype=bool)
    per_col: dict[str, dict[str, Any]] = {}
    for col in cols:
        ft = as_times(df[col], f"frame[{col!r}]", allow_missing=True)
        same_clock(event, ft, f"point_in_time {event_time_col} vs {col}")
        missing = ft.missing if ft.missing is not None else np.zeros(df.shape[0], dtype=bool)
        lead = ft.values - event.values
        future = ~missing & (lead > 0)
        any_bad |= future
        n = int(future.sum())
        examples = []
        for i in np.flatnonzero(future)[:MAX_EXAMPLES]:
            examples.append(
                {
                    "index": jsonable_value(df.index[i]),
                    "event_time": event.show(event.values[i]),
                    "feature_time": event.show(ft.values[i]),
                    "ahead_by": event.show_span(lead[i]),
                }
            )
        per_col[col] = {
            "future_rows": n,
            "share": n / df.shape[0],
            "max_ahead": event.show_span(lead[future].max()) if n else None,
            "missing": int(missing.sum()),
            "examples": examples,
        }
    n_bad = int(any_bad.sum())
    bad_cols = sorted(
        (c for c in cols if per_col[c]["future_rows"]), key=lambda c: -per_col[c]["future_rows"]
    )
    if bad_cols:
        listed = "; ".join(
            f"{c}: {per_col[c]['future_rows']} row(s) ({pct(per_col[c]['share'])}), up to "
            f"{per_col[c]['max_ahead']} after the event"
            for c in bad_cols
        )
        first = per_col[bad_cols[0]]["examples"][0]
        message = (
            f"{n_bad} of {df.shape[0]} row(s) use feature values timestamped after the event "
            f"({event_time_col}): {listed}. First: index {first['index']} event "
            f"{first['event_time']} feature {first['feature_time']}"
        )
    else:
        message = (
            f"all {df.shape[0]} row(s): feature timestamps {', '.join(cols)} <= {event_time_col}"
        )
    return GateResult(
        name="point_in_time",
        verdict="fail" if n_bad else "pass",
        measured=float(n_bad),
        threshold=0.0,
        direction="max",
        unit=" rows",
        message=message,
        hint=(
            "join features as of the event time (point-in-time join, e.g. Feast "
            "get_historical_features with the event timestamp, or merge_asof direction="
            "'backward'); exclude the current event from its own aggregates"
        ),
        details={"event_time_col": event_time_col, "columns": per_col},
        # no data-7 claim: it checks a frame for look-ahead, not that feature code is tested
        # (code_coverage measures that); a test of a project's feature code claims it itself
    )


def _is_number(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s.dtype)) and not pd.api.types.is_bool_dtype(s.dtype)


def _comparable(a: pd.Series, b: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The same column of two frames in one dtype, so equal values compare and hash equal.

    Numbers: int64 when both sides are integers without missing values, else float64
    (``-0.0`` as ``0.0``, ``pd.NA`` as NaN), so train ``1`` matches test ``1.0``.
    Datetimes: nanoseconds (tz-aware ones in UTC). Anything else is left as it is.
    """
    if _is_number(a) and _is_number(b):
        ints = pd.api.types.is_integer_dtype(a.dtype) and pd.api.types.is_integer_dtype(b.dtype)
        if ints and a.dtype == b.dtype:
            return a, b
        unsigned = pd.api.types.is_unsigned_integer_dtype
        if ints and not (a.isna().any() or b.isna().any() or unsigned(a) or unsigned(b)):
            return a.astype(np.int64), b.astype(np.int64)

        def as_float(s: pd.Series) -> pd.Series:
            return pd.Series(s.to_numpy(np.float64, na_value=np.nan) + 0.0, index=s.index)

        return as_float(a), as_float(b)
    if pd.api.types.is_datetime64_any_dtype(a.dtype) and pd.api.types.is_datetime64_any_dtype(
        b.dtype
    ):
        aware_a, aware_b = (isinstance(s.dtype, pd.DatetimeTZDtype) for s in (a, b))
        if aware_a != aware_b:
            return a, b
        target = "datetime64[ns, UTC]" if aware_a else "datetime64[ns]"
        try:
            if aware_a:
                return a.dt.tz_convert("UTC").astype(target), b.dt.tz_convert("UTC").astype(target)
            return a.astype(target), b.astype(target)
        except (OverflowError, ValueError):  # out of the ns range: leave as they are
            return a, b
    return a, b


def _aligned(
    tr: pd.DataFrame, te: pd.DataFrame, cols: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cols`` of both frames, each column in a dtype shared by the two (``_comparable``)."""
    out_tr, out_te = {}, {}
    for c in cols:
        out_tr[c], out_te[c] = _comparable(tr[c], te[c])
    return pd.DataFrame(out_tr, index=tr.index), pd.DataFrame(out_te, index=te.index)


def entity_overlap(
    train: pd.DataFrame,
    test: pd.DataFrame,
    key: str | Iterable[str],
    max_overlap: int = 0,
    check_duplicates: bool = True,
) -> GateResult:
    """Entities (``key`` values) present in both splits, and rows duplicated across them.

    Fails when more than ``max_overlap`` entities are shared, or when any test row is an
    exact copy of a train row (compared on the shared columns). Values are compared, not
    dtypes: an int ``1`` in train equals a float ``1.0`` in test (numbers are brought to a
    common dtype, datetimes to nanoseconds). Rows with a missing key value are left out of
    the entity check (a missing id is not a shared entity) and counted in details and the
    message. Measured is the number of shared entities.
    """
    tr, te = as_frame(train, "train"), as_frame(test, "test")
    keys = key_columns(key, "key", "entity column(s)", train=tr, test=te)
    label = "/".join(keys)
    tr_nokey = tr[keys].isna().any(axis=1).to_numpy()
    te_nokey = te[keys].isna().any(axis=1).to_numpy()
    for name, frame, nokey in (("train", tr, tr_nokey), ("test", te, te_nokey)):
        if nokey.all():
            raise GateInputError(
                f"every {label} value in {name} is missing ({frame.shape[0]} rows): "
                "nothing to check entity overlap on; fill the key or pass the right column"
            )
    train_keys, test_keys = _aligned(tr.loc[~tr_nokey], te.loc[~te_nokey], keys)
    tk, sk = train_keys.drop_duplicates(), test_keys.drop_duplicates()
    try:
        shared = tk.merge(sk, on=keys, how="inner")
        test_rows_shared = int(test_keys.merge(shared, on=keys, how="inner").shape[0])
    except (ValueError, TypeError) as exc:
        kinds = ", ".join(f"{k}: train {tr[k].dtype} vs test {te[k].dtype}" for k in keys)
        raise GateInputError(
            f"cannot compare key {label} across train and test ({kinds}): {exc}; cast the "
            "key to the same type in both frames"
        ) from exc
    n_shared = int(shared.shape[0])
    details: dict[str, Any] = {
        "key": keys,
        "entities_train": int(tk.shape[0]),
        "entities_test": int(sk.shape[0]),
        "shared_entities": n_shared,
        "test_rows_with_shared_entity": test_rows_shared,
        "train_rows_missing_key": int(tr_nokey.sum()),
        "test_rows_missing_key": int(te_nokey.sum()),
        "examples": [
            {k: jsonable_value(v) for k, v in r.items()}
            for r in shared.head(MAX_EXAMPLES).to_dict("records")
        ],
    }
    n_dup = 0
    if check_duplicates:
        cols = [c for c in tr.columns if c in te.columns]
        a, b = _aligned(tr, te, cols)
        h_tr = pd.util.hash_pandas_object(a, index=False).to_numpy()
        h_te = pd.util.hash_pandas_object(b, index=False).to_numpy()
        dup = np.isin(h_te, h_tr)
        n_dup = int(dup.sum())
        details["duplicate_rows"] = n_dup
        details["duplicate_examples"] = [jsonable_value(i) for i in te.index[dup][:MAX_EXAMPLES]]
    problems = []
    if n_shared > max_overlap:
        ex = ", ".join(
            str(tuple(e.values())) if len(keys) > 1 else str(e[keys[0]])
            for e in details["examples"]
        )
        problems.append(
            f"{n_shared} {label} value(s) appear in both train and test "
            f"({pct(n_shared / sk.shape[0])} of test entities, {test_rows_shared} test rows; "
            f"allowed {max_overlap}), e.g. {ex}"
        )
    if n_dup:
        problems.append(
            f"{n_dup} test row(s) are exact copies of train rows (test index e.g. "
            f"{details['duplicate_examples']})"
        )
    message = "; ".join(problems) or (
        f"train and test share no {label} values ({tk.shape[0]} vs {sk.shape[0]} "
        "entities)" + (" and no duplicated rows" if check_duplicates else "")
    )
    if tr_nokey.any() or te_nokey.any():
        message += (
            f"; {int(tr_nokey.sum())} train and {int(te_nokey.sum())} test row(s) with a "
            f"missing {label} were left out of the entity check (a missing id is not a "
            "shared entity)"
        )
    return GateResult(
        name="entity_overlap",
        verdict="fail" if problems else "pass",
        measured=float(n_shared),
        threshold=float(max_overlap),
        direction="max",
        unit=" entities",
        message=message,
        hint=(
            "split by entity (group split on the key) so test measures unseen entities, and "
            "drop duplicated rows before splitting"
        ),
        details=details,
        rubric=(),  # no ML Test Score item: see the module docstring
    )


def _out_of_fold_encoding(values: pd.Series, y: np.ndarray, seed: int) -> np.ndarray:
    """Category -> label rate, each row encoded from the other half of the rows.

    In-sample encoding would give an ID-like column a perfect AUC by memorisation.
    """
    cats = values.astype(object).where(values.notna(), "__nan__").to_numpy()
    n = cats.size
    fold = np.empty(n, dtype=np.int8)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % 2
    enc = np.empty(n)
    yf = y.astype(np.float64)
    for f in (0, 1):
        fit, apply = fold != f, fold == f
        rates = pd.Series(yf[fit]).groupby(cats[fit]).mean()
        prior = float(yf[fit].mean()) if fit.any() else 0.5
        enc[apply] = pd.Series(cats[apply]).map(rates).fillna(prior).to_numpy(np.float64)
    return enc


def _leak_ranks(score: np.ndarray) -> np.ndarray:
    """Dense ranks in the order ``NaN < -inf < finite < +inf`` (AUC depends on order only).

    NaN get rank 0; every other distinct value (the infinities included) its 1-based rank,
    so NaN never ties with, or overtakes, an extreme value the way ``nanmin - 1`` can.
    """
    nan = np.isnan(score)
    ranks = np.zeros(score.size, dtype=np.float64)
    present = score[~nan]
    ranks[~nan] = np.unique(present, return_inverse=True)[1].reshape(-1) + 1.0
    return ranks


def target_leak(
    frame: pd.DataFrame,
    label: str,
    features: Iterable[str] | None = None,
    max_auc: float = 0.98,
    seed: int = 0,
) -> GateResult:
    """Flags a feature that separates the label almost perfectly on its own.

    Strength is ``max(auc, 1 - auc)`` of the feature as a score (numeric: the value,
    NaN ranked lowest; datetime: as a number; categorical: out-of-fold label rate of its
    category). Values are ranked as ``NaN < -inf < finite values < +inf`` (NaN one tied
    group of its own, however large or small the finite values are), so a label leaking
    through ``inf`` or a missing-value sentinel is scored like any other value. A feature at or above ``max_auc`` fails: it is probably derived from the
    label or from information only known after the event.
    """
    df = as_frame(frame, "frame")
    require_columns(df, [label], "frame")
    names = as_list(features) or [c for c in df.columns if c != label]
    require_columns(df, names, "frame")
    if label in names:
        raise GateInputError(f"the label {label!r} is listed among the features")
    y = binary_labels(df[label], f"frame[{label!r}]")
    if y.all() or not y.any():
        raise GateInputError(
            f"label {label!r} has a single class ({int(y.sum())} positives of {y.size}); "
            "AUC needs both"
        )
    rows: dict[str, dict[str, Any]] = {}
    for f in names:
        s = df[f]
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                score = as_times(s, f, allow_missing=True).values.astype(np.float64)
                score[s.isna().to_numpy()] = np.nan
                kind = "datetime"
            else:
                score = _out_of_fold_encoding(s, y, seed)
                kind = "categorical"
        else:
            score = s.to_numpy(dtype=np.float64, na_value=np.nan)
            kind = "numeric"
        nan = np.isnan(score)
        if nan.all():
            rows[f] = {"auc": None, "strength": None, "kind": kind, "note": "all missing"}
            continue
        auc = roc_auc(y, _leak_ranks(score))
        rows[f] = {
            "auc": auc,
            "strength": max(auc, 1.0 - auc),
            "direction": "higher means positive" if auc >= 0.5 else "lower means positive",
            "kind": kind,
            "missing": int(nan.sum()),
            "infinite": int(np.isinf(score).sum()),
        }
    scored = [f for f in names if rows[f]["strength"] is not None]
    if not scored:
        raise GateInputError("every feature is entirely missing: nothing to score")
    ranked = sorted(scored, key=lambda f: -rows[f]["strength"])
    measured = rows[ranked[0]]["strength"]
    leaks = [f for f in ranked if rows[f]["strength"] >= max_auc]
    if leaks:
        listed = "; ".join(
            f"{f} AUC {fmt(rows[f]['strength'])} ({rows[f]['direction']})" for f in leaks
        )
        message = (
            f"{len(leaks)} feature(s) alone separate {label!r} implausibly well (>= "
            f"{fmt(max_auc)}): {listed}; likely derived from the label or from information "
            "known only after the event"
        )
    else:
        message = (
            f"no single feature separates {label!r} implausibly well: strongest "
            f"{ranked[0]} AUC {fmt(measured)} (< {fmt(max_auc)})"
        )
    return GateResult(
        name="target_leak",
        verdict="fail" if leaks else "pass",
        measured=measured,
        threshold=max_auc,
        direction="max",
        message=message,
        hint=(
            "trace how the named feature is computed: drop it if it encodes the outcome "
            "(chargeback flags, post-event status), or compute it strictly as of event time"
        ),
        details={"label": label, "features": rows},
        rubric=(),  # no ML Test Score item: see the module docstring
    )
