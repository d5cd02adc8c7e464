"""The ML Test Score rubric (Breck et al., 2017) and the score a gate run earns.

E. Breck, S. Cai, E. Nielsen, M. Salib, D. Sculley, "The ML Test Score: A Rubric for ML
Production Readiness and Technical Debt Reduction", IEEE Big Data 2017. Twenty-eight tests
in four sections; ids here are ``data-1`` .. ``monitor-7`` in the order of the paper's tables.

Scoring as in the paper: half a point for a test run by hand with its results documented,
a full point for a test that runs automatically; each section sums its items; the final
score is the minimum over the four sections (every section matters).

How a gate run maps onto that (our reading, stated so the number can be checked):

- an item covered by at least one automated gate whose verdict is ``pass`` earns 1;
- an item whose best covering verdict is ``warn`` earns 0.5: the check is automated but
  its finding is not resolved, so it is worth no more than a documented manual check;
- ``fail`` or ``inconclusive`` earn 0 (the test ran but the property is not established);
  so do ``error`` and ``skipped`` (a gate test that raised before its gate returned, or was
  skipped): its items count as covered but not passing, so the hole shows;
- ``note`` (the gate had nothing to judge, e.g. a first deploy with no champion) earns 0
  and covers nothing: it tested no item, whatever its test's marker claims;
- items listed under ``[tool.mlgates] rubric_manual = [...]`` earn 0.5 (documented manual
  practice, per the paper) unless a gate earned more;
- an item no result refers to and not listed as manual is *uncovered*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SECTIONS: tuple[str, ...] = ("data", "model", "infra", "monitor")

SECTION_TITLES: dict[str, str] = {
    "data": "Tests for features and data",
    "model": "Tests for model development",
    "infra": "Tests for ML infrastructure",
    "monitor": "Monitoring tests for ML",
}


@dataclass(frozen=True)
class RubricItem:
    id: str
    section: str
    number: int
    title: str


_TITLES: dict[str, tuple[str, ...]] = {
    "data": (
        "Feature expectations are captured in a schema",
        "All features are beneficial",
        "No feature's cost is too much",
        "Features adhere to meta-level requirements",
        "The data pipeline has appropriate privacy controls",
        "New features can be added quickly",
        "All input feature code is tested",
    ),
    "model": (
        "Every model specification undergoes a code review and is checked in to a repository",
        "Offline proxy metrics correlate with actual online impact metrics",
        "All hyperparameters have been tuned",
        "The impact of model staleness is known",
        "A simpler model is not better",
        "Model quality is sufficient on all important data slices",
        "The model has been tested for considerations of inclusion",
    ),
    "infra": (
        "Training is reproducible",
        "Model specification code is unit tested",
        "The full ML pipeline is integration tested",
        "Model quality is validated before attempting to serve it",
        "The model allows debugging by observing the step-by-step computation of training "
        "or inference on a single example",
        "Models are tested via a canary process before they enter production serving environments",
        "Models can be quickly and safely rolled back to a previous serving version",
    ),
    "monitor": (
        "Dependency changes result in notification",
        "Data invariants hold in training and serving inputs",
        "Training and serving features compute the same values",
        "Models are not too stale",
        "The model is numerically stable",
        "The model has not experienced a dramatic or slow-leak regression in training speed, "
        "serving latency, throughput, or RAM usage",
        "The model has not experienced a regression in prediction quality on served data",
    ),
}

ITEMS: dict[str, RubricItem] = {
    f"{section}-{n}": RubricItem(f"{section}-{n}", section, n, title)
    for section in SECTIONS
    for n, title in enumerate(_TITLES[section], start=1)
}

# Table V of the paper: what a final score means.
_INTERPRETATION: tuple[tuple[float, str], ...] = (
    (0.0, "More of a research project than a productionized system."),
    (
        1.0,
        "Not totally untested, but it is worth considering the possibility of serious holes "
        "in reliability.",
    ),
    (
        2.0,
        "There's been first pass at basic productionization, but additional investment may "
        "be needed.",
    ),
    (
        3.0,
        "Reasonably tested, but it's possible that more of those tests and procedures may be "
        "automated.",
    ),
    (
        5.0,
        "Strong levels of automated testing and monitoring, appropriate for mission-critical "
        "systems.",
    ),
    (float("inf"), "Exceptional levels of automated testing and monitoring."),
)

# The gates whose own results claim each item (the reviewed mapping, pinned by
# tests/mlgates/test_rubric_mapping.py). Items absent here are claimed only by a test's
# marker (``@pytest.mark.mlgate(..., rubric=(...))``): reproducible training (infra-1), an
# integration-tested pipeline (infra-3), a rollback drill (infra-7). Names, not imports: the
# plugin reads this at start-up, and mlgates.gates pulls numpy/pandas/scipy.
GATES_FOR: dict[str, tuple[str, ...]] = {
    "data-1": ("schema_gate",),
    "data-2": ("features_beneficial",),
    "data-3": ("feature_cost",),
    "data-4": ("feature_policy",),
    "data-5": ("pii_scan",),
    "data-6": ("new_feature_drill",),
    "data-7": ("code_coverage",),
    "model-1": ("spec_in_version_control",),
    "model-2": ("offline_online_agreement",),
    "model-3": ("tuning_gap",),
    "model-4": ("staleness_impact",),
    "model-5": ("beats_baseline",),
    "model-6": ("no_worse",),
    "model-7": ("group_parity",),
    "infra-2": ("code_coverage",),
    "infra-4": ("no_worse",),
    "infra-5": ("explanation_consistency",),
    "infra-6": ("canary",),
    "monitor-1": ("dependency_drift",),
    "monitor-2": ("psi_drift", "ks_drift", "schema_gate"),
    "monitor-3": ("feature_parity",),
    "monitor-4": ("model_staleness",),
    "monitor-5": ("numeric_stability",),
    "monitor-6": ("latency_budget", "cost_budget"),
    "monitor-7": ("prediction_drift",),
}


def why_uncovered(item: str) -> str:
    """Why no result covered ``item``, and what would cover it (for the run's summary)."""
    gates = GATES_FOR.get(item)
    if gates:
        names = ", ".join(gates)
        return (
            f"no result of {names} in this run (no test runs "
            f"{'it' if len(gates) == 1 else 'them'}, or it was deselected)"
        )
    return (
        "no gate claims it by itself: mark the test that automates it "
        f'@pytest.mark.mlgate(..., rubric=("{item}",)), or list it under rubric_manual'
    )


VERDICT_POINTS: dict[str, float] = {
    "pass": 1.0,
    "warn": 0.5,
    "fail": 0.0,
    "inconclusive": 0.0,
    "error": 0.0,
    "skipped": 0.0,
    "note": 0.0,
}
# Verdicts that test no rubric item at all: their ids neither earn nor cover.
NOT_A_TEST: frozenset[str] = frozenset({"note"})
MANUAL_POINTS = 0.5


def unknown_ids(ids: Iterable[str]) -> list[str]:
    """The ids in ``ids`` that are not rubric items (empty when all are valid)."""
    return [i for i in ids if i not in ITEMS]


def interpret(score: float) -> str:
    """The paper's reading of a final score."""
    for upper, text in _INTERPRETATION:
        if score <= upper:
            return text
    return _INTERPRETATION[-1][1]  # pragma: no cover - inf bounds every float


@dataclass(frozen=True)
class RubricScore:
    """Points per item and section, the final score and what no gate covered."""

    points: dict[str, float]
    sections: dict[str, float]
    final: float
    uncovered: tuple[str, ...]
    manual: tuple[str, ...] = ()
    covering: dict[str, list[str]] = field(default_factory=dict)

    @property
    def interpretation(self) -> str:
        return interpret(self.final)

    def to_dict(self) -> dict[str, Any]:
        return {
            "final": self.final,
            "interpretation": self.interpretation,
            "sections": dict(self.sections),
            "points": dict(self.points),
            "uncovered": list(self.uncovered),
            "manual": list(self.manual),
            "covering": {k: list(v) for k, v in self.covering.items()},
        }


def score(results: Iterable[Mapping[str, Any]], manual: Iterable[str] = ()) -> RubricScore:
    """Score a run from its recorded results (dicts with ``verdict``, ``rubric``, ``name``).

    Unknown rubric ids are ignored here; the plugin rejects them before the run.
    """
    points: dict[str, float] = {}
    covering: dict[str, list[str]] = {}
    for result in results:
        verdict = str(result.get("verdict"))
        if verdict in NOT_A_TEST:
            continue
        earned = VERDICT_POINTS.get(verdict, 0.0)
        for item in result.get("rubric") or ():
            if item not in ITEMS:
                continue
            points[item] = max(points.get(item, 0.0), earned)
            name = str(result.get("name", "?"))
            covering.setdefault(item, [])
            if name not in covering[item]:
                covering[item].append(name)
    manual_ids = tuple(i for i in dict.fromkeys(manual) if i in ITEMS)
    for item in manual_ids:
        points[item] = max(points.get(item, 0.0), MANUAL_POINTS)
    full = {item: points.get(item, 0.0) for item in ITEMS}
    sections = {
        section: sum(p for item, p in full.items() if ITEMS[item].section == section)
        for section in SECTIONS
    }
    uncovered = tuple(item for item in ITEMS if item not in covering and item not in manual_ids)
    return RubricScore(
        points=full,
        sections=sections,
        final=min(sections.values()),
        uncovered=uncovered,
        manual=manual_ids,
        covering=covering,
    )
