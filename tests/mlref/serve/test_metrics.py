"""Hand-written Prometheus exposition: histogram counts against numpy, text shape."""

from __future__ import annotations

import numpy as np
import pytest

from mlref.serve.metrics import Histogram, ServingMetrics, parse_metrics


def test_histogram_buckets_match_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.exponential(0.05, 500)
    values[:5] = [0.001, 0.01, 0.1, 1.0, 0.0025]  # exactly on bounds: le is inclusive
    hist = Histogram((0.001, 0.0025, 0.01, 0.1, 1.0))
    for v in values:
        hist.observe(float(v))
    m = parse_metrics("\n".join(hist.lines("x", {})))
    for bound in (0.001, 0.0025, 0.01, 0.1, 1.0):
        key = f'x_bucket{{le="{bound:g}"}}' if bound < 1 else 'x_bucket{le="1"}'
        assert m[key] == np.count_nonzero(values <= bound), bound
    assert m['x_bucket{le="+Inf"}'] == 500
    assert m["x_count"] == 500
    assert m["x_sum"] == pytest.approx(values.sum())


def test_histogram_refuses_unsorted_buckets() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram((1.0, 0.5))


def test_render_escapes_labels_and_reports_gauges() -> None:
    metrics = ServingMetrics()
    metrics.observe_request("/predict", 200, 0.004)
    metrics.observe_batch(3, failed=False)
    metrics.observe_batch(5, failed=True)
    metrics.count_shed(2)
    text = metrics.render(
        queue_depth=7,
        in_flight=2,
        ready=True,
        model_version='v"1',
        shadow_version=None,
        log_pending=0,
    )
    m = parse_metrics(text)
    assert m['mlref_requests_total{path="/predict",status="200"}'] == 1
    assert m['mlref_batch_size_bucket{le="4"}'] == 1
    assert m['mlref_batch_size_bucket{le="8"}'] == 2
    assert m["mlref_batch_errors_total"] == 1
    assert m["mlref_shed_total"] == 2
    assert m["mlref_queue_depth"] == 7
    assert m["mlref_in_flight"] == 2
    assert 'model_version="v\\"1"' in text
    assert text.endswith("\n")
