"""/metrics on prometheus-client: our buckets against numpy, names and types as the dashboards
and gates read them, parsed by the library's own parser."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlref.serve.metrics import LATENCY_BUCKETS_S, ScrapeState, ServingMetrics, parse_metrics


def _state(**overrides: object) -> ScrapeState:
    values: dict[str, object] = {
        "queue_depth": 0,
        "in_flight": 0,
        "ready": True,
        "model_version": "v1",
        "shadow_version": None,
        "log_pending": 0,
    }
    values.update(overrides)
    return ScrapeState(**values)  # type: ignore[arg-type]


def test_latency_buckets_match_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.exponential(0.05, 500)
    values[:5] = [0.001, 0.01, 0.1, 1.0, 0.0025]  # exactly on bounds: le is inclusive
    metrics = ServingMetrics()
    for v in values:
        metrics.observe_request("/predict", 200, float(v))
    (family,) = [
        f
        for f in text_string_to_metric_families(metrics.render(_state()).decode())
        if f.name == "mlref_request_latency_seconds"
    ]
    assert family.type == "histogram"
    buckets = {float(s.labels["le"]): s.value for s in family.samples if s.name.endswith("_bucket")}
    assert list(buckets) == [*LATENCY_BUCKETS_S, float("inf")]
    for bound in LATENCY_BUCKETS_S:
        assert buckets[bound] == np.count_nonzero(values <= bound), bound
    assert buckets[float("inf")] == 500
    by_name = {s.name: s.value for s in family.samples}
    assert by_name["mlref_request_latency_seconds_count"] == 500
    assert by_name["mlref_request_latency_seconds_sum"] == pytest.approx(values.sum())


def test_names_types_and_created_as_scraped() -> None:
    metrics = ServingMetrics()
    metrics.observe_request("/predict", 200, 0.004)
    metrics.observe_batch(3, failed=False)
    metrics.observe_batch(5, failed=True)
    metrics.count_shed(2)
    text = metrics.render(_state(queue_depth=7, in_flight=2, model_version='v"1')).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    types = {name: f.type for name, f in families.items() if not name.endswith("_created")}
    # the text format 0.0.4 carries each library-owned counter's and histogram's start time
    # as a gauge of its own
    created = {name.removesuffix("_created") for name in families if name.endswith("_created")}
    assert created == {
        "mlref_requests",
        "mlref_request_latency_seconds",
        "mlref_batch_size",
        "mlref_batch_errors",
        "mlref_shed",
        "mlref_requests_shed",
        "mlref_shadow_errors",
        "mlref_unknown_category",
    }
    assert types == {
        "mlref_requests": "counter",
        "mlref_request_latency_seconds": "histogram",
        "mlref_batch_size": "histogram",
        "mlref_batch_errors": "counter",
        "mlref_shed": "counter",
        "mlref_requests_shed": "counter",
        "mlref_shadow_errors": "counter",
        "mlref_unknown_category": "counter",
        "mlref_queue_depth": "gauge",
        "mlref_in_flight": "gauge",
        "mlref_prediction_log_pending": "gauge",
        "mlref_prediction_log_rows_written": "counter",
        "mlref_prediction_log_rows_dropped": "counter",
        "mlref_prediction_log_rows_deleted": "counter",
        "mlref_ready": "gauge",
        "mlref_model_info": "gauge",
    }
    m = parse_metrics(text)
    assert m['mlref_requests_total{path="/predict",status="200"}'] == 1
    assert m['mlref_requests_created{path="/predict",status="200"}'] > 0
    assert m['mlref_batch_size_bucket{le="4.0"}'] == 1
    assert m['mlref_batch_size_bucket{le="8.0"}'] == 2
    assert m["mlref_batch_errors_total"] == 1
    assert m["mlref_shed_total"] == 2
    # by reason: the queue-full default, and every reason present from the start
    assert m['mlref_requests_shed_total{reason="queue_full"}'] == 2
    assert m['mlref_requests_shed_total{reason="deadline"}'] == 0
    assert m['mlref_requests_shed_total{reason="late"}'] == 0
    assert m['mlref_requests_shed_total{reason="in_flight"}'] == 0
    assert m["mlref_queue_depth"] == 7
    assert m["mlref_in_flight"] == 2
    assert m["mlref_ready"] == 1
    assert 'model_version="v\\"1"' in text  # escaped as the format requires
    assert m['mlref_model_info{model_version="v\\"1",shadow_version=""}'] == 1


def test_no_model_info_before_a_model_is_loaded() -> None:
    text = ServingMetrics().render(_state(ready=False, model_version=None)).decode()
    m = parse_metrics(text)
    assert m["mlref_ready"] == 0
    assert not any(k.startswith("mlref_model_info") for k in m)


def test_two_apps_in_one_process_keep_their_own_counts() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    first.count_shed(3)
    assert parse_metrics(second.render(_state()).decode())["mlref_shed_total"] == 0
    assert parse_metrics(first.render(_state()).decode())["mlref_shed_total"] == 3


def test_dependency_drift_is_exposed_once_checked() -> None:
    """monitor-1: nothing before the start-up check; then one series labelled with the
    verdict, valued by the score packages with a major version change."""
    metrics = ServingMetrics()
    assert not any(
        k.startswith("mlref_dependency_drift")
        for k in parse_metrics(metrics.render(_state()).decode())
    )
    metrics.set_dependency_drift("fail", 2)
    text = metrics.render(_state()).decode()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["mlref_dependency_drift"] == "gauge"
    found = {k: v for k, v in parse_metrics(text).items() if k.startswith("mlref_dependency")}
    assert found == {'mlref_dependency_drift{verdict="fail"}': 2.0}
