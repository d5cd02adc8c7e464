"""Shadow report: how the shadow (challenger) model compares with the champion on live traffic.

Over the log rows that carry a ``shadow_score``: how often the two would decide the same way,
how well their scores correlate (Pearson and Spearman), how far apart their score
distributions are (PSI, mlgates' one PSI, champion scores as the reference), and, on the
rows whose labels have arrived, the no-worse gate (mlgates' ``no_worse`` with
``champion=score``, ``candidate=shadow_score``). ``ShadowReport.gate_result`` is what
promotion checks before it moves ``champion`` when shadow data exists.

The shadow model's decision uses the threshold logged on each row (the one the champion was
deployed with): the shadow runs at the operating point it would inherit on promotion.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgates.result import GateResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowReport:
    """Champion vs shadow over one log window."""

    n_rows: int
    shadow_versions: tuple[str, ...]
    champion_versions: tuple[str, ...]
    agreement: float
    confusion: dict[str, int]
    pearson: float
    spearman: float
    score_psi: float
    n_labelled: int
    gate_result: GateResult
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.gate_result.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "shadow_versions": list(self.shadow_versions),
            "champion_versions": list(self.champion_versions),
            "agreement": _finite(self.agreement),
            "confusion": self.confusion,
            "pearson": _finite(self.pearson),
            "spearman": _finite(self.spearman),
            "score_psi": _finite(self.score_psi),
            "n_labelled": self.n_labelled,
            "gate": self.gate_result.to_dict(),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    def summary(self) -> str:
        lines = [
            f"shadow report over {self.n_rows} rows "
            f"(champion {', '.join(self.champion_versions)} vs shadow "
            f"{', '.join(self.shadow_versions)})",
            f"  decision agreement {self.agreement:.2%} "
            f"(both flag {self.confusion['both']}, champion only "
            f"{self.confusion['champion_only']}, shadow only {self.confusion['shadow_only']})",
            f"  score correlation pearson {self.pearson:.4f} spearman {self.spearman:.4f}",
            f"  score PSI (champion -> shadow) {self.score_psi:.4f}",
            f"  labelled rows {self.n_labelled}",
            self.gate_result.explain(),
            *self.notes,
        ]
        return "\n".join(lines)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant."""
    import numpy as np

    x = np.asarray(a, dtype="float64") - np.mean(a)
    y = np.asarray(b, dtype="float64") - np.mean(b)
    denom = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    return float(np.dot(x, y) / denom) if denom > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation: Pearson of average ranks (ties share their mean rank)."""
    import pandas as pd

    ra = pd.Series(a).rank(method="average").to_numpy()
    rb = pd.Series(b).rank(method="average").to_numpy()
    return pearson(ra, rb)


def _aware(cutoff: Any) -> pd.Timestamp:
    """The label cutoff as a UTC timestamp; a naive time is refused, not guessed."""
    import pandas as pd

    from mlgates.result import GateInputError

    stamp = pd.Timestamp(cutoff)
    if stamp.tzinfo is None:
        raise GateInputError(
            f"as_of={cutoff!r} has no time zone; label times are UTC, so pass an aware time "
            f"(e.g. '{stamp.isoformat()}+00:00')"
        )
    return stamp.tz_convert("UTC")


def shadow_report(
    log_frame: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    as_of: datetime | pd.Timestamp | None = None,
    metric: str = "roc_auc",
    margin: float = 0.005,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    psi_bins: int = 10,
    seed: int = 0,
) -> ShadowReport:
    """Compare champion and shadow scores over the rows of ``log_frame`` with a shadow score.

    ``labels`` (``transaction_id``, ``is_fraud``, optional ``label_timestamp``) are joined by
    transaction; a label counts only if it had arrived by ``as_of`` (default: the last
    request time in the window). Without labelled rows the gate is inconclusive: promotion
    must wait for labels rather than trust agreement alone. Raises ``GateInputError`` when
    the window has no shadow scores at all.
    """
    import numpy as np
    import pandas as pd

    from mlgates import no_worse
    from mlgates.result import GateInputError
    from mlgates.stats import psi, quantile_bins

    required = {"transaction_id", "score", "shadow_score", "decision", "threshold"}
    missing = sorted(required - set(log_frame.columns))
    if missing:
        raise GateInputError(
            f"log frame lacks columns {missing}; read it with mlref.monitor.read_log"
        )
    rows = log_frame[log_frame["shadow_score"].notna() & log_frame["score"].notna()]
    if rows.empty:
        raise GateInputError(
            "no shadow scores in this log window: serve with a shadow model first, or skip "
            "the shadow gate when no shadow model ran"
        )
    rows = rows.sort_values("ts") if "ts" in rows.columns else rows
    rows = rows.drop_duplicates("transaction_id", keep="last")
    champ = rows["score"].to_numpy("float64")
    shadow = rows["shadow_score"].to_numpy("float64")
    champ_dec = rows["decision"].astype(bool).to_numpy()
    shadow_dec = shadow >= rows["threshold"].to_numpy("float64")

    confusion = {
        "both": int((champ_dec & shadow_dec).sum()),
        "champion_only": int((champ_dec & ~shadow_dec).sum()),
        "shadow_only": int((~champ_dec & shadow_dec).sum()),
        "neither": int((~champ_dec & ~shadow_dec).sum()),
    }
    agreement = float(np.mean(champ_dec == shadow_dec))
    score_psi = float(psi(champ, shadow, bins=quantile_bins(champ, n_bins=psi_bins)))

    notes: list[str] = []
    y: np.ndarray | None = None
    labelled = pd.DataFrame()
    if labels is not None:
        need = sorted({"transaction_id", "is_fraud"} - set(labels.columns))
        if need:
            raise GateInputError(f"labels lack columns {need}")
        known = labels
        if "label_timestamp" in labels.columns:
            cutoff = as_of if as_of is not None else rows["ts"].max() if "ts" in rows else None
            if cutoff is not None:
                arrived = pd.to_datetime(labels["label_timestamp"], utc=True) <= _aware(cutoff)
                known = labels[arrived]
        known = known.dropna(subset=["is_fraud"]).drop_duplicates("transaction_id", keep="last")
        labelled = rows.merge(
            known[["transaction_id", "is_fraud"]], on="transaction_id", how="inner"
        )
        if len(labelled):
            y = labelled["is_fraud"].astype("int64").to_numpy()

    if y is None:
        gate = _waiting_for_labels(
            f"none of the {len(rows)} shadow rows has a label yet, so the shadow model cannot "
            "be shown to be no worse than the champion",
            margin,
        )
        notes.append("no labelled shadow rows: the no-worse gate did not run")
    elif int(y.min()) == int(y.max()):
        # a few labelled rows at a 1% fraud rate are often all legit: no metric can compare
        # two models on one class, so this is the same "wait for labels" as none at all
        kind = "fraud" if int(y[0]) == 1 else "legitimate"
        gate = _waiting_for_labels(
            f"all {len(y)} labelled shadow rows are {kind}: the shadow model cannot be "
            "compared with the champion on one class",
            margin,
        )
        notes.append(f"labelled shadow rows are all {kind}: the no-worse gate did not run")
    else:
        gate = no_worse(
            y,
            labelled["score"].to_numpy("float64"),
            labelled["shadow_score"].to_numpy("float64"),
            metric=metric,
            margin=margin,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
    report = ShadowReport(
        n_rows=len(rows),
        shadow_versions=tuple(sorted(rows["shadow_version"].dropna().astype(str).unique()))
        if "shadow_version" in rows
        else (),
        champion_versions=tuple(sorted(rows["model_version"].dropna().astype(str).unique()))
        if "model_version" in rows
        else (),
        agreement=agreement,
        confusion=confusion,
        pearson=pearson(champ, shadow),
        spearman=spearman(champ, shadow),
        score_psi=score_psi,
        n_labelled=0 if y is None else len(y),
        gate_result=gate,
        notes=tuple(notes),
    )
    logger.info(
        "shadow report: %d rows, agreement %.3f, gate %s",
        report.n_rows,
        report.agreement,
        gate.verdict,
    )
    return report


def _waiting_for_labels(message: str, margin: float) -> GateResult:
    """The shadow gate before labels can settle it: inconclusive, so promotion waits."""
    from mlgates.result import GateResult

    return GateResult(
        name="no_worse",
        verdict="inconclusive",
        measured=None,
        threshold=-margin,
        message=message,
        hint="wait until (more) labels arrive for the shadow window, or review some through "
        "the flywheel queue, then re-run the shadow report",
        direction="min",
    )
