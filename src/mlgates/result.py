"""The result every gate returns: a measurement, a verdict and an explanation.

A gate never raises on a failed check; it raises ``GateInputError`` (a ``ValueError``)
only when its input is unusable (missing columns, empty frames, mismatched lengths).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "warn", "fail", "inconclusive"]
VERDICTS: tuple[str, ...] = ("pass", "warn", "fail", "inconclusive")


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
        """True for pass and warn; fail and inconclusive do not pass."""
        return self.verdict in ("pass", "warn")

    def explain(self) -> str:
        """A message for the person reading the CI log: what, by how much, what next."""
        head = f"[mlgates] {self.name}: {self.verdict.upper()}"
        figure = ""
        if self.measured is not None:
            figure = f" measured {_fmt(self.measured)}{self.unit}"
            if self.threshold is not None:
                op = {"max": "<=", "min": ">="}.get(self.direction, "vs")
                figure += f" (threshold {op} {_fmt(self.threshold)}{self.unit})"
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
