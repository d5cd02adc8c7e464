"""The ``mlgates`` fixture object: run a gate with configured thresholds, record, fail.

Loaded only when the gates are on (see ``mlgates.plugin``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from mlgates import rubric
from mlgates.config import ConfigError, GatesConfig, gate_name, resolve_kwargs
from mlgates.result import GateInputError, GateResult

if TYPE_CHECKING:
    from mlgates.state import RunState


@dataclass(frozen=True)
class MarkerInfo:
    """``@pytest.mark.mlgate(name, rubric=(...), settings={...}, **overrides)``, checked.

    ``overrides`` are keyword arguments of the gate ``name``; ``rubric`` adds ML Test Score
    items the test covers; ``settings`` holds free-form values for ``mlgates.setting``.
    """

    name: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    rubric: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


def parse_marker(marker: pytest.Mark | None) -> MarkerInfo:
    """Read the marker; raise ValueError with a message naming the problem."""
    if marker is None:
        return MarkerInfo()
    if len(marker.args) > 1:
        raise ValueError(
            f"@pytest.mark.mlgate takes one gate name, got {len(marker.args)} positional "
            f"arguments {marker.args!r}; pass thresholds as keywords"
        )
    kwargs = dict(marker.kwargs)
    name = marker.args[0] if marker.args else kwargs.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"@pytest.mark.mlgate name must be a string, got {name!r}")
    items = kwargs.pop("rubric", ())
    if isinstance(items, str):
        items = (items,)
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"@pytest.mark.mlgate rubric= must be ids like 'model-6', got {items!r}")
    bad = rubric.unknown_ids(items)
    if bad:
        raise ValueError(
            f"@pytest.mark.mlgate rubric= has unknown ML Test Score item(s) "
            f"{', '.join(map(repr, bad))}; ids are data-1..7, model-1..7, infra-1..7, monitor-1..7"
        )
    settings = kwargs.pop("settings", {})
    if not isinstance(settings, Mapping):
        raise ValueError(f"@pytest.mark.mlgate settings= must be a dict, got {settings!r}")
    return MarkerInfo(name=name, overrides=kwargs, rubric=tuple(items), settings=settings)


# Set on an item when one of its gate results failed the test, so the run's report hook can
# tell a gate's verdict from a test that broke before (or after) its gate returned.
failed_by_gate_key = pytest.StashKey[bool]()
# The item's position in the final collection: reports list results in test order, also
# when xdist workers send them back in the order they finished.
order_key = pytest.StashKey[int]()


def make_record(
    result: GateResult,
    test: str,
    extra_rubric: tuple[str, ...],
    params: Mapping[str, Any],
    order: int | None = None,
) -> dict[str, Any]:
    """The JSON-able record of one result, as stored, shipped from workers and reported."""
    record = result.to_dict()
    if result.verdict in rubric.NOT_A_TEST:
        # a note tested nothing: it claims no item, neither the gate's nor the marker's
        record["rubric"] = []
    else:
        record["rubric"] = list(dict.fromkeys([*record.get("rubric", []), *extra_rubric]))
    record["test"] = test
    record["params"] = json.loads(json.dumps(params, default=repr))
    record["order"] = order
    return record


OUTCOME_HINTS: dict[str, str] = {
    "error": "the gate did not decide: fix the test or its fixtures (see the test's report "
    "above) and re-run",
    "skipped": "the gate did not run: remove the skip or satisfy its condition, or the "
    "property it guards is not checked",
}


def make_outcome_record(
    test: str,
    name: str,
    verdict: str,
    reason: str,
    extra_rubric: tuple[str, ...],
    when: str,
    order: int | None = None,
) -> dict[str, Any]:
    """The record of a gate test that ended without its gate deciding: ``error`` (it raised
    before its gate returned, or after) or ``skipped``. Same shape as ``make_record``, so
    every report lists it; its rubric ids are the marker's claim, and earn nothing."""
    return {
        "name": name,
        "verdict": verdict,
        "passed": False,
        "measured": None,
        "threshold": None,
        "unit": "",
        "direction": "",
        "message": reason,
        "hint": OUTCOME_HINTS.get(verdict, ""),
        "rubric": list(dict.fromkeys(extra_rubric)),
        "details": {"when": when},
        "test": test,
        "params": {},
        "order": order,
    }


class Gates:
    """What a test gets from the ``mlgates`` fixture."""

    def __init__(self, item: pytest.Item, state: RunState, marker: MarkerInfo) -> None:
        self._item = item
        self._state = state
        self._marker = marker
        self.results: list[GateResult] = []

    @property
    def config(self) -> GatesConfig:
        return self._state.config

    def _layers(self, name: str) -> list[Mapping[str, Any]]:
        layers: list[Mapping[str, Any]] = [self.config.gate_defaults(name)]
        if self._marker.name in (None, name):
            layers.append(self._marker.overrides)
        return layers

    def setting(self, key: str, default: Any = None) -> Any:
        """A configured value. Looks in the marker's ``settings=``, the marker's overrides,
        ``[tool.mlgates.<marker gate>]``, ``[tool.mlgates.settings]``, then ``default``."""
        if key in self._marker.settings:
            return self._marker.settings[key]
        if key in self._marker.overrides:
            return self._marker.overrides[key]
        if self._marker.name is not None:
            table = self.config.gates.get(self._marker.name, {})
            if key in table:
                return table[key]
        return self.config.settings.get(key, default)

    def kwargs_for(
        self, gate_fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(kwargs a call would use, the part that came from config and marker)."""
        name = gate_name(gate_fn)
        return resolve_kwargs(gate_fn, args, kwargs, self._layers(name), name)

    def run(self, gate_fn: Callable[..., GateResult], /, *args: Any, **kwargs: Any) -> GateResult:
        """Call ``gate_fn`` with thresholds filled from config, record and judge the result."""
        __tracebackhide__ = True
        name = gate_name(gate_fn)
        marked = self._marker.name
        if marked is not None and marked != name:
            # the marker's thresholds (and the summary's gate column) are for another gate;
            # running this one with its defaults would be a silent, wrong gate
            pytest.fail(
                f"[mlgates] usage error: {self._item.nodeid} is marked "
                f"@pytest.mark.mlgate({marked!r}) but runs mlgates.run({name}, ...): the "
                f"marker's thresholds are for {marked!r}, not {name!r}. Mark the test "
                f"@pytest.mark.mlgate({name!r}, ...) or run the {marked!r} gate",
                pytrace=False,
            )
        try:
            call_kwargs, filled = self.kwargs_for(gate_fn, *args, **kwargs)
        except ConfigError as exc:
            pytest.fail(f"[mlgates] {name}: {exc}", pytrace=False)
        try:
            result = gate_fn(*args, **call_kwargs)
        except GateInputError as exc:
            pytest.fail(f"[mlgates] {name}: unusable input: {exc}", pytrace=False)
        if not isinstance(result, GateResult):
            raise TypeError(
                f"gate {name!r} returned {type(result).__name__}, expected a GateResult"
            )
        return self.check(result, params=filled)

    def check(self, result: GateResult, *, params: Mapping[str, Any] | None = None) -> GateResult:
        """Record ``result``; fail the test unless it passed (or warned, or is a note)."""
        __tracebackhide__ = True
        record = make_record(
            result,
            self._item.nodeid,
            self._marker.rubric,
            params or {},
            order=self._item.stash.get(order_key, None),
        )
        self._state.results.append(record)
        self.results.append(result)
        prefix = f"mlgates.{result.name}"
        self._item.user_properties.extend(
            [
                (f"{prefix}.verdict", result.verdict),
                (f"{prefix}.measured", str(record["measured"])),
                (f"{prefix}.threshold", str(record["threshold"])),
                (f"{prefix}.rubric", ",".join(record["rubric"])),
            ]
        )
        if result.verdict == "fail" or (
            result.verdict == "inconclusive" and self.config.inconclusive == "fail"
        ):
            self._item.stash[failed_by_gate_key] = True
            pytest.fail(result.explain(), pytrace=False)
        return result
