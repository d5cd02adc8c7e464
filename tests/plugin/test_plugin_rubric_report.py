"""The ML Test Score arithmetic and the report helpers, checked against hand-computed values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlgates import report, rubric


def test_rubric_has_the_28_items_of_the_paper_in_order() -> None:
    assert len(rubric.ITEMS) == 28
    assert list(rubric.ITEMS)[:2] == ["data-1", "data-2"]
    assert list(rubric.ITEMS)[-1] == "monitor-7"
    assert [i.number for i in rubric.ITEMS.values() if i.section == "infra"] == list(range(1, 8))
    assert rubric.ITEMS["data-1"].title == "Feature expectations are captured in a schema"
    assert rubric.ITEMS["model-5"].title == "A simpler model is not better"
    assert rubric.ITEMS["monitor-3"].title == (
        "Training and serving features compute the same values"
    )
    assert rubric.unknown_ids(["data-1", "data-8", "model-0", "infra-7"]) == ["data-8", "model-0"]


def _r(verdict: str, *ids: str, name: str = "g") -> dict[str, object]:
    return {"name": name, "verdict": verdict, "rubric": list(ids)}


def test_score_takes_the_best_verdict_per_item_and_the_minimum_section() -> None:
    results = [
        _r("fail", "data-1"),
        _r("pass", "data-1", name="h"),  # pass beats fail on the same item: 1
        _r("warn", "data-2"),  # 0.5
        _r("inconclusive", "data-3"),  # covered but 0
        _r("pass", "model-1", "model-2", "infra-1", "monitor-1"),
        _r("warn", "monitor-2"),
        _r("pass", "unknown-9"),  # ignored
    ]
    s = rubric.score(results, manual=["infra-2", "model-1"])
    assert s.points["data-1"] == 1.0
    assert s.points["data-2"] == 0.5
    assert s.points["data-3"] == 0.0
    assert s.points["model-1"] == 1.0  # automated beats manual
    assert s.points["infra-2"] == 0.5  # manual only
    assert s.sections == {"data": 1.5, "model": 2.0, "infra": 1.5, "monitor": 1.5}
    assert s.final == 1.5
    assert s.covering["data-1"] == ["g", "h"]
    assert "data-3" not in s.uncovered  # it has a gate, even if the gate did not pass
    assert "infra-2" not in s.uncovered  # manual practice counts as covered
    assert len(s.uncovered) == 28 - 9
    assert s.interpretation == rubric.interpret(1.5)


def test_nothing_covered_scores_zero() -> None:
    s = rubric.score([])
    assert s.final == 0
    assert s.uncovered == tuple(rubric.ITEMS)
    assert s.interpretation.startswith("More of a research project")


@pytest.mark.parametrize(
    ("value", "start"),
    [
        (0.0, "More of a research project"),
        (0.5, "Not totally untested"),
        (1.0, "Not totally untested"),
        (1.5, "There's been first pass"),
        (3.0, "Reasonably tested"),
        (4.0, "Strong levels"),
        (5.0, "Strong levels"),
        (5.5, "Exceptional levels"),
    ],
)
def test_interpretation_bands_of_table_v(value: float, start: str) -> None:
    assert rubric.interpret(value).startswith(start)


def test_validate_reports_type_enum_and_extra_keys() -> None:
    schema = {
        "type": "object",
        "required": ["a"],
        "additionalProperties": False,
        "properties": {
            "a": {"type": "integer", "minimum": 0},
            "b": {"type": "array", "items": {"enum": ["x", 1]}},
        },
    }
    assert report.validate({"a": 3, "b": ["x", 1.0]}, schema) == []
    assert report.validate({"a": True}, schema) == ["$.a: True is not of type 'integer'"]
    assert report.validate({"a": -1}, schema) == ["$.a: -1 is less than the minimum of 0"]
    assert report.validate({"a": 1, "b": [True]}, schema) == ["$.b[0]: True is not one of ['x', 1]"]
    assert report.validate({"c": 1}, schema) == [
        "$: 'a' is a required property",
        "$: Additional properties are not allowed ('c' was unexpected)",
    ]
    # errors in document order, list indices as numbers
    bad = ["y"] * 11
    assert [e.split(":")[0] for e in report.validate({"a": 1, "b": bad}, schema)] == [
        f"$.b[{i}]" for i in range(11)
    ]


def test_validate_without_jsonschema_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # a None entry makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'mlgates\[schema\]'"):
        report.validate({})
    path = tmp_path / "r.json"
    path.write_text("{}")
    assert report.main(["--validate", str(path)]) == 2
    assert capsys.readouterr().err == (
        "error: validating a report needs jsonschema, which mlgates does not require: "
        "pip install 'mlgates[schema]'\n"
    )


def test_the_plugin_machinery_does_not_import_jsonschema() -> None:
    code = (
        "import sys\n"
        "import mlgates.plugin, mlgates.session, mlgates.fixture, mlgates.report, mlgates.config\n"
        "print('jsonschema' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_text_table_wraps_the_whole_test_id_to_fit() -> None:
    test_id = "tests/gates/" + "x" * 40 + "/test_regression_gates.py::test_auc[slice-merchant]"
    rows = [
        {"name": "no_worse", "test": test_id, "measured": -0.0012,
         "threshold": -0.005, "direction": "min", "verdict": "pass", "unit": ""},
    ]  # fmt: skip
    # wide enough for a test column: the id wraps inside it, broken after / and ::
    lines = report.text_table(rows, width=100)
    assert all(len(line) <= 100 for line in lines)
    assert lines[1].startswith("no_worse  tests/gates/")
    assert lines[1].endswith("-0.0012   >= -0.005  PASS")
    column = lines[1].index("tests/")
    assert "".join(line[column:].split("  ")[0] for line in lines[1:]) == test_id
    # too narrow: the figures stay on the row, the id goes whole on the lines under it
    lines = report.text_table(rows, width=70)
    assert all(len(line) <= 70 for line in lines)
    assert lines[0].split() == ["gate", "measured", "threshold", "verdict"]
    assert lines[1].split() == ["no_worse", "-0.0012", ">=", "-0.005", "PASS"]
    assert all(line.startswith("  ") for line in lines[2:])
    assert "".join(line.strip() for line in lines[2:]) == test_id
    assert "..." not in "".join(lines)


def test_markdown_escapes_pipes() -> None:
    rows = [{"name": "a|b", "test": "t", "measured": 1.0, "threshold": None, "verdict": "warn"}]
    md = report.markdown(rows, rubric.score(rows))
    assert "| WARN | a\\|b | `t` | 1 | - |" in md


def test_report_module_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["schema_version"] == {"const": report.SCHEMA_VERSION}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": report.SCHEMA_VERSION}))
    assert report.main(["--validate", str(bad)]) == 1
    assert "$: 'results' is a required property" in capsys.readouterr().err
    assert report.main([]) == 2


def test_score_lines_name_items_covered_but_not_passing() -> None:
    s = rubric.score([_r("fail", "model-5", name="no_worse"), _r("pass", "model-5", name="x"),
                      _r("inconclusive", "infra-4", name="no_worse")])  # fmt: skip
    lines = report.score_lines(s)
    assert "  covered but not passing (0 points): infra-4 (no_worse)" in lines
    assert "    model: model-1, model-2, model-3, model-4, model-6, model-7" in lines
