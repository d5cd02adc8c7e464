"""The outcome of a gated promotion: which challenger, which champion, every gate's result.

It lives below both ``mlref.promote`` (which decides) and ``mlref.registry`` (which moves
the ``champion`` alias only for a passing decision), so the registry can take a decision
without importing the module that makes one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlgates.result import GateResult


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    challenger_version: str
    champion_version: str | None  # the champion when the decision was made
    gates: tuple[GateResult, ...]
    notes: tuple[str, ...] = ()
    window: dict[str, Any] = field(default_factory=dict)

    @property
    def champion_after(self) -> str | None:
        return self.challenger_version if self.promoted else self.champion_version

    def explain(self) -> str:
        verdict = "PROMOTED" if self.promoted else "NOT PROMOTED"
        head = (
            f"challenger version {self.challenger_version} {verdict}; champion "
            f"{self.champion_version or '(none)'} -> {self.champion_after or '(none)'}"
        )
        lines = [head]
        if self.window:
            lines.append(
                f"evaluation window {self.window.get('start')} .. {self.window.get('end')}: "
                f"{self.window.get('rows')} rows, {self.window.get('positives')} fraud"
            )
        lines.extend(f"note: {note}" for note in self.notes)
        lines.extend(gate.explain() for gate in self.gates)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "challenger_version": self.challenger_version,
            "champion_version": self.champion_version,
            "champion_after": self.champion_after,
            "notes": list(self.notes),
            "window": dict(self.window),
            "gates": [gate.to_dict() for gate in self.gates],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)
