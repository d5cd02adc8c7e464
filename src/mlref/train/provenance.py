"""Where a model's specification came from: the git commit, whether the specification files
were changed and uncommitted, and a hash of their content, recorded at training.

The specification is the set of files that define the model (``SPEC_FILES``): the training
configuration and its defaults, the training code, and the feature definitions the model
reads. ``record_provenance`` hashes them as they are on disk when the model is trained;
``committed_spec_hash`` hashes the same files as a commit holds them. The
``spec_in_version_control`` gate compares the two (model-1 of the ML Test Score).

git is called through ``subprocess`` (no library); without git or outside a repository
the record says so (``commit`` empty) and the gate is inconclusive, not passed.

The environment the model was trained and exported in is recorded next to it (monitor-1):
``mlgates.capture_environment`` (Python, the versions of the packages that compute features
and scores, the SHA-256 of ``uv.lock`` when training runs from a checkout) as the JSON run tag
``mlref.environment``. ``recorded_environment`` reads it back for a registry alias and
``dependency_check`` compares it with the running interpreter (``mlref serve`` at start,
the gate suite).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlgates.result import GateResult
    from mlref.settings import Settings

__all__ = [
    "SPEC_FILES",
    "Provenance",
    "committed_spec_hash",
    "current_environment",
    "dependency_check",
    "record_provenance",
    "recorded_environment",
    "repository_root",
    "spec_hash",
    "version_environment",
]

#: the files that define the model, relative to the repository root
SPEC_FILES: tuple[str, ...] = (
    "src/mlref/train/config.py",
    "src/mlref/train/fit.py",
    "src/mlref/train/split.py",
    "src/mlref/features/definitions.py",
    "src/mlref/features/transforms.py",
)
GIT_TIMEOUT_S = 30.0

# MLflow run tags the record is written as (mlref.train.pipeline.run_training)
TAG_COMMIT = "mlref.git_commit"
TAG_DIRTY = "mlref.git_dirty"
TAG_DIRTY_FILES = "mlref.git_dirty_files"
TAG_SPEC_HASH = "mlref.spec_sha256"
TAG_SPEC_FILES = "mlref.spec_files"
TAG_ENVIRONMENT = "mlref.environment"  # JSON of mlgates.capture_environment
LOCKFILE = "uv.lock"


@dataclass(frozen=True)
class Provenance:
    """What training recorded about its specification."""

    commit: str  # "" when not in a git repository
    dirty_files: tuple[str, ...]  # spec files changed (or untracked) against HEAD
    spec_sha256: str  # hash of the spec files as trained (see spec_hash)
    spec_files: tuple[str, ...] = SPEC_FILES
    # capture_environment() as JSON ("" when not recorded): a string keeps the record hashable
    environment_json: str = ""

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_files)

    @property
    def environment(self) -> dict[str, Any] | None:
        return json.loads(self.environment_json) if self.environment_json else None

    def tags(self) -> dict[str, str]:
        tags = {
            TAG_COMMIT: self.commit,
            TAG_DIRTY: "true" if self.dirty else "false",
            TAG_DIRTY_FILES: ",".join(self.dirty_files),
            TAG_SPEC_HASH: self.spec_sha256,
            TAG_SPEC_FILES: ",".join(self.spec_files),
        }
        if self.environment_json:
            tags[TAG_ENVIRONMENT] = self.environment_json
        return tags

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Provenance:
        files = tags.get(TAG_DIRTY_FILES, "")
        spec = tags.get(TAG_SPEC_FILES, "")
        return cls(
            commit=tags.get(TAG_COMMIT, ""),
            dirty_files=tuple(f for f in files.split(",") if f),
            spec_sha256=tags.get(TAG_SPEC_HASH, ""),
            spec_files=tuple(f for f in spec.split(",") if f) or SPEC_FILES,
            environment_json=tags.get(TAG_ENVIRONMENT, ""),
        )


def spec_hash(contents: dict[str, bytes | None]) -> str:
    """sha256 over (path, content) in path order; a missing file counts as missing."""
    digest = hashlib.sha256()
    for path in sorted(contents):
        content = contents[path]
        digest.update(path.encode() + b"\0")
        digest.update(b"-" if content is None else b"+" + content)
        digest.update(b"\0")
    return digest.hexdigest()


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )


def repository_root(start: Path | None = None) -> Path | None:
    """The git work tree holding ``start`` (default: this package's source), or None."""
    if shutil.which("git") is None:
        return None
    here = start or Path(__file__).resolve().parent
    out = _git(here, "rev-parse", "--show-toplevel")
    if out.returncode != 0:
        return None
    return Path(out.stdout.decode().strip())


def record_provenance(root: Path | None = None, files: tuple[str, ...] = SPEC_FILES) -> Provenance:
    """The commit checked out at ``root``, the spec files that differ from it, and the hash
    of the spec files as they are on disk now (what a training run right now reads)."""
    root = root if root is not None else repository_root()
    environment = json.dumps(current_environment(root), sort_keys=True)
    if root is None:
        contents = _disk_contents(Path(__file__).resolve().parents[3], files)
        return Provenance("", (), spec_hash(contents), files, environment)
    head = _git(root, "rev-parse", "--verify", "HEAD")
    commit = head.stdout.decode().strip() if head.returncode == 0 else ""
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *files)
    dirty = tuple(
        sorted({line[3:].strip() for line in status.stdout.decode().splitlines() if line})
    )
    return Provenance(commit, dirty, spec_hash(_disk_contents(root, files)), files, environment)


def committed_spec_hash(root: Path, commit: str, files: tuple[str, ...] = SPEC_FILES) -> str | None:
    """The spec hash of ``files`` as ``commit`` holds them; None when the commit is unknown."""
    if not commit or _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return None
    contents: dict[str, bytes | None] = {}
    for path in files:
        out = _git(root, "show", f"{commit}:{path}")
        contents[path] = out.stdout if out.returncode == 0 else None
    return spec_hash(contents)


def _disk_contents(root: Path, files: tuple[str, ...]) -> dict[str, bytes | None]:
    return {p: (root / p).read_bytes() if (root / p).is_file() else None for p in files}


def current_environment(root: Path | None = None) -> dict[str, Any]:
    """``mlgates.capture_environment`` of this interpreter, with the hash of ``root/uv.lock``
    when there is one (a checkout; an installed wheel has no lockfile and records None)."""
    from mlgates.gates.environment import capture_environment

    lock = None if root is None else root / LOCKFILE
    return capture_environment(lockfile=lock if lock is not None and lock.is_file() else None)


def recorded_environment(settings: Settings, alias: str) -> tuple[str, dict[str, Any] | None]:
    """``(version, environment)`` of the model behind ``alias``: the ``mlref.environment``
    tag of its training run (None for a model registered before it was recorded)."""
    from mlref.registry import Registry, RegistryError

    version = Registry(settings).version_of(alias)
    if version is None:
        raise RegistryError(f"model {settings.model_name!r} has no {alias!r} alias")
    return version, version_environment(settings, version)


def version_environment(settings: Settings, version: str) -> dict[str, Any] | None:
    """The environment recorded with registered model ``version`` (None when not recorded)."""
    from mlref.registry import Registry

    registry = Registry(settings)
    run_id = registry.client.get_model_version(registry.name, version).run_id
    if run_id is None:
        return None
    raw = registry.client.get_run(run_id).data.tags.get(TAG_ENVIRONMENT)
    return json.loads(raw) if raw else None


def dependency_check(
    recorded: dict[str, Any] | None, current: dict[str, Any] | None = None
) -> GateResult:
    """``mlgates.dependency_drift`` of ``recorded`` against ``current`` (default: this
    interpreter, with the lockfile of the checkout mlref runs from, if any). A model with no
    recorded environment is inconclusive: nothing says what it was validated with."""
    from mlgates.gates.environment import dependency_drift
    from mlgates.result import GateResult

    if recorded is None:
        return GateResult(
            name="dependency_drift",
            verdict="inconclusive",
            measured=None,
            threshold=0.0,
            direction="max",
            message="the model has no recorded environment (no mlref.environment run tag)",
            hint="retrain it with this mlref (training records the environment), or "
            "re-run its parity check here",
            rubric=("monitor-1",),
        )
    if current is None:  # a lockfile hash missing on either side is not compared
        current = current_environment(repository_root())
    return dependency_drift(recorded, current)
