"""Gate thresholds from ``[tool.mlgates]`` in pyproject.toml (or ini lines), validated.

Layout::

    [tool.mlgates]
    inconclusive = "fail"          # or "warn": an inconclusive gate does not fail its test
    rubric_manual = ["model-1"]    # ML Test Score items done by hand (0.5 point each)
    custom_gates = ["my_gate"]     # your own gate functions that may have a table below

    [tool.mlgates.no_worse]        # one table per gate; keys are the gate's keyword arguments
    margin = 0.005

    [tool.mlgates.settings]        # free-form values read with ``mlgates.setting(key, default)``
    n_requests = 500

The same values can come from the pytest ini key ``mlgates_thresholds`` (one
``gate.key = value`` or ``key = value`` per line, values in TOML syntax); those lines win
over pyproject. Precedence at run time: explicit call kwargs > marker overrides > config.

This module does not import pytest, so a retrain job can read the same thresholds
(``load_config(Path("pyproject.toml"))``) and decide promotion with the same numbers as CI.
Bad config raises ``ConfigError`` naming the key; the plugin turns it into a usage error.
"""

from __future__ import annotations

import ast
import inspect
import math
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgates import rubric

Registry = Mapping[str, Callable[..., Any]]
RegistryLoader = Callable[[], Registry]

INCONCLUSIVE_POLICIES: tuple[str, ...] = ("fail", "warn")
GLOBAL_KEYS: dict[str, str] = {
    "inconclusive": 'what an inconclusive verdict does: "fail" (default) or "warn"',
    "rubric_manual": "ML Test Score item ids done by hand and documented (0.5 point each)",
    "custom_gates": "names of your own gate functions allowed a [tool.mlgates.<name>] table",
}
SETTINGS_TABLE = "settings"


class ConfigError(ValueError):
    """The mlgates configuration is invalid; the message names the key and the fix."""


_MISSING: Any = object()


def default_registry_loader() -> Registry:
    return default_registry()


@dataclass(frozen=True)
class GatesConfig:
    """Validated settings: global policy, per-gate keyword defaults, free-form settings."""

    inconclusive: str = "fail"
    rubric_manual: tuple[str, ...] = ()
    custom_gates: tuple[str, ...] = ()
    gates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def gate_defaults(self, name: str) -> dict[str, Any]:
        return dict(self.gates.get(name, {}))

    def threshold(
        self,
        gate: str,
        key: str,
        default: Any = _MISSING,
        registry: RegistryLoader | Registry = default_registry_loader,
    ) -> Any:
        """The value ``mlgates.run(gate, ...)`` would use for ``key`` without a marker or a
        call override: ``[tool.mlgates.<gate>]`` (ini lines win), else the gate's own
        default (its signature), else ``default``. ConfigError names an unknown gate or key.

        For code that has no test marker: session fixtures (the ``mlgates_config``
        fixture), a retrain job deciding promotion with CI's numbers.
        """
        table = self.gates.get(gate, {})
        if key in table:
            return table[key]
        if gate in self.custom_gates:
            if default is not _MISSING:
                return default
            raise ConfigError(
                f"custom gate {gate!r} has no {key!r} in [tool.mlgates.{gate}] and mlgates "
                "cannot know its default; set it there or pass default="
            )
        known = registry() if callable(registry) else registry
        if gate not in known:
            names = ", ".join(sorted(known)) or "(none)"
            raise ConfigError(
                f"unknown gate {gate!r}; known gates: {names} (list your own gates in "
                "[tool.mlgates] custom_gates)"
            )
        params = tunable_parameters(known[gate])
        if key in params:
            return params[key].default
        if default is not _MISSING:
            return default
        valid = ", ".join(sorted(params)) or "(none)"
        raise ConfigError(f"gate {gate!r} has no setting {key!r}; valid keys: {valid}")

    def setting(self, key: str, default: Any = None) -> Any:
        """A free-form value from ``[tool.mlgates.settings]`` (ini lines win), or ``default``."""
        return self.settings.get(key, default)


@dataclass(frozen=True)
class Source:
    """One place settings came from, and how to name a key from it in an error."""

    label: str  # e.g. "pyproject.toml"
    data: Mapping[str, Any]
    ini: bool = False

    def where(self, table: str | None = None) -> str:
        if self.ini:
            return f"{self.label} mlgates_thresholds"
        return f"[tool.mlgates.{table}]" if table else "[tool.mlgates]"


# ---------------------------------------------------------------------------- reading


def read_pyproject(path: Path) -> dict[str, Any]:
    """The ``[tool.mlgates]`` table of a pyproject.toml ({} when absent)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file") from exc
    table = data.get("tool", {}).get("mlgates", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.mlgates] must be a table, got {type(table).__name__}")
    return table


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip().strip("'\"")


def parse_ini_lines(lines: Iterable[str]) -> dict[str, Any]:
    """``gate.key = value`` / ``key = value`` lines into the pyproject table shape."""
    table: dict[str, Any] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"mlgates_thresholds: cannot read line {line!r}; "
                "write 'gate.key = value' or 'key = value'"
            )
        parsed = _toml_value(value.strip())
        gate, dot, sub = key.partition(".")
        if dot:
            sub_table = table.setdefault(gate.strip(), {})
            if not isinstance(sub_table, dict):
                raise ConfigError(f"mlgates_thresholds: {gate!r} is both a key and a table")
            sub_table[sub.strip()] = parsed
        else:
            table[key] = parsed
    return table


# ---------------------------------------------------------------------------- gate signatures


def gate_name(fn: Callable[..., Any]) -> str:
    """The config name of a gate function: its key in ``mlgates.gates.GATES`` if that is
    already imported, else its ``gate_name`` attribute or ``__name__``."""
    registry = getattr(sys.modules.get("mlgates.gates"), "GATES", None) or {}
    for key, registered in registry.items():
        if registered is fn:
            return str(key)
    name = getattr(fn, "gate_name", None) or getattr(fn, "__name__", None)
    if name is None and hasattr(fn, "func"):  # functools.partial
        return gate_name(fn.func)
    return str(name or type(fn).__name__)


def tunable_parameters(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """Keyword parameters with a default: the knobs a config table may set."""
    sig = inspect.signature(fn)
    return {
        name: p
        for name, p in sig.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty
    }


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_NUMBER = "a number"
_KINDS: dict[str, str] = {
    "float": _NUMBER,
    "int": "an integer",
    "bool": "true or false",
    "str": "a string",
    "dict": "a table",
    "Mapping": "a table",
    "MutableMapping": "a table",
    "list": "a list",
    "tuple": "a list",
    "Sequence": "a list",
    "Iterable": "a list",
    "Collection": "a list",
}


def _matches(kind: str, value: Any) -> bool:
    if kind == _NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "true or false":
        return isinstance(value, bool)
    if kind == "a string":
        return isinstance(value, str)
    if kind == "a table":
        return isinstance(value, Mapping)
    if kind == "a list":
        return isinstance(value, (list, tuple))
    return True


def _expected(annotation: Any, default: Any) -> list[str] | None:
    """What a value must be, as phrases, or None when any value may do."""
    if annotation is inspect.Parameter.empty:
        if default is None or default is inspect.Parameter.empty:
            return None
        annotation = type(default).__name__
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", None) or str(annotation)
    text = annotation.replace("typing.", "").strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()  # a quoted annotation under `from __future__ import annotations`
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional[") : -1] + " | None"
    kinds: list[str] = []
    for part in _split_top(text, "|"):
        base = part.split("[", 1)[0].strip()
        if base == "None":
            continue
        if base == "Literal":
            try:
                values = ast.literal_eval("(" + part[part.index("[") + 1 : -1] + ",)")
            except (ValueError, SyntaxError):
                return None
            kinds.extend(f"literal:{v!r}" for v in values)
            continue
        kind = _KINDS.get(base)
        if kind is None:
            return None  # a type we cannot check from config (timedelta, a schema, ...)
        kinds.append(kind)
    return kinds or None


def check_value(fn_param: inspect.Parameter, value: Any) -> str | None:
    """Why ``value`` does not fit the parameter, or None when it does."""
    kinds = _expected(fn_param.annotation, fn_param.default)
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be finite, got {value!r}"
    if kinds is None:
        return None
    literals = [k[len("literal:") :] for k in kinds if k.startswith("literal:")]
    for kind in kinds:
        if kind.startswith("literal:"):
            if repr(value) == kind[len("literal:") :]:
                return None
        elif _matches(kind, value):
            return None
    phrases = [k for k in kinds if not k.startswith("literal:")]
    if literals:
        phrases.append("one of " + ", ".join(literals))
    return f"must be {' or '.join(dict.fromkeys(phrases))}, got {type(value).__name__} {value!r}"


def check_gate_keys(
    name: str, fn: Callable[..., Any], values: Mapping[str, Any], where: str
) -> None:
    """Raise ConfigError for a key that is not a tunable parameter of ``fn`` or mistyped."""
    params = tunable_parameters(fn)
    for key, value in values.items():
        if key not in params:
            valid = ", ".join(sorted(params)) or "(none)"
            raise ConfigError(f"{where} unknown key {key!r} for gate {name!r}; valid keys: {valid}")
        problem = check_value(params[key], value)
        if problem:
            raise ConfigError(f"{where} key {key!r} of gate {name!r} {problem}")


# ---------------------------------------------------------------------------- building


def _string_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} key {key!r} must be a list of strings, got {value!r}")
    return tuple(value)


def build_config(sources: Iterable[Source], registry: RegistryLoader | Registry) -> GatesConfig:
    """Validate and merge sources (later sources win). ``registry`` is loaded only if needed."""
    loaded: list[Registry] = []

    def gates_registry() -> Registry:
        if not loaded:
            loaded.append(registry() if callable(registry) else registry)
        return loaded[0]

    inconclusive = "fail"
    manual: tuple[str, ...] = ()
    custom: tuple[str, ...] = ()
    gates: dict[str, dict[str, Any]] = {}
    settings: dict[str, Any] = {}
    labels: list[str] = []
    sources = list(sources)
    # custom_gates first: a table for a custom gate may precede the list in another source
    for source in sources:
        if "custom_gates" in source.data:
            custom = _string_list(source.data["custom_gates"], "custom_gates", source.where())
    for source in sources:
        if source.data:
            labels.append(source.label)
        for key, value in source.data.items():
            if key == "custom_gates":
                continue
            if key == "inconclusive":
                if value not in INCONCLUSIVE_POLICIES:
                    raise ConfigError(
                        f"{source.where()} key 'inconclusive' must be one of "
                        f"{', '.join(map(repr, INCONCLUSIVE_POLICIES))}, got {value!r}"
                    )
                inconclusive = value
            elif key == "rubric_manual":
                manual = _string_list(value, key, source.where())
                bad = rubric.unknown_ids(manual)
                if bad:
                    raise ConfigError(
                        f"{source.where()} key 'rubric_manual' has unknown ML Test Score "
                        f"item(s) {', '.join(map(repr, bad))}; ids are data-1..data-7, "
                        "model-1..model-7, infra-1..infra-7, monitor-1..monitor-7"
                    )
            elif key == SETTINGS_TABLE:
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{source.where()} key 'settings' must be a table")
                settings.update(value)
            elif isinstance(value, Mapping):
                where = source.where(key)
                if key in custom:
                    gates.setdefault(key, {}).update(value)
                    continue
                known = gates_registry()
                if key not in known:
                    names = ", ".join(sorted(known)) or "(none)"
                    raise ConfigError(
                        f"{where} unknown gate {key!r}; known gates: {names} "
                        "(list your own gates in [tool.mlgates] custom_gates)"
                    )
                check_gate_keys(key, known[key], value, where)
                gates.setdefault(key, {}).update(value)
            else:
                valid = ", ".join(sorted(GLOBAL_KEYS))
                raise ConfigError(
                    f"{source.where()} unknown key {key!r}; valid keys: {valid}; gate thresholds "
                    "go in [tool.mlgates.<gate>] tables, free-form values in "
                    "[tool.mlgates.settings]"
                )
    return GatesConfig(
        inconclusive=inconclusive,
        rubric_manual=manual,
        custom_gates=custom,
        gates=gates,
        settings=settings,
        sources=tuple(labels),
    )


def default_registry() -> Registry:
    """``mlgates.gates.GATES``, imported on first use (it pulls in numpy and pandas)."""
    try:
        from mlgates.gates import GATES
    except ImportError as exc:
        raise ConfigError(
            f"cannot check gate settings: mlgates.gates.GATES unavailable ({exc})"
        ) from exc
    return GATES


def load_config(
    pyproject: Path | None,
    ini_lines: Iterable[str] = (),
    ini_label: str = "ini",
    registry: RegistryLoader | Registry = default_registry,
) -> GatesConfig:
    """Read ``[tool.mlgates]`` from ``pyproject`` (if it exists) and ini lines, validated."""
    sources: list[Source] = []
    if pyproject is not None and pyproject.is_file():
        sources.append(Source(pyproject.name, read_pyproject(pyproject)))
    lines = list(ini_lines)
    if lines:
        sources.append(Source(ini_label, parse_ini_lines(lines), ini=True))
    return build_config(sources, registry)


# ---------------------------------------------------------------------------- at run time


def validate_overrides(
    name: str, overrides: Mapping[str, Any], registry: Registry, where: str
) -> None:
    """Check marker overrides for a gate known to the registry (others checked at call)."""
    if name in registry:
        check_gate_keys(name, registry[name], overrides, where)


def resolve_kwargs(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    layers: Iterable[Mapping[str, Any]],
    name: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Call kwargs plus config values for parameters the call left out.

    ``layers`` go from weakest to strongest (pyproject table, then marker overrides).
    Returns (kwargs to call with, the values that came from config/marker).
    """
    sig = inspect.signature(fn)
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"gate {name!r}: {exc}") from None
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    filled: dict[str, Any] = {}
    for key, value in merged.items():
        if key in bound.arguments:
            continue
        if key not in sig.parameters and not var_kw:
            valid = ", ".join(sorted(tunable_parameters(fn))) or "(none)"
            raise ConfigError(
                f"setting {key!r} is not a parameter of gate {name!r}; valid keys: {valid}"
            )
        filled[key] = value
    return {**kwargs, **filled}, filled
