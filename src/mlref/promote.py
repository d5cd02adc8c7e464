"""Gated promotion: champion moves to the challenger only when every gate passes.

``promote(settings, frame)`` scores champion and challenger with ONNX Runtime on the same
latest labelled window and runs the same gate functions CI runs:

- ``no_worse``: the challenger's metric is not worse than the champion's by more than the
  margin, with the given confidence (paired bootstrap); with no champion yet it passes with a
  note (first deploy);
- ``model_parity``: the challenger's ONNX export still reproduces its native XGBoost model on
  this window plus edge inputs;
- ``time_split``: the evaluation window lies after everything the challenger learned from
  (training and validation windows plus the embargo), so the comparison is not rigged in its
  favour.

The decision, with every gate's explanation, is returned, logged, and (when ``apply``)
written to the registry.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlref.decision import PromotionDecision
from mlref.registry import CHALLENGER, CHAMPION, Registry
from mlref.train.config import LABEL_COL, LABEL_TIME_COL, TIME_COL, mature_end

if TYPE_CHECKING:
    from mlgates.result import GateResult
    from mlref.registry import LoadedModel
    from mlref.settings import Settings

log = logging.getLogger(__name__)


def latest_labelled_window(
    frame: pd.DataFrame, *, days: float, label_delay: pd.Timedelta, as_of: Any = None
) -> pd.DataFrame:
    """The latest ``days`` whose labels have matured by ``as_of`` (default: the latest event).

    The window ends at ``mature_end(as_of, label_delay)``, exactly like the test window of
    ``TrainConfig.from_dates``; rows whose label was not known at ``as_of`` are left out.
    """
    missing = [c for c in (TIME_COL, LABEL_COL, LABEL_TIME_COL) if c not in frame.columns]
    if missing:
        raise ValueError(f"the evaluation frame lacks columns {missing}")
    if frame.empty:
        raise ValueError("the evaluation frame is empty: nothing to compare on")
    cutoff = pd.Timestamp(as_of) if as_of is not None else frame[TIME_COL].max()
    end = mature_end(cutoff, label_delay)
    start = end - pd.Timedelta(days=days)
    known = frame[LABEL_COL].notna() & (frame[LABEL_TIME_COL] <= cutoff)
    in_window = (frame[TIME_COL] >= start) & (frame[TIME_COL] < end)
    window = frame.loc[known & in_window]
    if window.empty:
        raise ValueError(
            f"no labelled rows between {start} and {end} (labels known by {cutoff}); the "
            "evaluation frame must reach the latest labelled days"
        )
    return window


def _card_window(card: dict[str, Any], window_days: float | None) -> tuple[float, pd.Timedelta]:
    config = card.get("training_config", {})
    delay = pd.Timedelta(seconds=float(config.get("label_delay", 0.0)))
    if window_days is not None:
        return float(window_days), delay
    if config.get("test_end") and config.get("test_start"):
        span = pd.Timestamp(config["test_end"]) - pd.Timestamp(config["test_start"])
        return span / pd.Timedelta(days=1), delay
    return 14.0, delay


def _scores(model: LoadedModel, window: pd.DataFrame, n_threads: int) -> np.ndarray:
    from mlref.export import OnnxScorer
    from mlref.train.fit import feature_matrix

    scorer = OnnxScorer(model.onnx_path, intra_op_threads=n_threads)
    return scorer.score(feature_matrix(window, model.card["feature_names"]))


def _training_windows(card: dict[str, Any]) -> pd.DataFrame:
    """What the model learned from (train + validation windows: early stopping and the
    threshold saw validation) as a two-row frame for the ``time_split`` gate: the first and
    the last event it saw."""
    config = card.get("training_config", {})
    windows = card.get("windows", {})
    first = windows.get("train", {}).get("first_event") or config.get("train_start")
    last = windows.get("val", {}).get("last_event")
    if last is None:
        last = pd.Timestamp(config["val_end"]) - pd.Timedelta(seconds=1)
    return pd.DataFrame({TIME_COL: pd.to_datetime([first, last], utc=True)})


def evaluation_gates(
    challenger: LoadedModel,
    champion: LoadedModel | None,
    window: pd.DataFrame,
    *,
    metric: str = "roc_auc",
    margin: float = 0.005,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    atol: float = 1e-5,
    n_threads: int = 1,
) -> tuple[GateResult, ...]:
    """Run the promotion gates; the one place promotion calls into ``mlgates.gates``."""
    import xgboost as xgb

    from mlgates.gates import no_worse, time_split
    from mlref.export import check_parity

    y = window[LABEL_COL].to_numpy(dtype=np.float64)
    challenger_scores = _scores(challenger, window, n_threads)
    champion_scores = _scores(champion, window, n_threads) if champion is not None else None
    regression = no_worse(
        y,
        champion_scores,
        challenger_scores,
        metric=metric,
        margin=margin,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    native = xgb.XGBClassifier()
    native.load_model(str(challenger.native_path))
    parity = check_parity(
        native,
        str(challenger.onnx_path),
        window,
        challenger.card["feature_names"],
        atol=atol,
        n_threads=n_threads,
    )
    embargo = pd.Timedelta(seconds=float(challenger.card["training_config"]["embargo"]))
    separation = time_split(
        _training_windows(challenger.card), window[[TIME_COL]], TIME_COL, embargo=embargo
    )
    return (regression, parity, separation)


def promote(
    settings: Settings,
    evaluation_frame: pd.DataFrame,
    *,
    registry: Registry | None = None,
    metric: str = "roc_auc",
    margin: float = 0.005,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    window_days: float | None = None,
    as_of: Any = None,
    atol: float = 1e-5,
    n_threads: int = 1,
    apply: bool = True,
    shadow_log: pd.DataFrame | None = None,
) -> PromotionDecision:
    """Decide whether the challenger replaces the champion; move ``champion`` if so.

    ``shadow_log`` (a prediction-log frame, ``mlref.monitor.read_log``): when it holds shadow
    scores of this challenger, the shadow gate (no-worse on the served rows whose labels have
    arrived, ``mlref.shadow.shadow_report``) must pass too: production traffic outranks the
    offline window. With ``as_of`` a shadow label counts only if it had arrived by then, the
    same cutoff as the offline window (a backtest sees no later labels); without it, by the
    last request in the log.

    The evaluation window is the latest ``window_days`` (default: as long as the challenger's
    test window) whose labels have matured (the challenger's label delay) by ``as_of``
    (default: the latest event in ``evaluation_frame``). ``apply=False`` decides without
    touching the registry.
    """
    reg = registry or Registry(settings)
    challenger = reg.load(CHALLENGER)
    champion_version = reg.version_of(CHAMPION)
    if champion_version == challenger.version:
        return PromotionDecision(
            promoted=False,
            challenger_version=challenger.version,
            champion_version=champion_version,
            gates=(),
            notes=(f"version {challenger.version} is already the champion; nothing to do",),
        )
    champion = reg.load(CHAMPION) if champion_version is not None else None
    days, label_delay = _card_window(challenger.card, window_days)
    window = latest_labelled_window(
        evaluation_frame, days=days, label_delay=label_delay, as_of=as_of
    )
    notes: list[str] = []
    if champion is None:
        notes.append(
            "first model: there is no champion to compare against; it is promoted on the "
            "remaining gates (export parity, evaluation window after its training data)"
        )
    log.info(
        "promotion: challenger %s vs champion %s on %d rows",
        challenger.version,
        champion_version,
        len(window),
    )
    gates = evaluation_gates(
        challenger,
        champion,
        window,
        metric=metric,
        margin=margin,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        atol=atol,
        n_threads=n_threads,
    )
    shadow_rows = _shadow_rows(shadow_log, challenger.version)
    if shadow_rows is not None:
        from mlref.shadow import shadow_report

        labels = evaluation_frame[[c for c in _LABEL_COLUMNS if c in evaluation_frame.columns]]
        report = shadow_report(
            shadow_rows,
            labels,
            as_of=None if as_of is None else pd.Timestamp(as_of),  # the offline window's cutoff
            metric=metric,
            margin=margin,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
        gates = (*gates, report.gate_result)
        notes.append(
            f"shadow: {report.n_rows} served rows scored by version {challenger.version} in "
            f"shadow, {report.n_labelled} labelled; decision agreement {report.agreement:.2%}"
        )
    decision = PromotionDecision(
        promoted=all(gate.passed for gate in gates),
        challenger_version=challenger.version,
        champion_version=champion_version,
        gates=gates,
        notes=tuple(notes),
        window={
            "start": window[TIME_COL].min().isoformat(),
            "end": window[TIME_COL].max().isoformat(),
            "rows": len(window),
            "positives": int(window[LABEL_COL].sum()),
            "metric": metric,
        },
    )
    if apply:
        if decision.promoted:
            reg.set_champion(decision)
        else:
            reg.mark_refused(decision)
    # one line as a status; the CLI and the demo print the full verdict once, on stdout
    log.info("%s", decision.explain().splitlines()[0])
    return decision


_LABEL_COLUMNS = ("transaction_id", "is_fraud", "label_timestamp")


def _shadow_rows(shadow_log: pd.DataFrame | None, version: str) -> pd.DataFrame | None:
    """The log rows this challenger scored in shadow, or None when there are none."""
    if shadow_log is None or shadow_log.empty or "shadow_version" not in shadow_log.columns:
        return None
    mine = shadow_log["shadow_version"].astype(str).eq(str(version))
    mine &= shadow_log["shadow_score"].notna()
    return shadow_log.loc[mine] if bool(mine.any()) else None
