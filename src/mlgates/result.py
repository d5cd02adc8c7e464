"""The result every gate returns: a measurement, a verdict and an explanation.

A gate never raises on a failed check; it raises ``GateInputError`` (a ``ValueError``)
only when its input is unusable (missing columns, empty frames, mismatched lengths).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "warn", "fail", "inconclusive", "note"]
VERDICTS: tuple[str, ...] = ("pass", "warn", "fail", "inconclusive", "note")
# "note": the gate had nothing to judge (e.g. a first deploy with no champion to compare
# against). It does not block (``passed`` is True) but it is not a pass: it earns no
# ML Test Score points and is shown as NOTE, so a run that tested nothing cannot look green.


class GateInputError(ValueError):
    """The gate could not measure anything: its input is unusable."""


def _jsonable(value: Any) -> Any:
    """Turn numpy/pandas scalars and containers into plain JSON types."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return _jsonable(tolist())
    isoformat = getattr(value, "isoformat", None)  # datetime, Timestamp
    if callable(isoformat):
        return isoformat()
    return str(value)


@dataclass(frozen=True)
class GateResult:
    """What a gate measured and what it concluded.

    ``measured`` and ``threshold`` are the headline figure and what it was held to
    (``direction`` says which side is good: "max" means measured must stay at or below
    the threshold, "min" at or above). ``details`` holds rows per feature / slice / key.
    ``message`` says what was found; ``hint`` says what to do next.
    """

    name: str
    verdict: Verdict
    measured: float | None
    threshold: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    unit: str = ""
    direction: Literal["max", "min", ""] = ""
    rubric: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def passed(self) -> bool:
        """True for pass, warn and note (nothing blocks); fail and inconclusive do not pass."""
        return self.verdict in ("pass", "warn", "note")

    def explain(self) -> str:
        """A message for the person reading the CI log: what, by how much, what next."""
        head = f"[mlgates] {self.name}: {self.verdict.upper()}"
        figure = ""
        if self.measured is not None:
            total = count_total(self.unit, self.details)
            figure = f" measured {format_value(self.measured, self.unit, total)}"
            if self.threshold is not None:
                op = {"max": "<=", "min": ">="}.get(self.direction, "vs")
                figure += f" (threshold {op} {format_value(self.threshold, self.unit)})"
        lines = [head + figure, self.message]
        if self.hint and self.verdict != "pass":
            lines.append(f"Next step: {self.hint}")
        return "\n".join(line for line in lines if line)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "passed": self.passed,
            "measured": _jsonable(self.measured),
            "threshold": _jsonable(self.threshold),
            "unit": self.unit,
            "direction": self.direction,
            "message": self.message,
            "hint": self.hint,
            "rubric": list(self.rubric),
            "details": _jsonable(self.details),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _fmt(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------- figures
# One place turns a figure and its unit into text, for explain(), the terminal table, the
# markdown summary and anyone else: durations in s/min/h/d, counts as counts (with the
# total when the result's details carry it), anything else as a compact number + unit.

_SECONDS_PER: dict[str, float] = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "ms": 1e-3}
COUNT_UNITS: frozenset[str] = frozenset(
    {"rows", "entities", "requests", "keys", "features", "users", "events", "labels"}
)
# where a gate's details keep the total a count is out of (schema_gate: rows checked;
# entity_overlap: entities in the test split)
_TOTAL_KEYS: dict[str, tuple[str, ...]] = {
    "rows": ("rows", "total_rows", "n_rows"),
    "entities": ("entities_test",),
}


def _sig(value: float) -> str:
    """Three significant digits, no exponent below a thousand, separators above."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_duration(seconds: float) -> str:
    """``45.2 s``, ``12.5 min``, ``26 h``, ``3.5 d``: the largest unit that keeps at least
    two of it (so 90 minutes stays ``90 min``, not ``1.5 h``)."""
    size = abs(seconds)
    if size < 120:
        return f"{_sig(seconds)} s"
    if size < 2 * 3600:
        return f"{_sig(seconds / 60)} min"
    if size < 2 * 86400:
        return f"{_sig(seconds / 3600)} h"
    return f"{_sig(seconds / 86400)} d"


def count_total(unit: str, details: Any) -> int | None:
    """The total a count in ``unit`` is out of, if the details say it (else None)."""
    keys = _TOTAL_KEYS.get(unit.strip().lower(), ())
    if not isinstance(details, dict):
        return None
    for key in (*keys, "total"):
        value = details.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def format_value(value: Any, unit: str = "", total: int | None = None) -> str:
    """A measured value or threshold as a person reads it, keyed on ``unit``."""
    if value is None:
        return "-"
    name = unit.strip().lower()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value}{unit}"  # "inf" / "nan" as stored in JSON, or a label
    if not math.isfinite(value):
        return f"{value}{unit}"
    if name in _SECONDS_PER:
        seconds = value * _SECONDS_PER[name]
        if name == "ms" and abs(value) < 1000:
            return f"{_fmt(value)} ms"  # latencies read best in ms below a second
        return format_duration(seconds)
    if name in COUNT_UNITS:
        text = f"{int(value):,}" if float(value).is_integer() else _fmt(value)
        if total is not None:
            text += f" of {total:,}"
        return f"{text} {name}"
    return f"{_fmt(value)}{unit}"
