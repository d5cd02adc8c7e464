"""Fixtures the gate tests read: data, splits, both models, the request log.

Everything is built once per session (the models train in well under a second) and is
deterministic. ``EXAMPLE_DEFECT`` seeds one known bug (see ``screening.data.DEFECTS``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from screening import data, features, model

DEFECT_ENV = "EXAMPLE_DEFECT"


def pytest_configure(config: pytest.Config) -> None:
    # Refuse a mistyped defect before anything runs (exit code 4, no tracebacks).
    try:
        data.check_defect(os.environ.get(DEFECT_ENV, "").strip())
    except ValueError as exc:
        raise pytest.UsageError(f"{DEFECT_ENV}: {exc}") from None


@pytest.fixture(scope="session")
def defect() -> str | None:
    """The seeded defect of this run, or None for the real project."""
    return data.check_defect(os.environ.get(DEFECT_ENV, "").strip())


@pytest.fixture(scope="session")
def cases(defect: str | None) -> pd.DataFrame:
    return data.load_cases(defect)


@pytest.fixture(scope="session")
def split(cases: pd.DataFrame, defect: str | None) -> data.Split:
    return data.split_cases(cases, defect)


@pytest.fixture(scope="session")
def train_features(split: data.Split, defect: str | None) -> pd.DataFrame:
    return features.batch_features(split.train, defect)


@pytest.fixture(scope="session")
def test_features(split: data.Split, defect: str | None) -> pd.DataFrame:
    return features.batch_features(split.test, defect)


@pytest.fixture(scope="session")
def champion(split: data.Split, train_features: pd.DataFrame) -> Pipeline:
    return model.train_champion(train_features, split.train[data.LABEL])


@pytest.fixture(scope="session")
def candidate(split: data.Split, train_features: pd.DataFrame, defect: str | None) -> Pipeline:
    return model.train_candidate(train_features, split.train[data.LABEL], defect)


@pytest.fixture(scope="session")
def test_scores(
    champion: Pipeline, candidate: Pipeline, test_features: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(champion, candidate) probabilities on the labelled test cases."""
    return model.score(champion, test_features), model.score(candidate, test_features)


@pytest.fixture(scope="session")
def requests(cases: pd.DataFrame, defect: str | None) -> pd.DataFrame:
    """The production request log since the test period began (raw measurements, no labels)."""
    return data.request_log(cases, defect)
