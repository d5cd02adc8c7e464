"""The monitoring report's bin labels follow mlgates' bin layout, single-value bins included."""

from __future__ import annotations

import numpy as np

from mlgates.stats import bin_counts, quantile_bins
from mlref.monitor.drift import coded_bin_labels, numeric_bin_labels


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


def test_whole_valued_features_read_as_the_values_a_bin_holds() -> None:
    # txn_velocity_24h, hour_of_day: [1, 2) holds the count 1, not "1-2"
    assert numeric_bin_labels([0.0, 1.0, 2.0, 5.0], integral=True) == (
        "<0",
        "0",
        "1",
        "2\N{EN DASH}4",
        "\N{GREATER-THAN OR EQUAL TO}5",
        "missing",
    )
    # a single-value bin [v, nextafter(v)) and the bin after it (starting above v)
    edges = quantile_bins(np.array([0.0, 1.0, 1.0, 1.0, 3.0] * 10))
    labels = numeric_bin_labels(edges, integral=True)
    assert labels == (
        "<0",
        "0",
        "1\N{EN DASH}2",
        "3",
        "\N{GREATER-THAN OR EQUAL TO}4",
        "missing",
    )
    counts = bin_counts(np.array([0.0, 1.0, 2.0, 3.0]), edges)
    assert dict(zip(labels, counts.tolist(), strict=True)) == {
        "<0": 0,
        "0": 1,
        "1\N{EN DASH}2": 2,
        "3": 1,
        "\N{GREATER-THAN OR EQUAL TO}4": 0,
        "missing": 0,
    }


def test_coded_categories_are_named_by_the_codes_in_each_bin() -> None:
    names = {-1: "other", 0: "grocery", 1: "travel", 2: "gas"}
    labels = coded_bin_labels([0.0, 1.0, 2.0], names)
    assert labels == ("other", "grocery", "travel", "gas", "missing")
    # a bin holding two codes names both; a bin holding no named code keeps its number
    assert coded_bin_labels([0.0, 2.0, 3.0], names) == (
        "other",
        "grocery, travel",
        "gas",
        "\N{GREATER-THAN OR EQUAL TO}3",
        "missing",
    )
