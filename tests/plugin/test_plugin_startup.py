"""The plugin's first-minute checks: a report path the run could not write is refused at
start-up, before any test runs, in one line; nothing is created for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Each test file records that it ran, so a refused run can be shown to have run nothing.
RAN_MARK = "ran.txt"
RECORDING_TEST = f"""
from pathlib import Path

def test_records_that_it_ran():
    Path({RAN_MARK!r}).write_text("ran")
"""


def _refused(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(test_record=RECORDING_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--mlgates", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert not (pytester.path / RAN_MARK).exists(), "a test ran before the usage error"
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors  # one line, no traceback
    return errors[0]


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory no file can be created in, also for root (which ignores mode bits)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        return locked
    if Path("/proc/self").is_dir():
        return Path("/proc")  # procfs refuses new files whoever asks
    pytest.skip("running as root without /proc: no directory here is unwritable to root")


@pytest.mark.parametrize("flag", ["--mlgates-report", "--mlgates-markdown"])
def test_a_missing_directory_is_refused_and_not_created(
    pytester: pytest.Pytester, flag: str
) -> None:
    missing = pytester.path / "nonexistent" / "dir"
    error = _refused(pytester, f"{flag}={missing / 'r.json'}")
    assert error == (
        f"ERROR: mlgates: {flag}={missing / 'r.json'}: directory {missing} does not exist; "
        f"create it first (mkdir -p {missing}) or choose another path"
    )
    assert not (pytester.path / "nonexistent").exists()


def test_an_unwritable_directory_is_refused(pytester: pytest.Pytester, tmp_path: Path) -> None:
    locked = _unwritable_dir(tmp_path)
    error = _refused(pytester, f"--mlgates-report={locked / 'r.json'}")
    assert error.startswith(f"ERROR: mlgates: --mlgates-report={locked / 'r.json'}: cannot ")
    assert error.endswith("; choose a writable path")
    assert not (locked / "r.json").exists()


def test_a_file_where_the_directory_should_be_is_refused(pytester: pytest.Pytester) -> None:
    (pytester.path / "blocker").write_text("a file where a directory is needed")
    error = _refused(pytester, "--mlgates-report=blocker/r.json")
    assert error.endswith(f"{pytester.path / 'blocker'} is not a directory")


def test_the_ini_report_path_is_checked_too(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmlgates_markdown = out/summary.md\n")
    error = _refused(pytester)
    assert "ini key 'mlgates_markdown' = out/summary.md: directory" in error
    assert "does not exist" in error


def test_a_writable_path_runs_and_leaves_no_probe_behind(pytester: pytest.Pytester) -> None:
    pytester.mkdir("out")
    pytester.makepyfile(test_record=RECORDING_TEST)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--mlgates", "--mlgates-report=out/r.json"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert sorted(p.name for p in (pytester.path / "out").iterdir()) == ["r.json"]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("--mlgate", "--mlgates"),
        ("--mlgates-reprot=r.json", "--mlgates-report"),
        ("--ml-gates", "--mlgates"),
        ("--mlgates_markdown", "--mlgates-markdown"),
    ],
)
def test_a_mistyped_option_gets_did_you_mean(
    pytester: pytest.Pytester, typo: str, meant: str
) -> None:
    pytester.makepyfile(test_record=RECORDING_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", typo)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    flag = typo.split("=")[0]
    assert result.stderr.lines[0] == f"ERROR: unrecognized argument {flag}: did you mean {meant}?"
    assert not (pytester.path / RAN_MARK).exists()


def test_other_unknown_options_keep_pytests_own_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_record=RECORDING_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--frobnicate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unrecognized arguments: --frobnicate" in result.stderr.str()
    assert "did you mean" not in result.stderr.str()
