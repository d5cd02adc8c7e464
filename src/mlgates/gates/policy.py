"""Policy gates: no personal data where it must not be (``pii_scan``), model inputs that
are declared, owned and allowed (``feature_policy``), and a model whose specification is
the one committed (``spec_in_version_control``).

They take plain data (frames, bytes, mappings, a callable), not a feature store, a registry
or a git library, so any project can feed them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgates.gates._common import as_list
from mlgates.result import GateInputError, GateResult

# ----------------------------------------------------------------------------- pii_scan

#: the default sample size per frame; larger frames are scanned on a seeded row sample
MAX_ROWS = 200_000
#: text of a file or blob scanned (its first bytes); ONNX models of mlref are ~100 kB
MAX_BYTES = 64 * 1024 * 1024

_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9])"
# In binary data (a model's weights, a database's pages) random bytes spell short e-mail-like
# runs ("1@S.kP"): about one per MB of float arrays, measured on 336 MB of seeded random
# floats, ints and bytes. There an address must look like one people write: a local part
# and a domain label of 2+ characters, a lower-case domain; 0 matches in the same 336 MB.
_EMAIL_IN_BINARY = (
    r"[A-Za-z0-9][A-Za-z0-9._%+-]{1,63}"
    r"@[a-z0-9][a-z0-9-]{1,62}(?:\.[a-z0-9-]{2,63})*\.[a-z]{2,24}(?![A-Za-z0-9])"
)
# 13-19 digits, optionally grouped by spaces or dashes (how card numbers are written)
_CARD = r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])"
_IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])"
# international format (+ country code) or the North-American (NPA) NXX-XXXX; a bare digit
# run is not a phone number here (ids, amounts and timestamps are digit runs)
_PHONE = (
    r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}|\(\d{3}\) ?\d{3}-\d{4})"
)


@dataclass(frozen=True)
class _Pattern:
    name: str
    regex: re.Pattern[str]
    # True when a candidate passes the checksum that makes it one (Luhn, mod-97)
    check: Any = None


def luhn_valid(digits: Iterable[str]) -> np.ndarray:
    """Luhn checksum of each digit string (separators ignored), vectorised over the strings.

    Right-aligned in a zero-padded matrix: leading zeros do not change a Luhn sum.
    """
    clean = [re.sub(r"\D", "", d) for d in digits]
    if not clean:
        return np.zeros(0, bool)
    width = max(len(c) for c in clean)
    padded = np.array([c.rjust(width, "0") for c in clean], dtype=f"U{width}")
    mat = padded.view(np.uint32).reshape(len(clean), width).astype(np.int64) - ord("0")
    doubled = np.zeros(width, bool)
    doubled[-2::-2] = True  # every second digit from the right
    vals = np.where(doubled, mat * 2, mat)
    vals = np.where(vals > 9, vals - 9, vals)
    lengths = np.array([len(c) for c in clean])
    return (vals.sum(axis=1) % 10 == 0) & (lengths >= 13) & (lengths <= 19)


def iban_valid(values: Iterable[str]) -> np.ndarray:
    """ISO 13616 mod-97 check of each candidate IBAN (spaces ignored)."""
    out = []
    for value in values:
        s = value.replace(" ", "").upper()
        if not 15 <= len(s) <= 34:
            out.append(False)
            continue
        moved = s[4:] + s[:4]
        number = "".join(str(int(ch, 36)) for ch in moved)
        out.append(int(number) % 97 == 1)
    return np.array(out, bool)


def _ip_valid(values: Iterable[str]) -> np.ndarray:
    # unspecified and loopback addresses identify no one (and appear in configs, logs)
    return np.array([not v.startswith(("0.", "127.")) for v in values], bool)


PATTERNS: dict[str, _Pattern] = {
    "email": _Pattern("email", re.compile(_EMAIL)),
    "card_number": _Pattern("card_number", re.compile(_CARD), luhn_valid),
    "iban": _Pattern("iban", re.compile(_IBAN), iban_valid),
    "ip_address": _Pattern("ip_address", re.compile(_IPV4), _ip_valid),
    "phone": _Pattern("phone", re.compile(_PHONE)),
}
_BINARY_EMAIL = _Pattern("email", re.compile(_EMAIL_IN_BINARY))


def mask(value: str, pattern: str) -> str:
    """A finding as it may appear in a CI log: enough to find it, never the value."""
    value = str(value)
    if pattern == "email" and "@" in value:
        local, _, domain = value.partition("@")
        tld = domain.rsplit(".", 1)[-1]
        return f"{local[:1]}***@***.{tld}"
    if pattern == "ip_address":
        parts = value.split(".")
        return ".".join([parts[0], *("x" * len(p) for p in parts[1:])])
    if pattern == "column":
        return "<column named as personal data>"
    digits = re.sub(r"[^0-9A-Za-z]", "", value)
    keep = 4 if pattern in ("card_number", "iban") else 2
    head = digits[:2] if pattern == "iban" else ""
    return head + "*" * max(len(digits) - keep - len(head), 0) + digits[-keep:]


def _text_columns(frame: pd.DataFrame) -> list[Any]:
    return [
        c
        for c in frame.columns
        if pd.api.types.is_object_dtype(frame[c].dtype)
        or pd.api.types.is_string_dtype(frame[c].dtype)
        or isinstance(frame[c].dtype, pd.CategoricalDtype)
    ]


def _card_like_ints(series: pd.Series) -> pd.Series | None:
    """An integer column holding 13-19 digit values, as text (a card number stored as int)."""
    if not pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return None
    values = series.dropna()
    big = values[values.abs() >= 10**12]
    return big.astype(str) if len(big) else None


def _scan_text(series: pd.Series, patterns: list[_Pattern]) -> list[tuple[str, int, str]]:
    """(pattern, matching values, first match) for each pattern found in a text column."""
    text = series.dropna().astype(str)
    if text.empty:
        return []
    found = []
    for pat in patterns:
        hit = text.str.contains(pat.regex, regex=True)
        if not hit.any():
            continue
        candidates = text[hit].str.extract(f"({pat.regex.pattern})", expand=False)
        if pat.check is not None:
            ok = pat.check(candidates.tolist())
            candidates = candidates[ok]
        if len(candidates):
            found.append((pat.name, len(candidates), str(candidates.iloc[0])))
    return found


def _scan_blob(text: str, patterns: list[_Pattern]) -> list[tuple[str, int, str]]:
    found = []
    for pat in patterns:
        candidates = [m.group(0) for m in pat.regex.finditer(text)]
        if pat.check is not None and candidates:
            ok = pat.check(candidates)
            candidates = [c for c, k in zip(candidates, ok, strict=True) if k]
        if candidates:
            found.append((pat.name, len(candidates), candidates[0]))
    return found


def _as_sources(sources: Any) -> dict[str, Any]:
    if isinstance(sources, (pd.DataFrame, bytes, str, Path)):
        return {"input": sources}
    if isinstance(sources, Mapping):
        if not sources:
            raise GateInputError("sources is empty: name at least one frame, file or blob")
        return {str(k): v for k, v in sources.items()}
    raise GateInputError(
        "sources must be a DataFrame, bytes, a path, or a mapping name -> one of these; "
        f"got {type(sources).__name__}"
    )


def pii_scan(
    sources: Any,
    *,
    patterns: Iterable[str] | None = None,
    pii_columns: Iterable[str] = (),
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> GateResult:
    """No personal data in ``sources`` (frames, files or bytes, by name).

    Scans each text column of each frame (``Series.str.contains``, vectorised) and the text
    of each file/blob (decoded as latin-1, so binary artefacts like an ONNX model are read
    for embedded strings; in a binary blob, one holding a NUL byte, an ``email`` must have a
    local part and a domain label of 2+ characters and a lower-case domain, because random
    bytes of float arrays spell short ones like ``1@S.kP`` about once per MB) for the
    ``patterns`` (default all): ``email``, ``card_number``
    (13-19 digits passing the Luhn check, so an id that fails Luhn is not flagged),
    ``iban`` (ISO 13616 mod-97 checked), ``ip_address`` (IPv4; loopback and 0.x excluded)
    and ``phone`` (international ``+`` form or ``(NNN) NNN-NNNN``). Integer columns whose
    values have 13-19 digits are Luhn-checked too (a card number stored as a number). A
    column whose name is in ``pii_columns`` (case-insensitive) fails by its name alone.

    Frames over ``max_rows`` rows are scanned on a seeded sample of ``max_rows`` rows (the
    result says so): a rare leak may then be missed, so pass the full frame where it
    matters. Measured: values found (0 to pass). Findings report source, column, pattern,
    count and a MASKED example, never the raw value.
    """
    named = _as_sources(sources)
    names = list(PATTERNS) if patterns is None else as_list(patterns)
    unknown = [p for p in names if p not in PATTERNS]
    if unknown or not names:
        raise GateInputError(
            f"patterns: unknown {unknown or '(none given)'}; choose from {list(PATTERNS)}"
        )
    active = [PATTERNS[p] for p in names]
    flagged_names = {c.lower() for c in as_list(pii_columns)}
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
        raise GateInputError(f"max_rows must be a positive integer, got {max_rows!r}")

    findings: list[dict[str, Any]] = []
    scanned: list[dict[str, Any]] = []
    for source, obj in named.items():
        if isinstance(obj, pd.DataFrame):
            frame = obj
            sampled = len(frame) > max_rows
            if sampled:
                frame = frame.sample(n=max_rows, random_state=seed)
            scanned.append(
                {"source": source, "kind": "frame", "rows": len(obj), "scanned": len(frame)}
            )
            for col in frame.columns:
                if str(col).lower() in flagged_names:
                    findings.append(_finding(source, col, "column", len(obj), "", sampled))
            for col in _text_columns(frame):
                for pat, count, example in _scan_text(frame[col], active):
                    findings.append(_finding(source, col, pat, count, example, sampled))
            if any(p.name == "card_number" for p in active):
                for col in frame.columns:
                    as_text = _card_like_ints(frame[col])
                    if as_text is None:
                        continue
                    for pat, count, example in _scan_text(as_text, [PATTERNS["card_number"]]):
                        findings.append(_finding(source, col, pat, count, example, sampled))
        elif isinstance(obj, (bytes, bytearray, str, Path)):
            data = _read_blob(source, obj)
            scanned.append({"source": source, "kind": "bytes", "bytes": len(data)})
            head = data[:MAX_BYTES]
            text = head.decode("latin-1")
            binary = b"\x00" in head  # no text file holds a NUL byte
            blob_patterns = [_BINARY_EMAIL if binary and p.name == "email" else p for p in active]
            scanned[-1]["binary"] = binary
            for pat, count, example in _scan_blob(text, blob_patterns):
                findings.append(_finding(source, None, pat, count, example, False))
        else:
            raise GateInputError(
                f"sources[{source!r}] must be a DataFrame, bytes or a path, "
                f"got {type(obj).__name__}"
            )

    any_sampled = [s["source"] for s in scanned if s.get("scanned", 0) < s.get("rows", 0)]
    sample_note = (
        f" (sampled {max_rows:,} rows, seed {seed}, of: {', '.join(any_sampled)})"
        if any_sampled
        else ""
    )
    details = {"sources": scanned, "findings": findings, "patterns": names}
    what = ", ".join(s["source"] for s in scanned)
    if not findings:
        return GateResult(
            name="pii_scan",
            verdict="pass",
            measured=0.0,
            threshold=0.0,
            direction="max",
            unit=" values",
            message=f"no personal data ({', '.join(names)}) found in {what}{sample_note}",
            details=details,
            rubric=("data-5",),
        )
    total = float(sum(f["count"] for f in findings))
    listed = "; ".join(
        f"{f['source']}"
        + (f".{f['column']}" if f["column"] is not None else "")
        + f": {f['pattern']} x{f['count']} (e.g. {f['example']})"
        for f in findings[:10]
    )
    more = f"; and {len(findings) - 10} more" if len(findings) > 10 else ""
    return GateResult(
        name="pii_scan",
        verdict="fail",
        measured=total,
        threshold=0.0,
        direction="max",
        unit=" values",
        message=(
            f"personal data found in {len({f['source'] for f in findings})} of "
            f"{len(scanned)} source(s): {listed}{more}{sample_note}"
        ),
        hint=(
            "drop or keyed-hash the named columns before features, training sets, model "
            "artefacts and logs (the pipeline's privacy step), and purge the copies already "
            "written; masked examples above, raw values are never printed"
        ),
        details=details,
        rubric=("data-5",),
    )


def _finding(
    source: str, column: Any, pattern: str, count: int, example: str, sampled: bool
) -> dict[str, Any]:
    return {
        "source": source,
        "column": None if column is None else str(column),
        "pattern": pattern,
        "count": int(count),
        "example": mask(example, pattern),
        "sampled": sampled,
    }


def _read_blob(source: str, obj: bytes | bytearray | str | Path) -> bytes:
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    path = Path(obj)
    if not path.is_file():
        raise GateInputError(f"sources[{source!r}]: no file at {path}")
    with path.open("rb") as fh:
        return fh.read(MAX_BYTES)


# ------------------------------------------------------------------------ feature_policy


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z0-9_]+", text)}


def feature_policy(
    inputs: Iterable[str],
    declarations: Mapping[str, Mapping[str, Any]],
    *,
    forbidden: Iterable[str] = (),
    required: Iterable[str] = ("owner", "source"),
) -> GateResult:
    """Every model input is declared, owned and allowed.

    ``inputs`` are the names the model consumes (e.g. its ONNX input metadata);
    ``declarations`` maps each declared feature to its metadata (e.g. the tags of the
    feature store's fields: ``{"owner": "fraud-ml", "source": "txn_request.amount"}``).
    An input fails when it is not declared, when a ``required`` field of its declaration is
    missing or blank, when its name is in ``forbidden`` (protected attributes, raw
    identifiers; case-insensitive), or when its declared ``source`` names a forbidden
    column as a word (a protected attribute re-encoded under another name). Measured:
    inputs in violation (0 to pass); details list each input's problems.
    """
    if isinstance(inputs, str):
        raise GateInputError("inputs must be a list of feature names, not one string")
    try:
        names = [str(n) for n in inputs]
    except TypeError as exc:
        raise GateInputError(f"inputs must be a list of feature names: {exc}") from exc
    if not names:
        raise GateInputError("inputs is empty: pass the names the model consumes")
    if not isinstance(declarations, Mapping):
        raise GateInputError(
            "declarations must be a mapping feature name -> metadata mapping, got "
            f"{type(declarations).__name__}"
        )
    bad_meta = [k for k, v in declarations.items() if not isinstance(v, Mapping)]
    if bad_meta:
        raise GateInputError(
            f"declarations[{bad_meta[0]!r}] must be a mapping of metadata (owner, source, ...), "
            f"got {type(declarations[bad_meta[0]]).__name__}"
        )
    banned = {f.lower() for f in as_list(forbidden)}
    fields = as_list(required)

    rows: list[dict[str, Any]] = []
    for name in names:
        problems: list[str] = []
        meta = declarations.get(name)
        if meta is None:
            problems.append("not declared")
        else:
            missing = [f for f in fields if not str(meta.get(f) or "").strip()]
            if missing:
                problems.append(f"no {' / '.join(missing)}")
        if name.lower() in banned:
            problems.append("forbidden input")
        elif meta is not None:
            hit = sorted(_words(str(meta.get("source") or "")) & banned)
            if hit:
                problems.append(f"derived from forbidden {', '.join(hit)}")
        rows.append({"input": name, "problems": problems, "declared": meta is not None})
    failing = [r for r in rows if r["problems"]]
    details = {
        "total": len(names),
        "inputs": rows,
        "forbidden": sorted(banned),
        "required": fields,
    }
    if not failing:
        return GateResult(
            name="feature_policy",
            verdict="pass",
            measured=0.0,
            threshold=0.0,
            direction="max",
            unit=" features",
            message=(
                f"all {len(names)} model inputs are declared with {', '.join(fields) or 'a'} "
                f"declaration and none of {len(banned)} forbidden name(s) is used"
            ),
            details=details,
            rubric=("data-4",),
        )
    listed = "; ".join(f"{r['input']}: {', '.join(r['problems'])}" for r in failing)
    return GateResult(
        name="feature_policy",
        verdict="fail",
        measured=float(len(failing)),
        threshold=0.0,
        direction="max",
        unit=" features",
        message=f"{len(failing)} of {len(names)} model input(s) break the feature policy: {listed}",
        hint=(
            "declare each input in the feature definitions with its owner and source; remove "
            "forbidden inputs (and features derived from them) from the model, or take the "
            "name off the forbidden list only after a review says it may be used"
        ),
        details=details,
        rubric=("data-4",),
    )


# ---------------------------------------------------------------- spec_in_version_control


def spec_in_version_control(
    record: Mapping[str, Any],
    committed_hash: Callable[[str], str | None] | None,
) -> GateResult:
    """The model was trained from a specification that is committed, unchanged.

    ``record`` is what training recorded (e.g. the model's tracking-run tags): ``commit``
    (the checked-out commit), ``dirty_files`` (specification files that differed from it),
    and ``spec_hash`` (a hash of the specification files as trained). ``committed_hash``
    maps a commit to the same hash of the files as that commit holds them (None when the
    commit is not in the repository); pass None when no repository is at hand.

    Fails when training recorded no commit or hash, when the tree was dirty, when the
    commit is not in the repository (unpushed, rebased away), or when the committed files
    hash differently from the trained ones. Without a repository the record alone can
    only show a dirty tree (fail); anything else is inconclusive, with what would settle
    it. Measured: failed checks (0 to pass).
    """
    if not isinstance(record, Mapping):
        raise GateInputError(
            f"record must be a mapping (commit, dirty_files, spec_hash), got {type(record).__name__}"
        )
    if committed_hash is not None and not callable(committed_hash):
        raise GateInputError(
            "committed_hash must be a callable commit -> hash (or None without a repository), "
            f"got {type(committed_hash).__name__}"
        )
    commit = str(record.get("commit") or "").strip()
    recorded = str(record.get("spec_hash") or "").strip()
    dirty_raw = record.get("dirty_files") or ()
    dirty = [dirty_raw] if isinstance(dirty_raw, str) else [str(f) for f in dirty_raw]
    problems: list[str] = []
    if not commit:
        problems.append("training recorded no commit (trained outside a git checkout?)")
    if not recorded:
        problems.append("training recorded no specification hash")
    if dirty:
        problems.append(f"the tree was dirty at training: uncommitted {', '.join(dirty)}")
    details: dict[str, Any] = {
        "commit": commit,
        "dirty_files": dirty,
        "recorded_hash": recorded,
        "committed_hash": None,
    }
    if committed_hash is None and not dirty:
        # a dirty tree is known from the record alone; anything else needs the repository
        return GateResult(
            name="spec_in_version_control",
            verdict="inconclusive",
            measured=None,
            threshold=0.0,
            message=(
                f"the model records commit {commit[:12] or '(none)'} but there is no "
                "repository to check it against" + (f" ({'; '.join(problems)})" if problems else "")
            ),
            hint=(
                "run from a git clone that holds the commit (a shallow CI checkout needs "
                "fetch-depth: 0 or `git fetch --unshallow`)"
            ),
            details=details,
            rubric=("model-1",),
        )
    if commit and committed_hash is not None:
        committed = committed_hash(commit)
        details["committed_hash"] = committed
        if committed is None:
            problems.append(f"commit {commit[:12]} is not in the repository")
        elif recorded and committed != recorded:
            problems.append(
                f"the specification committed at {commit[:12]} differs from the one trained "
                f"(hash {committed[:12]} vs recorded {recorded[:12]})"
            )
    if not problems:
        return GateResult(
            name="spec_in_version_control",
            verdict="pass",
            measured=0.0,
            threshold=0.0,
            direction="max",
            unit=" problems",
            message=(
                f"trained from commit {commit[:12]} with a clean tree; the committed "
                f"specification hashes to the recorded {recorded[:12]}"
            ),
            details=details,
            rubric=("model-1",),
        )
    return GateResult(
        name="spec_in_version_control",
        verdict="fail",
        measured=float(len(problems)),
        threshold=0.0,
        direction="max",
        unit=" problems",
        message="the model's specification is not the committed one: " + "; ".join(problems),
        hint=(
            "commit the specification (config, training code, feature definitions), then "
            "retrain from the clean commit and register that model"
        ),
        details=details,
        rubric=("model-1",),
    )


__all__ = [
    "PATTERNS",
    "feature_policy",
    "iban_valid",
    "luhn_valid",
    "mask",
    "pii_scan",
    "spec_in_version_control",
]
