"""model_staleness (ML Test Score monitor-4, "models are not too stale"): the serving model's
age against the largest age its measured decay allows.

The age is ``now - trained_at``: ``trained_at`` is when the model's knowledge ends (the end
of its training data, as the registry or model card records it), ``now`` the time it is
serving at (the prediction log's last event, or the wall clock). The limit comes from
``staleness_impact`` (model-4) when its result is given: its
``details.max_retrain_interval_weeks`` is the age at which the metric lost reaches that
gate's ``max_loss`` at the upper end of the decay's interval, so an older model has lost
more than the project tolerates (with the decay's confidence). ``max_age_weeks`` is a
policy cap (e.g. a regulator's yearly review); the tighter of the two holds.

A model with no recorded training time, or no limit to hold it to (no decay figure and
no cap), is inconclusive, never a pass.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlgates.gates._common import fmt
from mlgates.result import GateInputError, GateResult

WEEK = pd.Timedelta(weeks=1)


def _timestamp(value: Any, what: str) -> pd.Timestamp:
    """``value`` as a UTC timestamp; a naive one is taken as UTC (what registries store)."""
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        raise GateInputError(
            f"{what} must be a timestamp (ISO string, datetime, pandas Timestamp), got the "
            f"number {value!r}: a bare number has no unit or epoch"
        )
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise GateInputError(f"{what} is not a timestamp: {value!r} ({exc})") from None
    if stamp is pd.NaT:
        raise GateInputError(f"{what} is missing (NaT)")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _decay_limit(staleness: GateResult | Mapping[str, Any]) -> tuple[float | None, str]:
    """(largest age in weeks, where it came from) out of a ``staleness_impact`` result (or
    its ``to_dict()``); ``None`` when that result holds no usable figure."""
    if isinstance(staleness, GateResult):
        name, details = staleness.name, staleness.details
    elif isinstance(staleness, Mapping):
        name, details = str(staleness.get("name", "")), staleness.get("details") or {}
    else:
        raise GateInputError(
            "staleness must be staleness_impact's GateResult (or its to_dict()), got "
            f"{type(staleness).__name__}"
        )
    if name != "staleness_impact":
        raise GateInputError(f"staleness must be a staleness_impact result, got {name!r}")
    raw = details.get("max_retrain_interval_weeks")
    if raw is None:
        return None, "staleness_impact measured no decay (too few windows)"
    try:
        weeks = float(raw)  # a JSON round trip stores inf as the string "inf"
    except (TypeError, ValueError):
        raise GateInputError(
            f"staleness details.max_retrain_interval_weeks is not a number: {raw!r}"
        ) from None
    if math.isnan(weeks) or weeks <= 0:
        raise GateInputError(f"staleness details.max_retrain_interval_weeks is {raw!r}")
    if math.isinf(weeks):
        return None, "staleness_impact found no decay within its interval (no age bound)"
    loss = details.get("max_loss")
    return weeks, (
        f"staleness_impact: the {details.get('metric', 'metric')} lost reaches "
        f"max_loss {fmt(float(loss)) if loss is not None else '?'} at {fmt(weeks)} weeks of "
        "age (upper end of the decay's interval)"
    )


def model_staleness(
    trained_at: Any,
    now: Any = None,
    staleness: GateResult | Mapping[str, Any] | None = None,
    max_age_weeks: float | None = None,
) -> GateResult:
    """Is the serving model younger than the largest age its measured decay allows?

    ``trained_at``: when the model's knowledge ends (the end of its training data, from the
    registry or model card; ``None`` when it was not recorded: inconclusive). ``now``: the
    time it serves at (the prediction log's last event time; default the wall clock, UTC).
    Timestamps may be ISO strings, datetimes or pandas Timestamps; naive ones are taken as
    UTC. ``staleness``: the ``staleness_impact`` result whose
    ``details.max_retrain_interval_weeks`` (the age at which the metric lost reaches its
    ``max_loss``) is the limit; ``max_age_weeks``: a policy cap; the smaller of the two
    holds, and with neither (or a decay that set no bound and no cap) the gate is
    inconclusive. Fail when the age is over the limit, pass otherwise. Measured: the age in
    weeks; threshold: the limit in weeks.
    """
    if max_age_weeks is not None:
        try:
            cap = float(max_age_weeks)
        except (TypeError, ValueError):
            raise GateInputError(f"max_age_weeks must be a number, got {max_age_weeks!r}") from None
        if not math.isfinite(cap) or cap <= 0:
            raise GateInputError(f"max_age_weeks must be finite and > 0, got {max_age_weeks!r}")
    serving_at = _timestamp(dt.datetime.now(dt.UTC) if now is None else now, "now")
    limits: dict[str, float] = {}
    sources: list[str] = []
    if staleness is not None:
        weeks, source = _decay_limit(staleness)
        sources.append(source)
        if weeks is not None:
            limits["decay"] = weeks
    if max_age_weeks is not None:
        limits["policy"] = float(max_age_weeks)
        sources.append(f"policy cap max_age_weeks {fmt(float(max_age_weeks))}")
    limit = min(limits.values()) if limits else None
    details: dict[str, Any] = {
        "trained_at": None,
        "now": serving_at.isoformat(),
        "age_weeks": None,
        "max_age_weeks": limit,
        "limits": limits,
        "limit_sources": sources,
    }

    def result(verdict: str, measured: float | None, message: str, hint: str) -> GateResult:
        return GateResult(
            name="model_staleness",
            verdict=verdict,  # type: ignore[arg-type]
            measured=measured,
            threshold=limit,
            message=message,
            hint=hint,
            details=details,
            unit=" weeks",
            direction="max",
            rubric=("monitor-4",),
        )

    if trained_at is None:
        return result(
            "inconclusive",
            None,
            "the serving model has no recorded training time: its age is unknown",
            "record when the model's training data ends (registry tag or model card) and "
            "pass it as trained_at",
        )
    trained = _timestamp(trained_at, "trained_at")
    age = (serving_at - trained) / WEEK
    if age < 0:
        raise GateInputError(
            f"trained_at {trained.isoformat()} is after now {serving_at.isoformat()}: a "
            "model cannot serve before it was trained (clock, time zone or wrong field?)"
        )
    details.update(trained_at=trained.isoformat(), age_weeks=age)
    head = f"model trained up to {trained.isoformat()} is {fmt(age)} weeks old at {serving_at.isoformat()}"
    if limit is None:
        why = "; ".join(sources) if sources else "no staleness_impact result and no max_age_weeks"
        return result(
            "inconclusive",
            age,
            f"{head}, but there is no age limit to hold it to: {why}",
            "pass staleness_impact's result (a measured decay over more windows) or set "
            "max_age_weeks",
        )
    held = "; ".join(sources)
    if age > limit:
        return result(
            "fail",
            age,
            f"the serving model is too stale: {head}, {fmt(age - limit)} weeks over the "
            f"limit {fmt(limit)} ({held})",
            "retrain on recent data and promote it through the gates; then retrain at "
            "least as often as the limit",
        )
    return result(
        "pass",
        age,
        f"{head}, within the limit {fmt(limit)} weeks ({held})",
        "",
    )
