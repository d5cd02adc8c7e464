"""The design seed's cost model, with measured figures as inputs.

Two formulas, both computed by ``mlgates`` (one implementation for gates and reports):

* training sweep: ``hours = rows / rows_per_s * epochs * trials / 3600``, ``USD = hours *
  hourly_usd`` (the seed: 10M rows, 50k rows/s, 10 epochs, 20 trials at $3.50/h -> ~$39);
* inference: ``USD/request = (hourly_usd / 3600) * latency_s / batch_size`` (the seed's
  accelerator formula: a device always busy with full batches; $3.50/h, 20 ms, batch 16 ->
  ~$1.2 per million), next to the measured-throughput form ``USD/request = hourly_usd /
  (3600 * throughput_rps)``, which needs no assumption about how busy the machine is.

For a gradient-boosted model a "epoch" is one full fit (all trees over the training rows), so
``rows_per_s`` is training rows / fit seconds and ``epochs`` is 1 unless you refit.

``cost_report`` prints both with the figures the perf run measured. Nothing heavy is imported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# the seed's worked examples (an A100 at a spot price)
SEED_SWEEP = {"rows": 10_000_000, "rows_per_s": 50_000, "epochs": 10, "trials": 20}
SEED_ACCELERATOR = {"hourly_usd": 3.50, "latency_s": 0.020, "batch_size": 16}
# a round on-demand price for a 2-vCPU cloud instance (pass your own)
DEFAULT_CPU_HOURLY_USD = 0.10


@dataclass(frozen=True)
class SweepCost:
    rows: float
    rows_per_s: float
    epochs: int
    trials: int
    hourly_usd: float
    hours: float
    usd: float

    def formula(self) -> str:
        return (
            f"sweep hours = rows / rows_per_s * epochs * trials / 3600 = {self.rows:,.0f} / "
            f"{self.rows_per_s:,.0f} * {self.epochs} * {self.trials} / 3600 = "
            f"{self.hours:.3g} h; cost = {self.hours:.3g} h * ${self.hourly_usd:g}/h = "
            f"${self.usd:,.2f}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InferenceCost:
    hourly_usd: float
    throughput_rps: float | None
    latency_s: float | None
    batch_size: float | None
    usd_per_million_measured: float | None  # from throughput
    usd_per_million_formula: float | None  # the seed's latency / batch formula

    def formula(self) -> str:
        lines = []
        if self.throughput_rps is not None and self.usd_per_million_measured is not None:
            lines.append(
                f"per request = $/h / (3600 * throughput) = {self.hourly_usd:g} / (3600 * "
                f"{self.throughput_rps:,.1f}/s) = ${self.usd_per_million_measured:.4g} per million"
            )
        if self.latency_s is not None and self.usd_per_million_formula is not None:
            lines.append(
                f"per request = ($/h / 3600) * latency / batch = ({self.hourly_usd:g} / 3600) * "
                f"{self.latency_s * 1000:.3g} ms / {self.batch_size:.3g} = "
                f"${self.usd_per_million_formula:.4g} per million"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_sweep(
    rows: float, rows_per_s: float, epochs: int, trials: int, hourly_usd: float
) -> SweepCost:
    """Hours and USD of a hyper-parameter sweep (the seed's training formula)."""
    from mlgates import training_sweep_cost

    usd = training_sweep_cost(rows, rows_per_s, epochs, trials, hourly_usd)
    hours = usd / hourly_usd if hourly_usd > 0 else rows / rows_per_s * epochs * trials / 3600
    return SweepCost(
        float(rows), float(rows_per_s), int(epochs), int(trials), float(hourly_usd), hours, usd
    )


def inference_cost(
    hourly_usd: float,
    *,
    throughput_rps: float | None = None,
    latency_s: float | None = None,
    batch_size: float | None = None,
) -> InferenceCost:
    """USD per million requests by measured throughput and/or the seed's latency formula."""
    from mlgates import accelerator_cost_per_request, cost_per_request

    if throughput_rps is None and latency_s is None:
        raise ValueError("pass throughput_rps, or latency_s and batch_size (or both)")
    if (latency_s is None) != (batch_size is None):
        raise ValueError("pass latency_s and batch_size together for the seed's formula")
    measured = (
        cost_per_request(throughput_rps, hourly_usd) * 1e6 if throughput_rps is not None else None
    )
    formula = (
        accelerator_cost_per_request(hourly_usd, latency_s, batch_size) * 1e6  # type: ignore[arg-type]
        if latency_s is not None
        else None
    )
    return InferenceCost(
        float(hourly_usd),
        None if throughput_rps is None else float(throughput_rps),
        None if latency_s is None else float(latency_s),
        None if batch_size is None else float(batch_size),
        measured,
        formula,
    )


def cost_report(
    *,
    train_rows_per_s: float,
    serve_throughput_rps: float,
    serve_latency_s: float,
    serve_batch_size: float,
    hourly_usd: float = DEFAULT_CPU_HOURLY_USD,
    sweep_rows: float = SEED_SWEEP["rows"],
    epochs: int = 1,
    trials: int = SEED_SWEEP["trials"],
) -> dict[str, Any]:
    """Both formulas with measured inputs, plus the seed's own examples as a check."""
    sweep = training_sweep(sweep_rows, train_rows_per_s, epochs, trials, hourly_usd)
    serving = inference_cost(
        hourly_usd,
        throughput_rps=serve_throughput_rps,
        latency_s=serve_latency_s,
        batch_size=serve_batch_size,
    )
    seed_sweep = training_sweep(**SEED_SWEEP, hourly_usd=SEED_ACCELERATOR["hourly_usd"])
    seed_serving = inference_cost(
        SEED_ACCELERATOR["hourly_usd"],
        latency_s=SEED_ACCELERATOR["latency_s"],
        batch_size=SEED_ACCELERATOR["batch_size"],
    )
    text = "\n".join(
        [
            "training sweep (measured XGBoost fit rate on this CPU):",
            "  " + sweep.formula(),
            "inference (measured server throughput, latency and mean batch):",
            *("  " + line for line in serving.formula().splitlines()),
            "the seed's examples (A100 spot):",
            "  " + seed_sweep.formula(),
            "  " + seed_serving.formula(),
        ]
    )
    return {
        "training_sweep": sweep.to_dict(),
        "inference": serving.to_dict(),
        "seed_training_sweep": seed_sweep.to_dict(),
        "seed_inference": seed_serving.to_dict(),
        "text": text,
    }
