"""The key checks that entity_overlap and feature_parity share (one helper, key_columns) keep
each gate's own words: which argument is empty, which frame lacks which column."""

from __future__ import annotations

import pandas as pd
import pytest

from mlgates.gates import entity_overlap, feature_parity
from mlgates.result import GateInputError


def test_an_empty_key_names_the_gates_argument() -> None:
    frame = pd.DataFrame({"user": [1, 2], "x": [0.1, 0.2]})
    with pytest.raises(GateInputError, match=r"^key is empty: name the entity column\(s\)$"):
        entity_overlap(frame, frame, key=[])
    with pytest.raises(
        GateInputError, match=r"^keys is empty: name the column\(s\) that identify a row$"
    ):
        feature_parity(frame, frame, keys=[], features=["x"])


def test_a_missing_key_column_names_the_first_frame_that_lacks_it() -> None:
    has = pd.DataFrame({"user": [1, 2], "x": [0.1, 0.2]})
    lacks = pd.DataFrame({"x": [0.1, 0.2]})
    with pytest.raises(GateInputError, match=r"^test is missing column\(s\) \['user'\]"):
        entity_overlap(has, lacks, key="user")
    with pytest.raises(GateInputError, match=r"^offline is missing column\(s\) \['user'\]"):
        feature_parity(lacks, lacks, keys="user", features=["x"])
