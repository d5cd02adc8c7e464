"""``dependency_drift`` (ML Test Score monitor-1): the environment a model was validated in
against the one it runs in, and ``capture_environment``, which records one.

An environment is a mapping::

    {"python": "3.12.3", "packages": {"numpy": "2.1.3", "xgboost": "2.1.1", ...},
     "lockfile_sha256": "ab12..." or None}

(a flat ``{package: version}`` mapping, with an optional ``"python"`` key, is read too).
Record it with the model at training (``capture_environment(lockfile="uv.lock")``, e.g. as
an MLflow run tag) and compare it where the model serves or in CI.

Verdicts: fail when a package that computes scores (``score_packages``) changed its major
version or went missing, unless ``revalidated_in`` (the environment in which the model's
parity was re-run and passed) has exactly the current versions of those packages; warn on
any other change (a minor/patch version, another package, Python, the lockfile hash); pass
when nothing changed. "Major" is the first version component, or the second while the
first is 0 (semantic versioning's 0.y convention: 0.17 -> 0.18 may break).
"""

from __future__ import annotations

import hashlib
import platform
import re
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from mlgates.result import GateInputError, GateResult

SCORE_PACKAGES: tuple[str, ...] = ("numpy", "xgboost", "onnxruntime", "onnx", "scikit-learn")
DEFAULT_PACKAGES: tuple[str, ...] = (*SCORE_PACKAGES, "scipy", "pandas", "feast", "mlflow")


def _norm(name: str) -> str:
    """PEP 503 name normalisation: ``Scikit_Learn`` and ``scikit-learn`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def capture_environment(
    packages: Iterable[str] = DEFAULT_PACKAGES, lockfile: str | Path | None = None
) -> dict[str, Any]:
    """This interpreter's environment: Python version, installed versions of ``packages``
    (None when not installed; via ``importlib.metadata``) and the SHA-256 of ``lockfile``."""
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[_norm(name)] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[_norm(name)] = None
    digest = None
    if lockfile is not None:
        path = Path(lockfile)
        if not path.is_file():
            raise GateInputError(f"lockfile {str(path)!r} does not exist")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "python": platform.python_version(),
        "packages": versions,
        "lockfile_sha256": digest,
    }


def _environment(env: Any, what: str) -> tuple[str | None, dict[str, str | None], str | None]:
    if not isinstance(env, Mapping):
        raise GateInputError(
            f"{what} must be a mapping (capture_environment()'s shape or package -> version), "
            f"got {type(env).__name__}"
        )
    if "packages" in env:
        packages = env["packages"]
        if not isinstance(packages, Mapping):
            raise GateInputError(f"{what}['packages'] must be a mapping package -> version")
        python, lock = env.get("python"), env.get("lockfile_sha256")
    else:
        packages = {k: v for k, v in env.items() if k not in ("python", "lockfile_sha256")}
        python, lock = env.get("python"), env.get("lockfile_sha256")
    out: dict[str, str | None] = {}
    for name, version in packages.items():
        if version is not None and not isinstance(version, str):
            raise GateInputError(
                f"{what}: version of {name!r} must be a string or None, got {version!r}"
            )
        out[_norm(str(name))] = version
    return (None if python is None else str(python)), out, (None if lock is None else str(lock))


def _major(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", version.split("+")[0])[:2]] or [0]
    return tuple(parts[:2]) if parts[0] == 0 else (parts[0],)


def dependency_drift(
    recorded: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
    score_packages: list[str] | tuple[str, ...] = SCORE_PACKAGES,
    revalidated_in: Mapping[str, Any] | None = None,
) -> GateResult:
    """The environment recorded with the model against the current one.

    ``recorded``: the model's environment (``capture_environment`` at training).
    ``current``: where it runs now (default: this interpreter, for the packages
    ``recorded`` names). ``score_packages``: packages that compute scores, whose major
    version change fails. ``revalidated_in``: the environment a parity re-run passed in;
    when its versions of the score packages are the current ones, a major change warns
    instead. Measured: score packages with a major change (threshold 0).
    """
    rec_py, rec_pkgs, rec_lock = _environment(recorded, "recorded")
    if not rec_pkgs:
        raise GateInputError("recorded names no packages: record the model's environment first")
    if current is None:
        current = capture_environment(rec_pkgs)
    cur_py, cur_pkgs, cur_lock = _environment(current, "current")
    scoring = {_norm(p) for p in score_packages}
    revalidated = (
        None if revalidated_in is None else _environment(revalidated_in, "revalidated_in")[1]
    )

    changes: list[dict[str, Any]] = []
    for name in sorted(set(rec_pkgs) | set(cur_pkgs)):
        before, after = rec_pkgs.get(name), cur_pkgs.get(name)
        if before == after:
            continue
        if before is None or after is None:
            major = name in scoring and before is not None  # went missing
            kind = "removed" if after is None else "added"
        else:
            major = _major(before) != _major(after)
            kind = "major" if major else "minor"
        changes.append(
            {
                "package": name,
                "recorded": before,
                "current": after,
                "change": kind,
                "scores": name in scoring,
                "blocking": bool(major and name in scoring),
            }
        )
    blocking = [c for c in changes if c["blocking"]]
    cleared = bool(
        blocking
        and revalidated is not None
        and all(revalidated.get(c["package"]) == c["current"] for c in blocking)
    )
    other: list[str] = []
    if rec_py is not None and cur_py is not None and rec_py != cur_py:
        other.append(f"Python {rec_py} -> {cur_py}")
    if rec_lock is not None and cur_lock is not None and rec_lock != cur_lock:
        other.append(f"lockfile hash {rec_lock[:12]} -> {cur_lock[:12]}")

    details: dict[str, Any] = {
        "changes": changes,
        "python": {"recorded": rec_py, "current": cur_py},
        "lockfile_sha256": {"recorded": rec_lock, "current": cur_lock},
        "score_packages": sorted(scoring),
        "revalidated": cleared,
    }

    def show(c: dict[str, Any]) -> str:
        return f"{c['package']} {c['recorded'] or '(absent)'} -> {c['current'] or '(absent)'}"

    def result(verdict: str, message: str, hint: str) -> GateResult:
        return GateResult(
            name="dependency_drift",
            verdict=verdict,  # type: ignore[arg-type]
            measured=float(len(blocking)),
            threshold=0.0,
            direction="max",
            message=message,
            hint=hint,
            details=details,
            rubric=("monitor-1",),
        )

    rest = [show(c) for c in changes if not c["blocking"]] + other
    if blocking and not cleared:
        return result(
            "fail",
            "major version change of a package that computes scores, not re-validated: "
            + ", ".join(show(c) for c in blocking)
            + (f" (also: {', '.join(rest)})" if rest else ""),
            "re-run the model's parity check (native vs exported scores on a fixed frame) "
            "in this environment and pass its environment as revalidated_in, or pin the "
            "recorded versions",
        )
    if blocking or rest:
        note = (
            f"re-validated in this environment: {', '.join(show(c) for c in blocking)}; "
            if cleared
            else ""
        )
        return result(
            "warn",
            f"environment changed since the model was recorded: {note}{', '.join(rest)}".rstrip(
                "; "
            ),
            "check the release notes of the changed packages; re-run parity if any computes "
            "features or scores",
        )
    return result(
        "pass",
        f"environment as recorded: {len(rec_pkgs)} packages"
        + (f", Python {cur_py}" if cur_py else "")
        + (", same lockfile" if rec_lock and cur_lock else ""),
        "",
    )


__all__ = ["SCORE_PACKAGES", "capture_environment", "dependency_drift"]
