"""Bad options and bad [tool.mlgates] config are usage errors that name the key."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Literal

import pytest

from mlgates.config import (
    ConfigError,
    Source,
    build_config,
    check_value,
    gate_name,
    load_config,
    parse_ini_lines,
    read_pyproject,
    resolve_kwargs,
    tunable_parameters,
)


def _usage_error(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    return result.stderr.str()


# ------------------------------------------------------------------ through pytest


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('inconclusiv = "warn"', "[tool.mlgates] unknown key 'inconclusiv'; valid keys: "),
        ('inconclusive = "maybe"', "key 'inconclusive' must be one of 'fail', 'warn'"),
        ('rubric_manual = ["model-9"]', "unknown ML Test Score item(s) 'model-9'"),
        ("rubric_manual = 3", "key 'rubric_manual' must be a list of strings"),
        ('custom_gates = "mine"', "key 'custom_gates' must be a list of strings"),
        ("settings = 1", "key 'settings' must be a table"),
    ],
)
def test_bad_global_key_is_a_usage_error_naming_it(
    pytester: pytest.Pytester, toml: str, expected: str
) -> None:
    pytester.makepyprojecttoml(f"[tool.mlgates]\n{toml}\n")
    err = _usage_error(pytester, "--mlgates")
    assert "ERROR: mlgates: " in err
    assert expected in err


def test_config_is_not_read_when_off(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.mlgates]\ninconclusiv = "warn"\n')
    pytester.makepyfile("def test_x():\n    pass\n")
    assert pytester.runpytest("-p", "no:cacheprovider").ret == pytest.ExitCode.OK


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    # Through pytest, pytest itself rejects a broken pyproject.toml first; a retrain job
    # reading thresholds with load_config gets the same kind of message.
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.mlgates\nmargin = 1\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: not valid TOML .*; fix the file"):
        read_pyproject(path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mlgates", "--mlgates-report="], "argument --mlgates-report: expected a file path"),
        (["--mlgates", "--mlgates-report=."], "argument --mlgates-report: '.' is a directory"),
        (["--mlgates", "--mlgates-markdown="], "argument --mlgates-markdown: expected a file"),
    ],
)
def test_bad_option_value_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    assert expected in _usage_error(pytester, *args)


def test_bad_ini_bool_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmlgates = perhaps\n")
    assert "ini key 'mlgates' must be true or false" in _usage_error(pytester)


def test_bad_ini_threshold_line_names_it(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmlgates_thresholds =\n    budget.limit 2\n")
    err = _usage_error(pytester, "--mlgates")
    assert "mlgates_thresholds: cannot read line 'budget.limit 2'" in err


def test_ini_report_path_that_is_a_directory(pytester: pytest.Pytester) -> None:
    pytester.mkdir("reports")
    pytester.makeini("[pytest]\nmlgates_report = reports\n")
    assert "ini key 'mlgates_report'" in _usage_error(pytester, "--mlgates")


MARKER_PROBLEMS = """
import pytest
from gatelib import budget

@pytest.mark.mlgate("budget", rubric=("model-8",))
def test_bad_rubric(mlgates):
    mlgates.run(budget, 0.1)

@pytest.mark.mlgate("budget", "extra")
def test_two_names(mlgates):
    mlgates.run(budget, 0.1)

@pytest.mark.mlgate("budget", limt=2.0)
def test_unknown_override_of_own_gate(mlgates):
    mlgates.run(budget, 0.1)

def test_gate_input_error(mlgates):
    from mlgates.result import GateInputError
    def broken(x):
        raise GateInputError("column 'amount' is missing; pass a frame with it")
    mlgates.run(broken, 1)
"""


def test_marker_problems_fail_the_test_with_a_named_reason(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(test_markers=MARKER_PROBLEMS)
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(errors=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*[[]mlgates[]] @pytest.mark.mlgate rubric= has unknown ML Test Score item(s) "
            "'model-8'*",
            "*[[]mlgates[]] @pytest.mark.mlgate takes one gate name, got 2 positional*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*[[]mlgates[]] budget: setting 'limt' is not a parameter of gate 'budget'; "
         "valid keys: limit, warn_at"]
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        ["*[[]mlgates[]] broken: unusable input: column 'amount' is missing; pass a frame with it"]
    )


# ------------------------------------------------------------------ real gate registry


@pytest.fixture
def gates_registry() -> dict[str, object]:
    gates = pytest.importorskip("mlgates.gates")
    registry = getattr(gates, "GATES", None)
    if not registry or "no_worse" not in registry:
        pytest.skip("mlgates.gates.GATES (with no_worse) not available yet")
    return dict(registry)


def test_unknown_key_of_a_real_gate(pytester: pytest.Pytester, gates_registry: dict) -> None:
    pytester.makepyprojecttoml("[tool.mlgates.no_worse]\nmargni = 0.01\n")
    err = _usage_error(pytester, "--mlgates")
    assert "[tool.mlgates.no_worse] unknown key 'margni' for gate 'no_worse'; valid keys: " in err
    assert "margin" in err.split("valid keys:")[1]


def test_wrong_type_of_a_real_gate_key(pytester: pytest.Pytester, gates_registry: dict) -> None:
    pytester.makepyprojecttoml('[tool.mlgates.no_worse]\nmargin = "0.01"\n')
    err = _usage_error(pytester, "--mlgates")
    assert "[tool.mlgates.no_worse] key 'margin' of gate 'no_worse' must be a number" in err


def test_unknown_gate_table(pytester: pytest.Pytester, gates_registry: dict) -> None:
    pytester.makepyprojecttoml("[tool.mlgates.no_wrose]\nmargin = 0.01\n")
    err = _usage_error(pytester, "--mlgates")
    assert "[tool.mlgates.no_wrose] unknown gate 'no_wrose'; known gates: " in err
    assert "no_worse" in err


def test_real_gate_table_accepted_and_marker_override_checked(
    pytester: pytest.Pytester, gates_registry: dict
) -> None:
    pytester.makepyprojecttoml("[tool.mlgates.no_worse]\nmargin = 0.01\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mlgate("no_worse", margni=0.02)
        def test_typo(mlgates):
            pass

        @pytest.mark.mlgate("no_worse", margin=0.02)
        def test_fine(mlgates):
            assert mlgates.setting("margin") == 0.02
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*unknown key 'margni' for gate 'no_worse'*"])


# ------------------------------------------------------------------ the functions


def toy_gate(
    data: object,
    margin: float = 0.005,
    n: int = 10,
    metric: Literal["roc_auc", "pr_auc"] = "roc_auc",
    slices: list[str] | None = None,
    exact: bool = False,
    label: str = "x",
    tolerances: dict[str, float] | None = None,
    schema: object = None,
) -> None:
    """Annotations as real objects (this test module)."""


def string_annotated(data, margin: "float | None" = 0.1, when: "timedelta" = None):  # type: ignore[assignment]  # noqa: UP037, F821
    """Annotations as strings, as modules with `from __future__ import annotations` have."""


REGISTRY = {"toy": toy_gate, "strings": string_annotated}


def _build(table: dict, ini: bool = False) -> object:
    return build_config([Source("pyproject.toml", table, ini=ini)], REGISTRY)


def test_tunable_parameters_are_those_with_defaults() -> None:
    assert set(tunable_parameters(toy_gate)) == {
        "margin", "n", "metric", "slices", "exact", "label", "tolerances", "schema",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("margin", 0.01, None),
        ("margin", 1, None),
        ("margin", "0.01", "must be a number, got str '0.01'"),
        ("margin", True, "must be a number, got bool True"),
        ("margin", float("nan"), "must be finite"),
        ("n", 5, None),
        ("n", 5.0, "must be an integer, got float 5.0"),
        ("metric", "pr_auc", None),
        ("metric", "auc", "must be one of 'roc_auc', 'pr_auc', got str 'auc'"),
        ("slices", ["a"], None),
        ("slices", "a", "must be a list, got str 'a'"),
        ("exact", "yes", "must be true or false"),
        ("label", 3, "must be a string"),
        ("tolerances", {"amount": 0.1}, None),
        ("tolerances", 0.1, "must be a table"),
        ("schema", "anything", None),
    ],
)
def test_check_value(key: str, value: object, problem: str | None) -> None:
    param = inspect.signature(toy_gate).parameters[key]
    got = check_value(param, value)
    if problem is None:
        assert got is None
    else:
        assert got is not None
        assert problem in got


def test_string_annotations_are_checked_and_unknown_types_accepted() -> None:
    params = inspect.signature(string_annotated).parameters
    assert check_value(params["margin"], 0.2) is None
    assert "must be a number" in str(check_value(params["margin"], "x"))
    assert check_value(params["when"], "2h") is None


def test_build_config_merges_later_sources_over_earlier() -> None:
    cfg = build_config(
        [
            Source("pyproject.toml", {"toy": {"margin": 0.01, "n": 3}, "inconclusive": "warn"}),
            Source("tox.ini", parse_ini_lines(["toy.margin = 0.02", "settings.rows = 5"]), True),
        ],
        REGISTRY,
    )
    assert dict(cfg.gates["toy"]) == {"margin": 0.02, "n": 3}
    assert cfg.inconclusive == "warn"
    assert dict(cfg.settings) == {"rows": 5}
    assert cfg.sources == ("pyproject.toml", "tox.ini")


def test_ini_errors_name_the_ini_key() -> None:
    with pytest.raises(ConfigError, match=r"tox.ini mlgates_thresholds unknown key 'margni'"):
        build_config([Source("tox.ini", parse_ini_lines(["toy.margni = 1"]), True)], REGISTRY)


def test_parse_ini_lines_values_are_toml() -> None:
    table = parse_ini_lines(
        ["# comment", "toy.margin = 0.01", 'toy.metric = "pr_auc"', "toy.label = plain words",
         "toy.slices = ['a', 'b']", "inconclusive = warn", ""]
    )  # fmt: skip
    assert table == {
        "toy": {"margin": 0.01, "metric": "pr_auc", "label": "plain words", "slices": ["a", "b"]},
        "inconclusive": "warn",
    }


def test_registry_is_loaded_only_when_a_gate_table_needs_it() -> None:
    calls: list[int] = []

    def loader() -> dict:
        calls.append(1)
        return REGISTRY

    build_config([Source("p", {"inconclusive": "warn", "settings": {"a": 1}})], loader)
    assert calls == []
    build_config([Source("p", {"toy": {"n": 1}, "strings": {"margin": 0.1}})], loader)
    assert calls == [1]


def test_custom_gate_tables_skip_the_registry() -> None:
    cfg = build_config(
        [Source("p", {"mine": {"anything": 1}}), Source("q", {"custom_gates": ["mine"]})],
        lambda: {},
    )
    assert dict(cfg.gates["mine"]) == {"anything": 1}


def test_resolve_kwargs_fills_only_what_the_call_left_out() -> None:
    kwargs, filled = resolve_kwargs(
        toy_gate, ("frame", 0.5), {"n": 4}, [{"margin": 0.01, "n": 1}, {"metric": "pr_auc"}], "toy"
    )
    assert kwargs == {"n": 4, "metric": "pr_auc"}  # margin given positionally, n explicitly
    assert filled == {"metric": "pr_auc"}


def test_resolve_kwargs_rejects_a_setting_the_gate_does_not_take() -> None:
    with pytest.raises(ConfigError, match="setting 'bogus' is not a parameter of gate 'toy'"):
        resolve_kwargs(toy_gate, ("frame",), {}, [{"bogus": 1}], "toy")


def test_load_config_reads_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n[tool.mlgates.toy]\nn = 7\n')
    cfg = load_config(path, ["toy.margin = 0.5"], ini_label="pytest.ini", registry=REGISTRY)
    assert dict(cfg.gates["toy"]) == {"n": 7, "margin": 0.5}
    assert load_config(tmp_path / "missing.toml", registry=REGISTRY).gates == {}


def test_gate_name_prefers_the_registry_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import types

    fake = types.ModuleType("mlgates.gates")
    fake.GATES = {"renamed": toy_gate}  # type: ignore[attr-defined]
    assert gate_name(toy_gate) != "renamed"
    monkeypatch.setitem(sys.modules, "mlgates.gates", fake)
    assert gate_name(toy_gate) == "renamed"
    assert gate_name(functools.partial(string_annotated, 1)) == "string_annotated"


# ------------------------------------------------------------------ session-scoped reading

SESSION_CONFIG = """
import pytest
from gatelib import budget

@pytest.fixture(scope="session")
def load_plan(mlgates_config):
    # a session fixture sizes its (expensive, shared) work from the configured thresholds
    return {
        "limit": mlgates_config.threshold("budget", "limit"),
        "warn_at": mlgates_config.threshold("budget", "warn_at", default=0.9),
        "rows": mlgates_config.setting("rows", 10),
        "missing": mlgates_config.setting("missing", "fallback"),
    }

def test_plan(load_plan):
    assert load_plan == {"limit": 0.25, "warn_at": 0.9, "rows": 250, "missing": "fallback"}

@pytest.mark.mlgate("budget")
def test_same_numbers_as_the_gate(mlgates, mlgates_config):
    assert mlgates.run(budget, 0.1).threshold == mlgates_config.threshold("budget", "limit")
"""


@pytest.mark.parametrize("flag", ["--mlgates", "--no-mlgates"])
def test_session_fixtures_read_thresholds_and_settings(
    gate_project: pytest.Pytester, flag: str
) -> None:
    gate_project.makepyprojecttoml(
        """
        [tool.mlgates]
        custom_gates = ["budget"]

        [tool.mlgates.budget]
        limit = 2.0

        [tool.mlgates.settings]
        rows = 250
        """
    )
    gate_project.makeini("[pytest]\nmlgates_thresholds =\n    budget.limit = 0.25\n")
    gate_project.makepyfile(test_session=SESSION_CONFIG)
    result = gate_project.runpytest("-p", "no:cacheprovider", flag)
    if flag == "--mlgates":
        result.assert_outcomes(passed=2)
    else:  # gates off: the gate test is skipped, the session fixture still reads the config
        result.assert_outcomes(passed=1, skipped=1)


def test_threshold_falls_back_to_the_gate_default_and_names_bad_keys(
    gates_registry: dict,
) -> None:
    table = {"latency_budget": {"p99_ms": 80.0}}
    config = build_config([Source("pyproject.toml", table)], gates_registry)
    assert config.threshold("latency_budget", "p99_ms", registry=gates_registry) == 80.0
    default = tunable_parameters(gates_registry["latency_budget"])["confidence"].default
    assert config.threshold("latency_budget", "confidence", registry=gates_registry) == default
    with pytest.raises(ConfigError, match="gate 'latency_budget' has no setting 'p99'"):
        config.threshold("latency_budget", "p99", registry=gates_registry)
    with pytest.raises(ConfigError, match="unknown gate 'latency'"):
        config.threshold("latency", "p99_ms", registry=gates_registry)
