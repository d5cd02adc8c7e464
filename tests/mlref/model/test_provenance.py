"""Training provenance against real git repositories (temporary, built here): the commit,
the uncommitted specification files and the spec hash, and the committed hash to compare."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlgates.gates import spec_in_version_control
from mlgates.result import GateResult
from mlref.train.provenance import (
    SPEC_FILES,
    Provenance,
    committed_spec_hash,
    record_provenance,
    repository_root,
)

SOURCE_ROOT = Path(__file__).resolve().parents[3]


def git(root: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding a committed copy of mlref's specification files."""
    root = tmp_path / "repo"
    for path in SPEC_FILES:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes((SOURCE_ROOT / path).read_bytes())
    git(root.parent, "init", "-q", str(root))
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "spec")
    return root


def gate(record: Provenance, root: Path | None) -> GateResult:
    return spec_in_version_control(
        {
            "commit": record.commit,
            "dirty_files": record.dirty_files,
            "spec_hash": record.spec_sha256,
        },
        None if root is None else (lambda commit: committed_spec_hash(root, commit)),
    )


def test_a_clean_checkout_records_its_commit_and_matches_it(repo: Path) -> None:
    record = record_provenance(repo)
    assert record.commit == git(repo, "rev-parse", "HEAD")
    assert record.dirty_files == ()
    assert committed_spec_hash(repo, record.commit) == record.spec_sha256
    assert gate(record, repo).verdict == "pass"
    assert Provenance.from_tags(record.tags()) == record  # the MLflow tags round-trip


def test_an_uncommitted_config_change_is_recorded_and_fails(repo: Path) -> None:
    config = repo / "src/mlref/train/config.py"
    config.write_text(config.read_text() + "\n# max_depth tried at 9\n")
    record = record_provenance(repo)
    assert record.dirty_files == ("src/mlref/train/config.py",)
    assert committed_spec_hash(repo, record.commit) != record.spec_sha256
    result = gate(record, repo)
    assert result.verdict == "fail"
    assert "dirty at training: uncommitted src/mlref/train/config.py" in result.message
    assert "differs from the one trained" in result.message
    # committed afterwards, the record still names the old commit: still not the spec trained
    git(repo, "commit", "-q", "-am", "tune")
    assert gate(record, repo).verdict == "fail"
    assert gate(record_provenance(repo), repo).verdict == "pass"  # retrained from the commit


def test_a_commit_missing_from_the_repository_fails(repo: Path) -> None:
    record = record_provenance(repo)
    git(repo, "commit", "-q", "--amend", "-m", "rewritten")  # history rewritten after training
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    result = gate(record, repo)
    assert result.verdict == "fail"
    assert "is not in the repository" in result.message


def test_outside_a_repository_the_gate_cannot_pass(tmp_path: Path) -> None:
    assert repository_root(tmp_path) is None
    # a record that claims a clean commit, with no repository to check it: inconclusive
    assert gate(Provenance("a" * 40, (), "f" * 64), None).verdict == "inconclusive"
    # trained outside any checkout and nothing to check: inconclusive too
    assert gate(Provenance("", (), "f" * 64), None).verdict == "inconclusive"
    # with a repository, a record without a commit fails
    assert gate(Provenance("", (), "f" * 64), tmp_path).verdict == "fail"


def test_training_records_its_environment_with_the_lockfile_hash(repo: Path) -> None:
    """monitor-1: the record carries the package versions and the hash of the checkout's
    uv.lock, through the MLflow tags, and compares clean with the interpreter it came from."""
    import hashlib

    from mlref.train.provenance import TAG_ENVIRONMENT, dependency_check

    (repo / "uv.lock").write_text("version = 1\n")
    record = record_provenance(repo)
    env = record.environment
    assert env is not None
    assert env["lockfile_sha256"] == hashlib.sha256(b"version = 1\n").hexdigest()
    assert env["packages"]["xgboost"]
    assert env["packages"]["onnxruntime"]
    assert TAG_ENVIRONMENT in record.tags()
    assert Provenance.from_tags(record.tags()).environment == env
    # this interpreter, whose checkout's uv.lock is another file: same versions, a warning
    drift = dependency_check(env)
    assert drift.verdict == "warn", drift.explain()
    assert "lockfile hash" in drift.message
    assert dependency_check({**env, "lockfile_sha256": None}).verdict == "pass"
    moved = {**env, "packages": {**env["packages"], "onnxruntime": "0.1.0"}}
    assert dependency_check(moved).verdict == "fail"


def test_a_model_without_a_recorded_environment_is_inconclusive() -> None:
    from mlref.train.provenance import dependency_check

    result = dependency_check(None)
    assert result.verdict == "inconclusive"
    assert "no recorded environment" in result.message
