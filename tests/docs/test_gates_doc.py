"""docs/gates.md says what the code does: every gate's documented config keys and defaults,
and its required arguments, are those of its signature, and the file is what the generator
writes today."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from mlgates.config import tunable_parameters
from mlgates.gates import GATES

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gates.md"
GATE_ROW = re.compile(r"^\| `(\w+)` \|")
KEY_DEFAULT = re.compile(r"`(\w+)` = (.+)")
CALL_EXAMPLE = re.compile(r"`(\w+)\((\w+)=\.\.\.\)`")
REQUIRED_CLAIM = re.compile(r"`(\w+)` \(required")


def _rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = GATE_ROW.match(line)
        if match and match.group(1) in GATES:
            rows[match.group(1)] = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
    return rows


def _required(fn: Any) -> list[str]:
    return [
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


ROWS = _rows()


def test_every_gate_has_a_row() -> None:
    assert sorted(ROWS) == sorted(GATES)


@pytest.mark.parametrize("name", sorted(GATES))
def test_documented_defaults_are_the_signature_defaults(name: str) -> None:
    fn = GATES[name]
    _, _, _, required, keys, _ = ROWS[name]
    documented: dict[str, str] = {}
    if keys != "(none)":
        for entry in keys.split("<br>"):
            match = KEY_DEFAULT.fullmatch(entry.strip())
            assert match, f"{name}: cannot read config key entry {entry!r}"
            documented[match.group(1)] = match.group(2)
    actual = {k: repr(p.default) for k, p in tunable_parameters(fn).items()}
    assert documented == actual, f"docs/gates.md row of {name} disagrees with its signature"
    assert re.findall(r"`(\w+)`", required) == _required(fn)


@pytest.mark.parametrize("name", sorted(GATES))
def test_prose_calls_no_defaulted_argument_required(name: str) -> None:
    row = " | ".join(ROWS[name])
    defaults = tunable_parameters(GATES[name])
    wrong = [arg for arg in REQUIRED_CLAIM.findall(row) if arg in defaults]
    assert not wrong, f"docs/gates.md calls {wrong} of {name} required; they have defaults"


def test_call_examples_name_arguments_without_a_default() -> None:
    """`gate(key=...)` in the prose stands for an argument the call must pass."""
    text = DOC.read_text(encoding="utf-8")
    for gate, key in CALL_EXAMPLE.findall(text):
        if gate in GATES:
            default = tunable_parameters(GATES[gate]).get(key)
            assert default is None, (
                f"docs/gates.md shows {gate}({key}=...) as a required argument, but its "
                f"default is {default.default!r}"
            )


def test_doc_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_gates_table", DOC.with_name("gen_gates_table.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_gates_table", module)
    spec.loader.exec_module(module)
    assert module.render() == DOC.read_text(encoding="utf-8"), (
        "docs/gates.md is stale: run uv run python docs/gen_gates_table.py"
    )
