"""The canary decision: ``mlgates.canary`` on the rollout's outcomes, and acting on it.

``evaluate`` judges a rollout as of a time: the business cost per transaction of each arm
(``mlref.canary.outcomes``) through the anytime-valid gate, with the error-rate and
tail-latency guardrails, plus the backstop ``max_loss`` (the canary's extra cost so far
against the champion's rate: the rollout ends if it is exceeded before the gate decides).
It may be called as often as outcomes mature; the gate's error stays at ``alpha`` whatever
the number of looks (docs/canary.md).

``act`` carries a decision out: promote (``champion`` moves to the canary's version through
``Registry.set_champion``, with the gate as the promotion's evidence, the previous champion
goes on the history so ``mlref rollback`` can undo it), roll back (all traffic back to the
champion, the version tagged refused) or stop (no decision within ``max_samples``: keep the
champion). Every decision ends the rollout (the server stops routing on its next poll) and is
appended, with its evidence, to ``<workdir>/canary/decisions.jsonl``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlref.canary.outcomes import ArmOutcomes, arm_outcomes, read_counts, rollout_rows
from mlref.canary.state import (
    CANARY,
    Rollout,
    RolloutError,
    append_decision,
    now,
    read_rollout,
    write_rollout,
)

if TYPE_CHECKING:
    import pandas as pd

    from mlgates.result import GateResult
    from mlref.registry import Registry
    from mlref.settings import Settings

log = logging.getLogger(__name__)

Action = Literal["promote", "rollback", "stop", "continue"]


@dataclass(frozen=True)
class CanaryStatus:
    """A rollout judged as of a time: both arms, the gate, the backstop, the action."""

    rollout: Rollout
    arms: dict[str, ArmOutcomes]
    gate: GateResult
    excess_loss: float  # canary's labelled cost minus the champion's rate times its count
    action: Action
    reason: str

    def summary(self) -> str:
        r = self.rollout
        lines = [
            f"canary rollout {r.rollout_id} ({r.status}): version {r.canary_version} on "
            f"{r.share:.0%} of users vs champion {r.champion_version}, since {r.started_at}",
            f"  {'arm':<9} {'requests':>8} {'labelled':>8} {'cost/txn':>9} "
            f"{'p99 ms':>8} {'errors':>7}",
        ]
        for arm in self.arms.values():
            lines.append(
                f"  {arm.arm:<9} {arm.requests:>8} {arm.labelled:>8} "
                f"{_num(arm.cost_per_transaction, 4):>9} {_num(arm.p99_ms, 1):>8} "
                f"{_num(100 * arm.error_rate, 2):>6}%"
            )
        lines.append(
            f"  extra cost run up by the canary so far: {self.excess_loss:,.2f} "
            f"(backstop max_loss {r.knobs.max_loss:,.2f})"
        )
        lines.append(f"decision: {self.action.upper()}: {self.reason}")
        lines.append(self.gate.explain())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout.to_dict(),
            "arms": {name: arm.to_dict() for name, arm in self.arms.items()},
            "excess_loss": round(self.excess_loss, 6),
            "action": self.action,
            "reason": self.reason,
            "gate": self.gate.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)


def _num(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "-"


def evaluate(rollout: Rollout, arms: dict[str, ArmOutcomes]) -> CanaryStatus:
    """Judge ``rollout`` on its arms' outcomes (``mlref.canary.outcomes.arm_outcomes``)."""
    from mlgates import canary

    k = rollout.knobs
    champion, cand = arms["champion"], arms["canary"]
    kwargs: dict[str, Any] = {}
    if champion.requests + champion.errors and cand.requests + cand.errors:
        kwargs.update(
            champion_errors=champion.error_indicators(),
            canary_errors=cand.error_indicators(),
            error_margin=k.error_margin,
        )
    if k.latency_threshold_ms is not None and champion.latencies_ms.size and cand.latencies_ms.size:
        kwargs.update(
            champion_latency_ms=champion.latencies_ms,
            canary_latency_ms=cand.latencies_ms,
            latency_threshold_ms=k.latency_threshold_ms,
            latency_margin=k.latency_margin,
        )
    if not champion.labelled or not cand.labelled:
        gate = _waiting(champion, cand, rollout)
        return CanaryStatus(rollout, arms, gate, 0.0, "continue", f"{gate.message}. {gate.hint}")
    gate = canary(
        champion.costs,
        cand.costs,
        bounds=(0.0, k.cost_cap),
        margin=k.margin,
        alpha=k.alpha,
        min_samples=k.min_samples,
        max_samples=k.max_samples,
        **kwargs,
    )
    excess = 0.0
    if cand.labelled and champion.labelled:
        excess = float(cand.costs.sum() - cand.labelled * champion.costs.mean())
    action: Action
    if gate.verdict == "pass":
        action, reason = "promote", gate.message
    elif gate.verdict == "fail":
        action, reason = "rollback", gate.message
    elif excess > k.max_loss:
        action = "rollback"
        reason = (
            f"backstop: the canary has cost {excess:,.2f} more than the champion's rate "
            f"would have (max_loss {k.max_loss:,.2f}) before the gate decided; {gate.message}"
        )
    elif gate.details.get("stop"):
        action, reason = "stop", gate.message
    else:
        action = "continue"
        reason = f"{gate.message}. {gate.hint}" if gate.hint else gate.message
    return CanaryStatus(rollout, arms, gate, excess, action, reason)


def _waiting(champion: ArmOutcomes, cand: ArmOutcomes, rollout: Rollout) -> GateResult:
    """Before an arm has a labelled outcome the gate has nothing to measure: continue."""
    from mlgates.result import GateResult

    return GateResult(
        name="canary",
        verdict="inconclusive",
        measured=None,
        threshold=rollout.knobs.margin,
        direction="max",
        message=(
            f"continue: {champion.labelled} champion / {cand.labelled} canary requests with a "
            f"matured label ({champion.requests} / {cand.requests} served); a decision needs "
            f"{rollout.knobs.min_samples} per arm"
        ),
        hint="keep the rollout running until labels arrive for both arms",
        rubric=("infra-6",),
    )


def status(
    settings: Settings,
    labels: pd.DataFrame | None,
    *,
    as_of: pd.Timestamp | None = None,
    rollout: Rollout | None = None,
) -> CanaryStatus:
    """The current rollout (or ``rollout``) judged on the prediction log and ``labels``."""
    current = rollout or read_rollout(settings.workdir)
    if current is None:
        raise RolloutError("no canary rollout in this workdir: start one (mlref canary start)")
    rows = rollout_rows(settings.prediction_log, current.rollout_id)
    counts = read_counts(settings.workdir, current.rollout_id)
    return evaluate(current, arm_outcomes(rows, labels, current.knobs, as_of=as_of, counts=counts))


def act(settings: Settings, judged: CanaryStatus, *, registry: Registry | None = None) -> str:
    """Carry out ``judged.action`` (nothing for ``continue`` or a rollout that has ended
    since it was judged); returns the rollout's status afterwards."""
    from mlref.decision import PromotionDecision
    from mlref.registry import Registry

    rollout = judged.rollout
    # the rollout as it is now: a decision already carried out (another look, another
    # process) is not carried out twice
    current = read_rollout(settings.workdir)
    if current is not None and current.rollout_id == rollout.rollout_id:
        rollout = current
    if not rollout.active or judged.action == "continue":
        return rollout.status
    reg = registry or Registry(settings)
    decision = PromotionDecision(
        promoted=judged.action == "promote",
        challenger_version=rollout.canary_version,
        champion_version=rollout.champion_version,
        gates=(judged.gate,),
        notes=(f"canary rollout {rollout.rollout_id}: {judged.reason}",),
        window={"rollout_id": rollout.rollout_id, "as_of": now()},
    )
    if judged.action == "promote":
        reg.set_champion(decision)  # refuses if the champion moved meanwhile
        ended = rollout.ended("promoted")
    else:
        reg.mark_refused(decision)
        ended = rollout.ended("rolled_back" if judged.action == "rollback" else "stopped")
    client = reg.client
    client.set_model_version_tag(reg.name, rollout.canary_version, "mlref.canary", ended.status)
    client.set_model_version_tag(
        reg.name, rollout.canary_version, "mlref.canary_rollout", rollout.rollout_id
    )
    if reg.version_of(CANARY) is not None:
        client.delete_registered_model_alias(reg.name, CANARY)
    write_rollout(settings.workdir, ended)  # the server routes everything to the champion
    append_decision(
        settings.workdir,
        {"at": now(), "event": ended.status, **judged.to_dict(), "rollout": ended.to_dict()},
    )
    log.info(
        "canary rollout %s: %s (version %s)",
        rollout.rollout_id,
        ended.status,
        rollout.canary_version,
    )
    return ended.status


def excess_loss_path(arms: dict[str, ArmOutcomes]) -> np.ndarray:
    """The canary's cumulative extra cost after each labelled canary row, against the
    champion's running rate (for the max-loss check of a replay, look by look)."""
    champion, cand = arms["champion"], arms["canary"]
    if not champion.labelled or not cand.labelled:
        return np.zeros(cand.labelled)
    return np.cumsum(cand.costs) - np.arange(1, cand.labelled + 1) * champion.costs.mean()
