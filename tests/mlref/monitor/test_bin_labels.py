"""The monitoring report's bin labels follow mlgates' bin layout, single-value bins included."""

from __future__ import annotations

import numpy as np

from mlgates.stats import bin_counts, quantile_bins
from mlref.monitor.drift import numeric_bin_labels


def test_continuous_edges_get_ranges_and_open_ends() -> None:
    assert numeric_bin_labels([0.0, 1.0, 2.5]) == (
        "<0",
        "0\N{EN DASH}1",
        "1\N{EN DASH}2.5",
        "\N{GREATER-THAN OR EQUAL TO}2.5",
        "missing",
    )


def test_a_constant_reference_reads_below_the_value_above() -> None:
    edges = quantile_bins(np.full(50, 5.0))
    labels = numeric_bin_labels(edges)
    assert labels == ("<5", "5", ">5", "missing")
    counts = bin_counts(np.array([4.0, 5.0, 5.0, 6.0, np.nan]), edges)
    assert len(counts) == len(labels)
    assert dict(zip(labels, counts.tolist(), strict=True)) == {
        "<5": 1,
        "5": 2,
        ">5": 1,
        "missing": 1,
    }


def test_no_edges_is_one_bin_and_missing() -> None:
    assert numeric_bin_labels([]) == ("all", "missing")
