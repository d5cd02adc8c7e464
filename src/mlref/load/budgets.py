"""The four budgets a load run is held to, as mlgates gate results.

- ``latency_gate``: ``mlgates.latency_budget`` on the p99 of successful scoring requests
  (inconclusive when none succeeded);
- ``cost_gate``: ``mlgates.cost_budget``, USD per million predictions at the measured
  throughput (a fail when nothing succeeded: the cost is unbounded);
- ``error_gate``: server errors + shed (503) over the requests with a *valid* body;
- ``invalid_gate``: deliberately invalid bodies not answered 422, over the invalid bodies sent.

The last two are kept apart on purpose: invalid bodies answered 422 are successes, and counting
them in the error rate's denominator would dilute the server errors (600 invalid bodies would
turn 1.5% server errors into 0.94%).

Cost: ``hourly_usd`` (default ``DEFAULT_HOURLY_USD`` = $0.10/h, a round on-demand price for a
2-vCPU cloud instance such as the one this runs on; pass your own) divided by the measured
predictions per second. A transaction in a batch call is one prediction. The figure is only a
capacity figure when the test saturates the server: under a light load it overstates the cost
(``nox -s perf`` measures the throughput at the p99 budget).

The ``GateResult(...)`` keyword calls here have the gates' shape (``duplicates`` pairs them)
and follow their convention (``mlgates.gates._common``): each holds its own figures and words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlref.load.traffic import INVALID_NAME

if TYPE_CHECKING:
    import numpy as np

    from mlgates.result import GateResult

DEFAULT_HOURLY_USD = 0.10
DEFAULT_MAX_USD_PER_MILLION = 1.0
DEFAULT_MAX_ERROR_RATE = 0.01


def latency_gate(samples: np.ndarray, p99_budget_ms: float) -> GateResult:
    """``latency_budget`` on the successful requests' latencies (ms); inconclusive, with the
    reason, when there are none to judge."""
    from mlgates import latency_budget
    from mlgates.result import GateInputError, GateResult

    try:
        return latency_budget(samples, p99_ms=p99_budget_ms)
    except GateInputError as err:
        return GateResult(
            name="latency_budget",
            verdict="inconclusive",
            measured=None,
            threshold=p99_budget_ms,
            message=f"no usable latency samples: {err}",
            hint="no scoring request succeeded; read the server log",
            unit=" ms",
            direction="max",
            rubric=("monitor-6",),
        )


def cost_gate(
    predictions_per_s: float, hourly_usd: float, max_usd_per_million: float
) -> GateResult:
    """``cost_budget`` at the measured throughput; a fail when nothing was predicted (the cost
    per prediction is unbounded)."""
    from mlgates import cost_budget
    from mlgates.result import GateResult

    if predictions_per_s > 0:
        return cost_budget(predictions_per_s, hourly_usd, max_usd_per_million=max_usd_per_million)
    return GateResult(
        name="cost_budget",
        verdict="fail",
        measured=None,
        threshold=max_usd_per_million,
        message="no successful prediction: the cost per prediction is unbounded",
        hint="no scoring request succeeded; read the server log",
        unit=" USD/1M",
        direction="max",
        rubric=("monitor-6",),
    )


def error_gate(valid: int, max_error_rate: float, breakdown: dict[str, int]) -> GateResult:
    """Server errors and sheds over the requests with a valid body (invalid bodies are judged
    apart by ``invalid_gate``: their 422s must not dilute the server's errors)."""
    from mlgates.result import GateResult

    failed = sum(breakdown.values())
    rate = failed / valid if valid else 1.0
    parts = ", ".join(f"{v} {k}" for k, v in breakdown.items() if v) or "none"
    ok = valid > 0 and rate <= max_error_rate
    if valid == 0:
        message = "no valid request was recorded: the load generator sent no scoring request"
    else:
        message = (
            f"{rate:.2%} of {valid} valid requests failed ({parts}); budget {max_error_rate:.2%}"
        )
    return GateResult(
        name="error_rate",
        verdict="pass" if ok else "fail",
        measured=rate,
        threshold=max_error_rate,
        message=message,
        details={"failed": failed, "valid_requests": valid, **breakdown},
        hint=(
            "read the server log for 5xx causes; 503s mean the queue was full (raise max_queue "
            "or capacity, or lower the load); status 0 means no answer (timeout or refused "
            "connection)"
        ),
        unit="",
        direction="max",
        rubric=("monitor-6",),
    )


def invalid_gate(sent: int, unexpected: int, max_error_rate: float) -> GateResult:
    """Deliberately invalid bodies must be answered 422; the share answered otherwise (a
    validation hole when 2xx, a crash on bad input when 5xx) is held to the same budget."""
    from mlgates.result import GateResult

    rate = unexpected / sent if sent else 0.0
    if sent == 0:
        message = "no invalid body was sent (invalid_share 0): input validation not exercised"
    else:
        message = (
            f"{rate:.2%} of {sent} invalid bodies were not answered 422 ({unexpected}); "
            f"budget {max_error_rate:.2%}"
        )
    return GateResult(
        name="invalid_payloads",
        verdict="pass" if rate <= max_error_rate else "fail",
        measured=rate,
        threshold=max_error_rate,
        message=message,
        details={"invalid_sent": sent, "invalid_not_422": unexpected},
        hint=(
            "an invalid body answered 2xx is a validation hole (the schema accepts it); one "
            "answered 5xx crashed the server on bad input; see the statuses of "
            f"by_name[{INVALID_NAME!r}] in the summary"
        ),
        unit="",
        direction="max",
        rubric=("monitor-2",),
    )
