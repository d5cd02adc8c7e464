"""Cases for the screening model: scikit-learn's bundled breast cancer data, given a timeline.

The Wisconsin diagnostic data (569 cases, 30 measurements of a fine-needle aspirate image)
ships inside scikit-learn, so nothing is downloaded. It has no time, so each case gets a
synthetic, seeded timeline: the image is measured (``imaged_at``) 1 to 10 days before the
diagnosis (``diagnosed_at``), which is spread over two years. The label (``malignant``) is
the pathology result; it can arrive up to ``LABEL_DELAY`` after the diagnosis.

Everything is deterministic (a seeded generator) and nothing happens at import time.
``defect`` seeds one known bug (see ``DEFECTS``) so the gates can be seen to catch it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SEED = 7
START = pd.Timestamp("2023-01-01", tz="UTC")
DAYS = 730
LABEL_DELAY = pd.Timedelta(days=14)
TRAIN_SHARE = 0.55
# The "as of" moment of the request log: the end of the two years.
SNAPSHOT_AT = START + pd.Timedelta(days=DAYS)

KEY = "case_id"
EVENT_TIME = "diagnosed_at"
LABEL = "malignant"
# Each feature source and the column holding when its values were recorded.
FEATURE_TIMES: dict[str, str] = {"imaging": "imaged_at"}
LEAKED_FEATURE = "pathology grade"
LEAKED_TIME = "pathology_at"

DEFECTS: dict[str, str] = {
    "split": "train/test split at random instead of by time (time_split fails)",
    "leak": "a pathology grade recorded after the diagnosis joins the features "
    "(point_in_time and target_leak fail)",
    "worse": "the candidate is trained on labels shifted by one row, a join bug (no_worse fails)",
    "drift": "a new scanner reports mean texture 25% higher in production (psi_drift fails)",
    "skew": "the serving transform uses log where training uses log1p (feature_parity fails)",
    "stale": "the request log stopped ten days before the snapshot (freshness fails)",
}


def check_defect(defect: str | None) -> str | None:
    """``None``/``""`` for a clean run, else a known defect name (a clear error otherwise)."""
    if not defect:
        return None
    if defect not in DEFECTS:
        known = ", ".join(sorted(DEFECTS))
        raise ValueError(f"unknown defect {defect!r}; use one of: {known} (or leave it unset)")
    return defect


def measurement_columns() -> list[str]:
    """The 30 raw measurement names, in the dataset's order."""
    from sklearn.datasets import load_breast_cancer

    return [str(c) for c in load_breast_cancer().feature_names]


def _days(values: np.ndarray) -> pd.TimedeltaIndex:
    """Fractional days as whole-second durations (readable timestamps in messages)."""
    return pd.to_timedelta(values, unit="D").round("s")


def load_cases(defect: str | None = None) -> pd.DataFrame:
    """All cases, sorted by diagnosis time: key, timestamps, measurements, label."""
    from sklearn.datasets import load_breast_cancer

    defect = check_defect(defect)
    bunch = load_breast_cancer(as_frame=True)
    measurements = bunch.data.reset_index(drop=True)
    n = len(measurements)
    rng = np.random.default_rng(SEED)
    # Diagnoses spread evenly over two years, in an order unrelated to the case.
    minutes = np.sort(rng.choice(DAYS * 24 * 60, size=n, replace=False))
    order = rng.permutation(n)
    diagnosed = START + pd.to_timedelta(minutes, unit="min")
    frame = pd.DataFrame(
        {
            KEY: [f"case-{i:04d}" for i in range(n)],
            EVENT_TIME: diagnosed,
            "imaged_at": diagnosed - _days(rng.uniform(1, 10, size=n)),
        }
    )
    frame = pd.concat([frame, measurements.iloc[order].reset_index(drop=True)], axis=1)
    # sklearn codes malignant as 0; the positive class here is the malignant tumour.
    frame[LABEL] = (1 - bunch.target.to_numpy()[order]).astype(np.int64)
    if defect == "leak":
        # A post-diagnosis source: the grade is (almost) the label itself.
        grade = frame[LABEL] * 2.0 + rng.normal(0.0, 0.3, size=n)
        frame[LEAKED_FEATURE] = grade
        frame[LEAKED_TIME] = diagnosed + _days(rng.uniform(3, 20, size=n))
    return frame


def feature_times(defect: str | None = None) -> list[str]:
    """Timestamp columns of every feature source the model reads."""
    cols = list(FEATURE_TIMES.values())
    if check_defect(defect) == "leak":
        cols.append(LEAKED_TIME)
    return cols


@dataclass(frozen=True)
class Split:
    """Training cases and the labelled test cases."""

    train: pd.DataFrame
    test: pd.DataFrame


def test_start(cases: pd.DataFrame) -> pd.Timestamp:
    """When the test (and production) period starts: ``LABEL_DELAY`` after the last
    training case, the oldest ``TRAIN_SHARE`` of cases."""
    times = cases[EVENT_TIME].sort_values()
    last_train = times.iloc[int(TRAIN_SHARE * len(times)) - 1]
    return last_train + LABEL_DELAY


def split_cases(cases: pd.DataFrame, defect: str | None = None) -> Split:
    """Oldest ``TRAIN_SHARE`` of cases for training; test starts ``LABEL_DELAY`` later.

    Cases inside the embargo window are dropped: their labels were not known when the
    training set was cut.
    """
    ordered = cases.sort_values([EVENT_TIME, KEY]).reset_index(drop=True)
    cut = int(TRAIN_SHARE * len(ordered))
    if check_defect(defect) == "split":
        rng = np.random.default_rng(SEED)
        shuffled = rng.permutation(len(ordered))
        train = ordered.iloc[np.sort(shuffled[:cut])]
        test = ordered.iloc[np.sort(shuffled[cut:])]
    else:
        train = ordered.iloc[:cut]
        test = ordered[ordered[EVENT_TIME] > test_start(ordered)]
    return Split(train.reset_index(drop=True), test.reset_index(drop=True))


def request_log(cases: pd.DataFrame, defect: str | None = None) -> pd.DataFrame:
    """What production received since the test period started: raw requests, no labels.

    Each request arrives at diagnosis time and carries the measurements the model reads.
    """
    defect = check_defect(defect)
    recent = cases[cases[EVENT_TIME] > test_start(cases)].sort_values([EVENT_TIME, KEY])
    requests = recent.drop(columns=[LABEL]).rename(columns={EVENT_TIME: "received_at"})
    if defect == "drift":
        requests["mean texture"] = requests["mean texture"] * 1.25
    if defect == "stale":
        cutoff = SNAPSHOT_AT - pd.Timedelta(days=10)
        requests = requests[requests["received_at"] < cutoff]
    return requests.reset_index(drop=True)
