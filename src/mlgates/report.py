"""The gate run report: versioned JSON (with its JSON Schema), markdown and the terminal table.

A report is plain data built from the recorded results (dicts from ``GateResult.to_dict()``
plus ``test`` and ``params``), so it travels from xdist workers and serialises as is.
``REPORT_SCHEMA`` describes it; ``validate(doc)`` checks a document with ``jsonschema``, an
optional dependency (extra ``schema``) imported only when a report is validated.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgates import rubric
from mlgates.result import VERDICTS, count_total, format_value

# 2.0: results include gate tests that errored or were skipped (verdict "error" /
# "skipped", with the reason as message), first deploys are "note"; summary counts all
# seven; each result carries its test's collection "order".
SCHEMA_VERSION = "2.0"
# gate verdicts, then what a gate test can end with when its gate did not decide
OUTCOMES: tuple[str, ...] = ("error", "skipped")
ALL_VERDICTS: tuple[str, ...] = (*VERDICTS, *OUTCOMES)
SUMMARY_ORDER: tuple[str, ...] = (
    "pass",
    "warn",
    "note",
    "fail",
    "inconclusive",
    "error",
    "skipped",
)

_NUM_OR_TEXT = {"type": ["number", "string", "null"]}
_STR = {"type": "string"}
_STR_OR_NULL = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://mlgates.invalid/report/{SCHEMA_VERSION}",
    "title": "mlgates report",
    "type": "object",
    "required": [
        "schema_version",
        "tool",
        "started_at",
        "finished_at",
        "duration_s",
        "exit_status",
        "environment",
        "git",
        "config",
        "summary",
        "results",
        "rubric",
    ],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "tool": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"const": "mlgates"}, "version": _STR},
        },
        "started_at": _STR,
        "finished_at": _STR,
        "duration_s": {"type": "number", "minimum": 0},
        "exit_status": {"type": "integer"},
        "environment": {
            "type": "object",
            "required": ["python", "implementation", "pytest", "platform", "machine", "cpu_count"],
            "properties": {
                "python": _STR,
                "implementation": _STR,
                "pytest": _STR,
                "platform": _STR,
                "machine": _STR,
                "processor": _STR,
                "hostname": _STR,
                "cpu_count": {"type": ["integer", "null"]},
                "xdist_workers": {"type": ["integer", "null"]},
                "ci": {"type": "boolean"},
            },
        },
        "git": {
            "type": "object",
            "required": ["commit", "dirty"],
            "properties": {"commit": _STR_OR_NULL, "dirty": {"type": ["boolean", "null"]}},
        },
        "config": {
            "type": "object",
            "required": ["inconclusive", "sources", "gates"],
            "properties": {
                "inconclusive": {"enum": ["fail", "warn"]},
                "sources": {"type": "array", "items": _STR},
                "gates": {"type": "object", "additionalProperties": {"type": "object"}},
                "rubric_manual": {"type": "array", "items": _STR},
            },
        },
        "summary": {
            "type": "object",
            "required": ["total", *SUMMARY_ORDER],
            "additionalProperties": False,
            "properties": {"total": _COUNT, **{v: _COUNT for v in SUMMARY_ORDER}},
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "test",
                    "name",
                    "verdict",
                    "passed",
                    "measured",
                    "threshold",
                    "message",
                    "rubric",
                    "details",
                ],
                "properties": {
                    "test": _STR,
                    "name": _STR,
                    "verdict": {"enum": list(ALL_VERDICTS)},
                    "passed": {"type": "boolean"},
                    "measured": _NUM_OR_TEXT,
                    "threshold": _NUM_OR_TEXT,
                    "unit": _STR,
                    "direction": {"enum": ["max", "min", ""]},
                    "message": _STR,
                    "hint": _STR,
                    "rubric": {"type": "array", "items": {"enum": sorted(rubric.ITEMS)}},
                    "details": {"type": "object"},
                    "params": {"type": "object"},
                    "order": {"type": ["integer", "null"], "minimum": 0},
                },
            },
        },
        "rubric": {
            "type": "object",
            "required": ["final", "interpretation", "sections", "points", "uncovered"],
            "properties": {
                "final": {"type": "number", "minimum": 0, "maximum": 7},
                "interpretation": _STR,
                "sections": {
                    "type": "object",
                    "required": list(rubric.SECTIONS),
                    "additionalProperties": False,
                    "properties": {
                        s: {"type": "number", "minimum": 0, "maximum": 7} for s in rubric.SECTIONS
                    },
                },
                "points": {
                    "type": "object",
                    "additionalProperties": {"enum": [0, 0.5, 1]},
                },
                "uncovered": {"type": "array", "items": {"enum": sorted(rubric.ITEMS)}},
                "manual": {"type": "array", "items": {"enum": sorted(rubric.ITEMS)}},
                "covering": {"type": "object"},
            },
        },
    },
}


# ---------------------------------------------------------------------------- validation

SCHEMA_EXTRA = "pip install 'mlgates[schema]'"


def _document_order(error: Any) -> list[tuple[int, int, str]]:
    # list indices sort as numbers ([2] before [10]), keys as text
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]


def validate(doc: Any, schema: Mapping[str, Any] = REPORT_SCHEMA) -> list[str]:
    """Errors of ``doc`` against ``schema`` as ``"<JSON path>: <message>"`` lines, in document
    order; an empty list means valid.

    The validator is ``jsonschema`` (the ``schema`` extra), imported here only: the plugin
    writes reports without it, and only checking one needs it. ImportError names the extra.
    """
    try:
        import jsonschema
    except ImportError:
        raise ImportError(
            f"validating a report needs jsonschema, which mlgates does not require: {SCHEMA_EXTRA}"
        ) from None
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(doc), key=_document_order)
    return [f"{error.json_path}: {error.message}" for error in errors]


# ---------------------------------------------------------------------------- facts


def git_state(cwd: Path) -> dict[str, Any]:
    """The commit checked out in ``cwd`` and whether the tree has changes (None if unknown)."""

    def run(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def environment(pytest_version: str, xdist_workers: int | None = None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pytest": pytest_version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "xdist_workers": xdist_workers,
        "ci": bool(os.environ.get("CI")),
    }


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlgates")
    except PackageNotFoundError:
        return "unknown"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def counts(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out = {"total": len(results), **dict.fromkeys(SUMMARY_ORDER, 0)}
    for r in results:
        verdict = str(r.get("verdict"))
        if verdict in out:
            out[verdict] += 1
    return out


def build_report(
    results: Sequence[Mapping[str, Any]],
    *,
    score: rubric.RubricScore,
    started_at: float,
    finished_at: float,
    exit_status: int,
    env: Mapping[str, Any],
    git: Mapping[str, Any],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mlgates", "version": tool_version()},
        "started_at": iso(started_at),
        "finished_at": iso(finished_at),
        "duration_s": round(max(0.0, finished_at - started_at), 3),
        "exit_status": int(exit_status),
        "environment": dict(env),
        "git": dict(git),
        "config": dict(config),
        "summary": counts(results),
        "results": [dict(r) for r in results],
        "rubric": score.to_dict(),
    }


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- text


def fmt_number(value: Any) -> str:
    return format_value(value)


def fmt_measured(r: Mapping[str, Any]) -> str:
    unit = str(r.get("unit") or "")
    return format_value(r.get("measured"), unit, count_total(unit, r.get("details")))


def fmt_threshold(r: Mapping[str, Any]) -> str:
    if r.get("threshold") is None:
        return "-"
    op = {"max": "<= ", "min": ">= "}.get(str(r.get("direction") or ""), "")
    return op + format_value(r.get("threshold"), str(r.get("unit") or ""))


def table_rows(results: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            str(r.get("name")),
            str(r.get("test")),
            fmt_measured(r),
            fmt_threshold(r),
            str(r.get("verdict")).upper(),
        )
        for r in results
    ]


HEADER = ("gate", "test", "measured", "threshold", "verdict")
# rows whose message is the point (why nothing was measured): shown under the row
EXPLAINED = frozenset({"note", "error", "skipped"})
MIN_TEST_WIDTH = 40
REASON_LINES = 4


def id_pieces(text: str) -> list[str]:
    """A test id split after each ``/``, ``::`` and ``[``: the places it may wrap."""
    pieces: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in "/[" or (ch == ":" and text[i - 1 : i] == ":"):
            pieces.append(text[start : i + 1])
            start = i + 1
    pieces.append(text[start:])
    return [p for p in pieces if p]


def wrap_id(text: str, width: int) -> list[str]:
    """A test id in lines of at most ``width``, broken after ``/``, ``::`` or ``[`` where
    possible: the whole id, never cut."""
    if len(text) <= width:
        return [text]
    lines: list[str] = [""]
    for piece in id_pieces(text):
        while piece:
            room = width - len(lines[-1])
            if len(piece) <= room:
                lines[-1] += piece
                piece = ""
            elif lines[-1]:
                lines.append("")
            else:  # longer than a whole line: cut it
                lines[-1], piece = piece[:width], piece[width:]
                lines.append("")
    return [line for line in lines if line]


def table_blocks(
    results: Sequence[Mapping[str, Any]], width: int = 120
) -> tuple[str, list[list[str]]]:
    """The header line and, per result, its lines: the row, the whole test id (never
    shortened) and, for notes, errors and skips, the reason under it.

    The test id is a column when it fits in ``width``, or wraps in a column of at least
    ``MIN_TEST_WIDTH`` at ``/`` and ``::`` only; otherwise it goes on its own lines under
    the row, so the figures stay on one line and no name is cut if it fits a line."""
    rows = table_rows(results)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER)]
    others = sum(widths) - widths[1] + 2 * (len(HEADER) - 1)
    room = width - others
    # a column only if every id wraps there at / and :: (no word cut) with room to read
    inline = room >= widths[1] or (
        room >= MIN_TEST_WIDTH
        and all(len(piece) <= room for row in rows for piece in id_pieces(row[1]))
    )
    columns = list(range(len(HEADER))) if inline else [0, 2, 3, 4]
    if inline:
        widths[1] = min(widths[1], room)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cells[i].ljust(widths[i]) for i in columns).rstrip()

    blocks: list[list[str]] = []
    for r, row in zip(results, rows, strict=True):
        if inline:
            parts = wrap_id(row[1], widths[1])
            block = [line((row[0], parts[0], *row[2:]))]
            block += [line(("", part, "", "", "")) for part in parts[1:]]
        else:
            block = [line(row)]
            block += ["  " + part for part in wrap_id(row[1], max(20, width - 2))]
        if str(r.get("verdict")) in EXPLAINED and r.get("message"):
            indent = "    "
            reason = textwrap.wrap(
                str(r.get("message")),
                max(20, width - len(indent)),
                break_on_hyphens=False,
                max_lines=REASON_LINES,
                placeholder=" ... (full text in the test's report and the JSON report)",
            )
            block += [indent + text for text in reason]
        blocks.append(block)
    return line(HEADER), blocks


def text_table(results: Sequence[Mapping[str, Any]], width: int = 120) -> list[str]:
    """Fixed-width lines of ``table_blocks``: header, then every result's lines."""
    header, blocks = table_blocks(results, width)
    return [header, *(text for block in blocks for text in block)]


def summary_line(results: Sequence[Mapping[str, Any]]) -> str:
    c = counts(results)
    parts = [f"{c[v]} {v}" for v in SUMMARY_ORDER if c[v]]
    noun = "result" if c["total"] == 1 else "results"
    return f"{c['total']} gate {noun}" + (": " + ", ".join(parts) if parts else "")


def score_lines(score: rubric.RubricScore, verbose: bool = False) -> list[str]:
    sections = "  ".join(f"{s} {score.sections[s]:g}/7" for s in rubric.SECTIONS)
    lines = [
        f"ML Test Score (Breck et al. 2017): {score.final:g}  (minimum over sections: {sections})",
        f"  {score.interpretation}",
    ]
    failing = [i for i in score.covering if score.points[i] == 0]
    if failing:
        lines.append(
            "  covered but not passing (0 points): "
            + ", ".join(f"{i} ({', '.join(score.covering[i])})" for i in failing)
        )
    if score.uncovered:
        lines.append(f"  not covered by any gate ({len(score.uncovered)} of {len(rubric.ITEMS)}):")
        for section in rubric.SECTIONS:
            ids = [i for i in score.uncovered if rubric.ITEMS[i].section == section]
            if not ids:
                continue
            if verbose:
                lines.extend(f"    {i}: {rubric.ITEMS[i].title}" for i in ids)
            else:
                lines.append(f"    {section}: {', '.join(ids)}")
            lines.extend(f"      {i}: {rubric.why_uncovered(i)}" for i in ids)
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(
    results: Sequence[Mapping[str, Any]], score: rubric.RubricScore, title: str = "mlgates"
) -> str:
    lines = [f"### {title}: {summary_line(results)}", ""]
    if results:
        lines += [
            "| verdict | gate | test | measured | threshold |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        for name, test, measured, threshold, verdict in table_rows(results):
            shown = f"**{verdict}**" if verdict in ("FAIL", "INCONCLUSIVE", "ERROR") else verdict
            lines.append(
                f"| {shown} | {_md(name)} | `{_md(test)}` | {_md(measured)} | {_md(threshold)} |"
            )
        lines.append("")
        explained = [r for r in results if str(r.get("verdict")) in EXPLAINED]
        if explained:
            lines.append("Notes, errors and skips:")
            lines.append("")
            for r in explained:
                lines.append(
                    f"- {str(r.get('verdict')).upper()} `{_md(str(r.get('test')))}`: "
                    f"{_md(str(r.get('message') or ''))}"
                )
            lines.append("")
    sections = ", ".join(f"{s} {score.sections[s]:g}/7" for s in rubric.SECTIONS)
    lines.append(f"**ML Test Score**: {score.final:g} (minimum over sections: {sections}). ")
    lines.append(f"{score.interpretation}")
    if score.uncovered:
        lines += ["", f"Not covered by any gate: {', '.join(score.uncovered)}", ""]
        lines += [f"- {i}: {rubric.why_uncovered(i)}" for i in score.uncovered]
    return "\n".join(lines) + "\n"


def append_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlgates.report --schema`` prints the JSON Schema of the report;
    ``--validate REPORT.json`` checks one (needs the ``schema`` extra)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--schema"]:
        print(json.dumps(REPORT_SCHEMA, indent=2))
        return 0
    if len(args) == 2 and args[0] == "--validate":
        doc = json.loads(Path(args[1]).read_text(encoding="utf-8"))
        try:
            errors = validate(doc)
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for e in errors:
            print(e, file=sys.stderr)
        return 1 if errors else 0
    print("usage: python -m mlgates.report --schema | --validate REPORT.json", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
