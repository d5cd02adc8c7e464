"""Plain unit tests of the example project (they run with or without --mlgates)."""

from __future__ import annotations

import pytest

from screening import data


def test_unknown_defect_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown defect 'lek'.*drift, leak, ") as info:
        data.check_defect("lek")
    assert "skew" in str(info.value)


def test_cases_are_deterministic_and_imaged_before_diagnosis() -> None:
    first, second = data.load_cases(), data.load_cases()
    assert first.equals(second)
    assert (first["imaged_at"] < first[data.EVENT_TIME]).all()
    assert first[data.LABEL].sum() == 212  # malignant cases in the Wisconsin data
