"""Policy gates on data whose truth is known.

pii_scan: what it flags, what it must not flag (ids that fail Luhn or mod-97, loopback
addresses, timestamps), masking, sampling, errors. feature_policy: each kind of violation
(undeclared, unowned, unsourced, forbidden, derived from a forbidden column) named.
spec_in_version_control: each provenance defect fails; no repository is inconclusive.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgates import GateInputError, feature_policy, pii_scan, spec_in_version_control
from mlgates.gates.policy import iban_valid, luhn_valid, mask

# published test numbers: Visa/Mastercard test cards, the ISO 13616 example IBANs
VALID_CARDS = ["4111111111111111", "5500 0000 0000 0004", "4012-8888-8888-1881"]
VALID_IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]


def _luhn_reference(number: str) -> bool:
    """Luhn written the textbook way (one digit at a time), to check the vectorised one."""
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0 and 13 <= len(digits) <= 19


def test_luhn_matches_the_textbook_algorithm_on_random_numbers() -> None:
    rng = np.random.default_rng(0)
    numbers = ["".join(map(str, rng.integers(0, 10, rng.integers(12, 21)))) for _ in range(3000)]
    expected = np.array([_luhn_reference(n) for n in numbers])
    assert (luhn_valid(numbers) == expected).all()
    # about one random 16-digit string in ten passes Luhn: the check is what tells
    sixteen = [n for n in numbers if len(n) == 16]
    assert 0.05 < luhn_valid(sixteen).mean() < 0.15
    assert luhn_valid(VALID_CARDS).all()


def test_iban_mod97() -> None:
    assert iban_valid(VALID_IBANS).all()
    assert not iban_valid(["GB82 WEST 1234 5698 7654 33", "DE89370400440532013001"]).any()


def test_clean_frame_passes_and_ids_timestamps_versions_are_not_personal() -> None:
    rng = np.random.default_rng(1)
    ids = rng.integers(10**15, 10**16, 2000)
    ids = ids[~luhn_valid(ids.astype(str))]  # 16-digit ids that are not card numbers
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i:09d}" for i in range(len(ids))],
            "account_id": ids,
            "account_ref": ids.astype(str),
            "ts": pd.date_range("2024-01-01", periods=len(ids), freq="min").astype(str),
            "version": "1.17.0",
            "host": "127.0.0.1",
            "amount": rng.gamma(2.0, 30.0, len(ids)),
        }
    )
    result = pii_scan({"features": frame})
    assert result.verdict == "pass", result.explain()
    assert result.measured == 0
    assert result.rubric == ("data-5",)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("contact: jane.doe+x@mail.example.org", "email"),
        (VALID_CARDS[0], "card_number"),
        (VALID_CARDS[1], "card_number"),
        (VALID_CARDS[2], "card_number"),
        (VALID_IBANS[0], "iban"),
        (VALID_IBANS[1], "iban"),
        ("from 203.0.113.195 via proxy", "ip_address"),
        ("+44 20 7946 0958", "phone"),
        ("(212) 555-0123", "phone"),
    ],
)
def test_each_pattern_is_found_and_reported_masked(value: str, pattern: str) -> None:
    frame = pd.DataFrame({"note": ["nothing here", value, "still nothing"]})
    result = pii_scan({"log": frame})
    assert result.verdict == "fail"
    found = {(f["source"], f["column"], f["pattern"]) for f in result.details["findings"]}
    assert ("log", "note", pattern) in found
    text = result.explain() + result.to_json()
    raw = value.split()[-1] if pattern in ("email", "ip_address") else value
    assert raw not in text  # never the raw value, in the message or the JSON report
    assert f"log.note: {pattern} x1" in result.explain()


def test_card_number_stored_as_integer_is_found() -> None:
    frame = pd.DataFrame({"pan": np.array([4111111111111111, 4111111111111112], dtype=np.int64)})
    result = pii_scan({"train": frame})
    assert result.verdict == "fail"
    assert result.details["findings"] == [
        {
            "source": "train",
            "column": "pan",
            "pattern": "card_number",
            "count": 1,
            "example": "************1111",
            "sampled": False,
        }
    ]


def test_a_column_named_in_config_fails_by_its_name() -> None:
    frame = pd.DataFrame({"Customer_Name": ["a", "b"], "x": [1.0, 2.0]})
    assert pii_scan(frame).verdict == "pass"
    result = pii_scan(frame, pii_columns=["customer_name"])
    assert result.verdict == "fail"
    assert result.details["findings"][0]["pattern"] == "column"
    assert "a" not in result.details["findings"][0]["example"].split()


def test_bytes_and_files_are_scanned(tmp_path: Path) -> None:
    blob = b"\x08\x01\x12\x07onnx\x00producer 1.17.0 owner=ops@example.com\xff\x00"
    assert pii_scan({"model": blob}).verdict == "fail"
    path = tmp_path / "model.onnx"
    clean = blob.replace(b"ops@example.com", b"ops-team")
    path.write_bytes(clean)
    result = pii_scan({"model": path})
    assert result.verdict == "pass", result.explain()
    assert result.details["sources"] == [
        {"source": "model", "kind": "bytes", "bytes": len(clean), "binary": True}
    ]


def test_large_frames_are_sampled_deterministically_and_say_so() -> None:
    n = 50_000
    emails = np.where(np.arange(n) % 100 == 0, "someone@example.com", "-")
    frame = pd.DataFrame({"v": emails})
    a = pii_scan({"log": frame}, max_rows=5_000, seed=3)
    b = pii_scan({"log": frame}, max_rows=5_000, seed=3)
    assert a.verdict == b.verdict == "fail"
    assert a.measured == b.measured  # same seed, same sample
    assert 20 < a.measured < 80  # ~1% of 5000
    assert "sampled 5,000 rows, seed 3, of: log" in a.message
    assert a.details["sources"][0] == {"source": "log", "kind": "frame", "rows": n, "scanned": 5000}
    assert pii_scan({"log": frame}).measured == n // 100  # under max_rows: every row


def test_patterns_can_be_restricted() -> None:
    frame = pd.DataFrame({"ip": ["203.0.113.7"]})
    assert pii_scan(frame, patterns=["email"]).verdict == "pass"
    assert pii_scan(frame, patterns=["ip_address"]).verdict == "fail"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"sources": [1, 2]}, "sources"),
        ({"sources": {}}, "sources"),
        ({"sources": {"x": 3}}, "sources['x']"),
        ({"sources": pd.DataFrame({"a": [1]}), "patterns": ["ssn"]}, "patterns"),
        ({"sources": pd.DataFrame({"a": [1]}), "max_rows": 0}, "max_rows"),
        ({"sources": {"f": Path("/nonexistent/model.onnx")}}, "sources['f']"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, named: str) -> None:
    with pytest.raises(GateInputError, match=named.replace("[", r"\[")):
        pii_scan(**kwargs)


def test_masks_keep_only_what_finds_the_value() -> None:
    assert mask("jane.doe@mail.example.org", "email") == "j***@***.org"
    assert mask("4111 1111 1111 1111", "card_number") == "************1111"
    assert mask("203.0.113.195", "ip_address") == "203.x.xxx.xxx"
    assert mask("GB82 WEST 1234 5698 7654 32", "iban") == "GB****************5432"


# ------------------------------------------------------------------------ feature_policy

DECLARED = {
    "velocity_24h": {"owner": "fraud-ml", "source": "user_velocity_24h.txn_count_24h"},
    "log_amount": {"owner": "fraud-ml", "source": "txn_request.amount"},
    "hour_of_day": {"owner": "fraud-ml", "source": "txn_request.request_ts"},
}


def test_declared_owned_allowed_inputs_pass() -> None:
    result = feature_policy(list(DECLARED), DECLARED, forbidden=["user_id", "age_band"])
    assert result.verdict == "pass", result.explain()
    assert result.measured == 0
    assert result.rubric == ("data-4",)
    assert "0 of 3 features" in result.explain()


@pytest.mark.parametrize(
    ("inputs", "declarations", "problem"),
    [
        ([*DECLARED, "merchant_score"], DECLARED, "merchant_score: not declared"),
        (
            list(DECLARED),
            {**DECLARED, "log_amount": {"owner": " ", "source": "txn_request.amount"}},
            "log_amount: no owner",
        ),
        (
            list(DECLARED),
            {**DECLARED, "log_amount": {"owner": "fraud-ml"}},
            "log_amount: no source",
        ),
        (
            [*DECLARED, "User_Id"],
            {**DECLARED, "User_Id": {"owner": "x", "source": "raw.user_id"}},
            "User_Id: forbidden input",
        ),
        (
            [*DECLARED, "age_code"],
            {**DECLARED, "age_code": {"owner": "x", "source": "customers.age_band (ordinal)"}},
            "age_code: derived from forbidden age_band",
        ),
    ],
)
def test_each_violation_fails_naming_the_input(
    inputs: list[str], declarations: dict, problem: str
) -> None:
    result = feature_policy(inputs, declarations, forbidden=["user_id", "age_band"])
    assert result.verdict == "fail"
    assert result.measured == 1
    assert problem in result.message


def test_required_fields_are_configurable_and_all_problems_are_listed() -> None:
    result = feature_policy(
        ["a", "b"], {"a": {"owner": "o"}}, forbidden=["b"], required=["owner", "reviewed_by"]
    )
    assert result.verdict == "fail"
    assert result.measured == 2
    assert "a: no reviewed_by" in result.message
    assert "b: not declared, forbidden input" in result.message


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("amount", DECLARED), "inputs"),
        (([], DECLARED), "inputs"),
        ((["a"], ["a"]), "declarations"),
        ((["a"], {"a": "owner=x"}), r"declarations\['a'\]"),
    ],
)
def test_feature_policy_bad_input_names_the_argument(args: tuple, named: str) -> None:
    with pytest.raises(GateInputError, match=named):
        feature_policy(*args)


# ---------------------------------------------------------------- spec_in_version_control

CLEAN = {"commit": "a" * 40, "dirty_files": [], "spec_hash": "f" * 64}


def test_clean_committed_spec_passes() -> None:
    result = spec_in_version_control(CLEAN, {"a" * 40: "f" * 64}.get)
    assert result.verdict == "pass", result.explain()
    assert result.rubric == ("model-1",)


@pytest.mark.parametrize(
    ("record", "repository", "problem"),
    [
        ({**CLEAN, "dirty_files": ["src/train/config.py"]}, None, "dirty at training"),
        (CLEAN, {"a" * 40: "e" * 64}.get, "differs from the one trained"),
        (CLEAN, {}.get, "is not in the repository"),
        ({**CLEAN, "commit": ""}, {"a" * 40: "f" * 64}.get, "recorded no commit"),
        ({**CLEAN, "spec_hash": None}, {"a" * 40: "f" * 64}.get, "no specification hash"),
    ],
)
def test_each_provenance_defect_fails(record: dict, repository: object, problem: str) -> None:
    result = spec_in_version_control(record, repository)  # type: ignore[arg-type]
    assert result.verdict == "fail"
    assert problem in result.message


def test_without_a_repository_a_clean_record_is_inconclusive_not_pass() -> None:
    result = spec_in_version_control(CLEAN, None)
    assert result.verdict == "inconclusive"
    assert "fetch-depth" in result.explain()
    # nor can a record without a commit be judged; a dirty one can, from the record alone
    assert spec_in_version_control({**CLEAN, "commit": ""}, None).verdict == "inconclusive"
    dirty = {**CLEAN, "dirty_files": ["config.py"]}
    assert spec_in_version_control(dirty, None).verdict == "fail"


@pytest.mark.parametrize(
    ("args", "named"),
    [((["a"], None), "record"), ((CLEAN, "abc"), "committed_hash")],
)
def test_spec_in_version_control_bad_input_names_the_argument(args: tuple, named: str) -> None:
    with pytest.raises(GateInputError, match=named):
        spec_in_version_control(*args)


def test_pii_scan_reads_no_email_into_random_binary_bytes() -> None:
    """Float arrays' bytes spell e-mail-like runs ("1@S.kP", about one per MB with the text
    pattern); in a binary blob the scan must not call them personal data."""
    rng = np.random.default_rng(7)
    blob = b"".join(
        [
            rng.normal(size=1_000_000).tobytes(),
            rng.lognormal(3, 1, 1_000_000).tobytes(),
            rng.integers(0, 256, 4_000_000, dtype=np.uint8).tobytes(),
            # the run a prediction log's pages held in a real run of the template's suite
            b"\x9a\x1e1@S.kP\x8e\x00",
        ]
    )
    loose = re.compile(
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9])"
    )
    assert loose.search(blob.decode("latin-1")), "the blob must hold what fooled the old scan"
    result = pii_scan({"weights": blob})
    assert result.verdict == "pass", result.explain()
    assert result.details["sources"][0]["binary"] is True


def test_pii_scan_finds_a_real_email_inside_binary_bytes() -> None:
    rng = np.random.default_rng(8)
    noise = rng.normal(size=10_000).tobytes()
    blob = noise + b"\x00\x16jane.doe42@example.com\x00" + noise
    result = pii_scan({"model_onnx": blob})
    assert result.verdict == "fail"
    assert [f["pattern"] for f in result.details["findings"]] == ["email"]
    assert "jane.doe42" not in result.explain()  # masked, never the raw value


def test_pii_scan_finds_an_email_glued_to_the_bytes_before_it() -> None:
    """In a database page the previous column's text can sit right before the address."""
    blob = b"\x00\x03t000137523Jane.Doe42@gmail.com\x00\x01"
    assert pii_scan({"prediction_log_db": blob}).verdict == "fail"
