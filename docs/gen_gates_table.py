"""Write docs/gates.md, the gates reference, from the code it describes.

Config keys and defaults come from each gate's signature (the same
``mlgates.config.tunable_parameters`` the plugin validates ``[tool.mlgates.<gate>]``
against); ML Test Score ids come from the ``rubric=`` literals in each gate's source and
their titles from ``mlgates.rubric``. Only the prose (what a gate catches and measures)
is written here by hand, and every gate in ``mlgates.gates.GATES`` must have it.

    uv run python docs/gen_gates_table.py          # rewrite docs/gates.md
    uv run python docs/gen_gates_table.py --check  # exit 1 if docs/gates.md is out of date
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlgates import rubric
from mlgates.config import tunable_parameters
from mlgates.gates import GATES

OUT = Path(__file__).with_name("gates.md")
RUBRIC_ID = re.compile(r"\"((?:data|model|infra|monitor)-[1-7])\"")

# gate -> (what it catches, what it measures and when it fails)
PROSE: dict[str, tuple[str, str]] = {
    "psi_drift": (
        "input features whose distribution moved between a reference (training) and "
        "current (production) frame",
        "PSI per feature on reference-quantile bins (or frozen bins from JSON); categorical "
        "with an unseen bucket. Measured: largest PSI; warn > `warn`; fail > `fail` AND "
        "beyond sampling noise: the PSI's p-value under 'same distribution' (simulated null "
        "given the reference counts, same bins and rows; Holm over features) < 1 - "
        "`confidence`. Small samples inflate PSI by about (bins - 1) / n_eff; over `fail` "
        "within noise warns with the rows that would tell",
    ),
    "ks_drift": (
        "numeric features whose distribution moved (a second opinion to PSI)",
        "two-sample KS per feature, Holm-corrected p-values; fails when p < `alpha` and "
        "D >= `min_statistic`. Measured: largest D",
    ),
    "prediction_drift": (
        "the model's score distribution or mean score moving in production",
        "PSI of scores and relative mean shift (with `mean_floor` for rare positives), each "
        "failing only beyond noise (PSI: simulated null p < 1 - `confidence`; mean: z > "
        "`mean_z`), else warn. Measured: the binding one of the two",
    ),
    "time_split": (
        "random or overlapping train/val/test splits; a gap shorter than the label delay",
        "rows on the wrong side of each boundary or inside the `embargo` window; "
        "diagnoses a random split. Fails above 0",
    ),
    "point_in_time": (
        "features recorded after the event they are used to predict (look-ahead)",
        "rows with any feature timestamp later than the event time. Fails above 0",
    ),
    "entity_overlap": (
        "the same entity (user, patient) in train and test; rows copied across splits",
        "shared entities (and duplicated rows). Fails above `max_overlap`",
    ),
    "target_leak": (
        "a feature that is the label in disguise",
        "single-feature AUC, max(auc, 1 - auc) (categoricals: out-of-fold label rate). "
        "Measured: the strongest feature; fails at >= `max_auc`",
    ),
    "feature_parity": (
        "training/serving skew: the same feature computed differently offline and online",
        "keyed comparison with per-feature `atol`/`rtol` (`tolerances`), NaN == NaN, +-inf "
        "only equal to itself, "
        "missing keys. Measured: worst feature's mismatch rate; fails above "
        "`max_mismatch_rate`",
    ),
    "model_parity": (
        "an exported model (e.g. ONNX) scoring differently from the native one",
        "largest absolute score difference on the same rows; fails beyond `atol` + "
        "`rtol` x abs(reference)",
    ),
    "no_worse": (
        "a candidate model worse than the champion in production, overall or on a slice",
        "CI of candidate - champion on the same rows, signed so positive = candidate "
        "better: DeLong's paired test for `roc_auc` (hull of DeLong's Wald interval and its "
        "logit-scale counterpart, which holds up near AUC 1; Wald with a floored variance "
        "when a model separates the sample perfectly), the "
        "paired bootstrap (percentile CI) for other metrics; `details.test` says which. "
        "Measured: CI lower bound; pass > -`margin`, fail when the whole CI is below, else "
        "inconclusive; fewer than `min_class_rows` of a class or a degenerate variance never "
        "passes. Slices: the same test and guards per slice, one-sided p-values "
        "Holm-corrected (analytic, so any number of slices can fail); an undecided slice "
        "makes the gate inconclusive unless one fails. "
        "No champion (first deploy): a note, which does not block and earns no ML Test "
        "Score point",
    ),
    "latency_budget": (
        "tail latency over budget",
        "p50/p95/p99 of samples (ms); one-sided `confidence` bounds of p99 from order "
        "statistics (exact binomial, distribution-free). Pass when the upper bound is under "
        "`p99_ms`, fail when the lower bound is above; inconclusive when they straddle it, "
        "when the sample is too small for an upper bound (299 for p99 at 95%: says how many "
        "more) or under `min_samples`",
    ),
    "cost_budget": (
        "serving cost per million requests over budget",
        "hourly cost / (3600 x throughput). With `capacity_rps=(low, high)`, a measured "
        "capacity interval (held the p99 budget at low, broke it at high): measured at the "
        "pessimistic end cost(low); pass within `max_usd_per_million`, fail when even "
        "cost(high) is over, inconclusive when the budget lies inside. Or one measured "
        "`throughput_rps`, or the accelerator formula (cost/s x latency / batch); the larger "
        "is measured",
    ),
    "schema_gate": (
        "rows or columns breaking the data contract (types, ranges, nulls, uniqueness)",
        "a pandera schema validated lazily (all errors). Measured: failing rows; fails "
        "above 0. Needs pandera",
    ),
    "freshness": (
        "stale data: a feed or materialization job that stopped",
        "age of the newest timestamp at or before `as_of`; fails above `max_age`; warns "
        "on timestamps after `as_of` (clock skew), inconclusive when every row is after it",
    ),
    "features_beneficial": (
        "model inputs that add nothing (or harm) on a held-out window",
        "permutation importance per feature (metric drop when its column is permuted, mean "
        "of `n_repeats`), interval from a paired bootstrap over the window's rows (normal, "
        "bootstrap SE). Fail when a feature's importance is below `min_importance` with "
        "confidence (Holm over features) or the model never reads it; pass when every CI "
        "is above 0; else warn. Measured: failing features",
    ),
    "group_parity": (
        "a model whose errors fall unequally on the groups of a sensitive attribute",
        "equalised odds: per-group recall and false-positive rate of the decisions (counts, "
        "checked against fairlearn), Newcombe's hybrid score interval of each pairwise "
        "difference. Fail when a gap's interval (Bonferroni-adjusted) lies beyond its bound "
        "(`max_gap` for recall, `max_fpr_gap` for the false-positive rate); pass when every "
        "interval lies within its bound; else inconclusive (also when a group has fewer "
        "than `min_class_rows`). Measured: largest recall gap",
    ),
    "staleness_impact": (
        "a model that goes stale faster than it is retrained",
        "metric per window of model age (`window_weeks`), least-squares slope on the age, "
        "percentile bootstrap over the rows within each window. Loss = decay per week x "
        "`retrain_interval_weeks`; fail when its CI lies above `max_loss`, pass when below, "
        "else inconclusive (also below `min_windows`). Measured: the loss; details give the "
        "longest cadence the data support",
    ),
    "model_staleness": (
        "a serving model older than its measured decay allows (nobody retrained it)",
        "age = `now` (the log's last event, default the wall clock) - `trained_at` (the end "
        "of its training data, from the registry or card), in weeks. Limit: the smaller of "
        "staleness_impact's `max_retrain_interval_weeks` (the age at which the loss reaches "
        "its `max_loss` at the decay's upper bound) and `max_age_weeks`. Fail when older; "
        "inconclusive without a training time or a limit",
    ),
    "tuning_gap": (
        "a model whose hyperparameters a small search beats",
        "`budget` configurations drawn (seeded) from `space`, each trained and scored on "
        "the same held-out rows by the caller's callable, compared with the chosen one by "
        "no_worse's comparison. Fail when one beats it by more than `margin` with "
        "confidence (Holm over the budget), naming it; pass when every CI upper bound of "
        "found - chosen is below `margin`; else inconclusive. Measured: largest upper bound",
    ),
    "beats_baseline": (
        "a model that a simpler baseline (logistic regression, rules) matches or beats",
        "CI of model - baseline per baseline on the same rows by no_worse's comparison "
        "(DeLong for `roc_auc`, paired bootstrap otherwise). Measured: smallest CI lower bound; "
        "pass when every baseline's CI lies above `margin`; fail when any baseline is not "
        "beaten by `margin` (Holm-corrected one-sided p < (1 - `confidence`) / 2); else "
        "inconclusive with the rows that would settle it",
    ),
    "pii_scan": (
        "personal data past the privacy controls: in features, training sets, model "
        "artefacts, logs",
        "regex scan of text columns (vectorised) and of files/bytes: e-mail, card number "
        "(Luhn-checked), IBAN (mod-97), IPv4, phone; integer columns of 13-19 digits "
        "Luhn-checked; columns named in `pii_columns`; frames over `max_rows` on a seeded "
        "sample (said in the result). Measured: values found, masked in the report; fails "
        "above 0",
    ),
    "feature_policy": (
        "model inputs nobody declared or owns, and forbidden inputs (protected attributes, "
        "raw identifiers), also when re-encoded under another name",
        "each input against its declaration (`required` fields non-blank) and `forbidden` "
        "(by name, or as a word of its declared source). Measured: inputs in violation; "
        "fails above 0",
    ),
    "spec_in_version_control": (
        "a model trained from an uncommitted or since-changed specification (config, "
        "training code, feature definitions)",
        "the training record (commit, uncommitted spec files, spec hash) against the "
        "repository: the commit exists and its spec files hash to the recorded hash. "
        "Measured: failed checks; fails above 0; inconclusive without a repository",
    ),
    "code_coverage": (
        'feature code (`code="features"`, data-7) or model specification/training code '
        '(`code="model"`, infra-2) that no test runs',
        "coverage.py's line and branch coverage of the named modules (its JSON report) "
        "from a data file or a live `Coverage`; fails below `min_line` or `min_branch`, "
        "naming uncovered lines and partial branches; inconclusive without data or "
        "without branch data. Measured: line coverage",
    ),
    "feature_cost": (
        "features whose serving cost (online compute per request, storage per entity) is "
        "over budget or out of proportion to their importance",
        "per feature: compute and storage against `max_compute_ms` / `max_storage_bytes`, "
        "and cost share (the larger of compute and storage shares) over importance share "
        "against `max_cost_ratio` (a breach by a feature under both `min_material_*` "
        "floors warns). Measured: the largest ratio",
    ),
    "canary": (
        "a canary model that serves a share of traffic worse than the champion (business "
        "cost, outcomes), or breaking the error-rate / tail-latency guardrails",
        "anytime-valid interval of canary - champion per metric: the PrPl-EB confidence "
        "sequence (Waudby-Smith & Ramdas 2023) of each arm, alpha split over arms and "
        "metrics, so the gate may be called after every batch. Pass (promote) when it is "
        "at most `margin` worse and every guardrail within its margin; fail (rollback) when "
        "shown worse by more; else inconclusive (continue, with the samples that would "
        "settle it), under `min_samples`, or stop at `max_samples`. Latency: the share "
        "over `latency_threshold_ms` (p99 dual). See docs/canary.md",
    ),
    "offline_online_agreement": (
        "an offline evaluation that serving does not bear out (leakage in the offline "
        "window, training/serving skew, a test window unlike served traffic)",
        "interval of offline - online metric (positive = offline optimistic) on two "
        "independent samples: DeLong variances for `roc_auc`, independent bootstrap for the "
        "other metrics. Fails when the whole interval is beyond `tolerance` either way "
        "(naming the direction), passes within it, else inconclusive with the labelled "
        "served rows that would settle it; under `min_class_rows` of a class inconclusive",
    ),
    "numeric_stability": (
        "NaN, inf or out-of-range values reaching the model or leaving it; a dead "
        "(constant) or saturated model; requests served default features",
        "fails on any NaN/inf score or one outside `score_range`, any inf feature value, "
        "NaN in a feature not in `allow_missing`, a value outside `feature_ranges`, or all "
        "scores equal (at least `min_rows`); warns above `max_saturated_share` saturated "
        "scores or `max_default_share` defaulted requests. Measured: rows with a bad score "
        "or feature",
    ),
    "dependency_drift": (
        "a model running on library versions it was never validated with",
        "the environment recorded with the model (`capture_environment`: Python, package "
        "versions, lockfile SHA-256) against the current one. Fails on a major version "
        "change (or removal) of one of `score_packages` unless `revalidated_in` has the "
        "current versions; warns on any other change. Measured: blocking changes",
    ),
    "explanation_consistency": (
        "an explanation of a prediction that describes another model, other feature values "
        "or another output than the one served",
        "per row, sum of the per-feature contributions + bias (last column when `bias` is "
        "None: XGBoost's pred_contribs) against the served margin (`link='logit'`: the "
        "logit of the served probability). Measured: largest error; fails above "
        "`tolerance`, naming the worst rows and their largest contributions",
    ),
    "new_feature_drill": (
        "a new feature that needs hand code beyond its definition (a path that does not "
        "derive it, or derives it differently offline and online)",
        "runs the drill's steps in order (each on a temporary copy of the feature set with "
        "only the definition added); a step that raises, returns False or a failing gate "
        "result fails the drill, naming it. Measured: steps that needed more (0 to pass)",
    ),
}


def rubric_ids(fn: Callable[..., Any]) -> list[str]:
    """ML Test Score ids named in the gate's source, in rubric order."""
    found = set(RUBRIC_ID.findall(inspect.getsource(fn)))
    return [i for i in rubric.ITEMS if i in found]


def show_default(value: Any) -> str:
    return "None" if value is None else repr(value)


def config_keys(fn: Callable[..., Any]) -> str:
    params = tunable_parameters(fn)
    if not params:
        return "(none)"
    return "<br>".join(f"`{k}` = {show_default(p.default)}" for k, p in params.items())


def required_args(fn: Callable[..., Any]) -> str:
    sig = inspect.signature(fn)
    return ", ".join(
        f"`{n}`"
        for n, p in sig.parameters.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


def render() -> str:
    missing = sorted(set(GATES) - set(PROSE))
    extra = sorted(set(PROSE) - set(GATES))
    if missing or extra:
        raise SystemExit(f"gen_gates_table: prose missing for {missing}, stale for {extra}")
    lines = [
        "# Gates reference",
        "",
        "<!-- generated by docs/gen_gates_table.py from mlgates.gates; do not edit by hand -->",
        "",
        "Every gate is a plain function, `from mlgates import <gate>`, that returns a",
        "`GateResult` (`verdict` pass / warn / fail / inconclusive / note, `measured`, `threshold`,",
        "`details`, `explain()`); it never raises on a failed check, only `GateInputError` on",
        "unusable input. In pytest, `mlgates.run(<gate>, ...)` fills every config key the call",
        "leaves out from the `@pytest.mark.mlgate(...)` overrides, then",
        "`[tool.mlgates.<gate>]` in pyproject.toml, then the default below (the gate's",
        "signature). Required arguments (the data, and any threshold without a default) are",
        "passed in the call. A gate with nothing to judge (`no_worse` on a first deploy) says",
        "note: it does not block and earns no ML Test Score point.",
        "",
        "| gate | catches | measures / verdict | required arguments | config keys = default "
        "| ML Test Score |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, fn in GATES.items():
        catches, measures = PROSE[name]
        ids = ", ".join(rubric_ids(fn)) or "-"
        lines.append(
            f"| `{name}` | {catches} | {measures} | {required_args(fn)} | {config_keys(fn)} "
            f"| {ids} |"
        )
    lines += [
        "",
        "`no_worse` adds model-6 only when called with `slices`. A test can claim more items",
        'with `@pytest.mark.mlgate(..., rubric=("model-5",))`, and items done by hand go in',
        "`[tool.mlgates] rubric_manual = [...]` (half a point each).",
        "",
        "## ML Test Score items and the gates that cover them",
        "",
        "Breck et al., *The ML Test Score* (IEEE Big Data 2017). An item earns 1 point when a",
        "gate covering it passes in the run, 0.5 when its best verdict is warn or when it is",
        "listed as manual, 0 otherwise (fail, inconclusive, a gate test that errored or was",
        "skipped; a note claims no item); the score is the minimum over the four sections.",
        "",
        "| id | item | gates |",
        "| --- | --- | --- |",
    ]
    covering: dict[str, list[str]] = {}
    for name, fn in GATES.items():
        for item in rubric_ids(fn):
            covering.setdefault(item, []).append(f"`{name}`")
    for item_id, item in rubric.ITEMS.items():
        lines.append(
            f"| {item_id} | {item.title} | {', '.join(covering.get(item_id, [])) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run uv run python {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
