"""The scale suite's guard (tests/scale/conftest.py) run on itself with pytester.

The ordinary run (no ``MLREF_SCALE``) skips every scale test at collection, before an engine
is looked for or started, with the command that runs them. Under ``nox -s scale``
(``MLREF_SCALE=1``) a missing engine fails the tests that need it: the run whose purpose is
to exercise Redis, Spark and nginx must not go green by skipping them.

This module needs no engine and takes a second, so the conftest lets it run in the ordinary
suite too (``ALWAYS_RUN``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

ENGINE_TESTS = """
def test_redis(redis_url):
    raise AssertionError("must not run: the engine is missing")

def test_spark(spark):
    raise AssertionError("must not run: the engine is missing")

def test_nginx(nginx_available):
    raise AssertionError("must not run: the engine is missing")
"""


@pytest.fixture
def scale_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A copy of the scale conftest with three tests that each need one engine, on a machine
    where none is installed (the lookups patched to find nothing, PATH empty)."""
    import mlref.scale.balancer
    import mlref.scale.redis_store

    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_engines=ENGINE_TESTS)
    monkeypatch.setattr(mlref.scale.redis_store, "redis_server_binary", lambda: None)
    monkeypatch.setattr(mlref.scale.balancer, "nginx_binary", lambda: None)
    monkeypatch.setenv("PATH", str(pytester.mkdir("empty-bin")))  # no java
    return pytester


def test_the_ordinary_run_skips_without_looking_for_engines(
    scale_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLREF_SCALE", raising=False)
    result = scale_dir.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=3)
    # skipped at collection with the way to run them, not by a fixture finding no engine
    result.stdout.fnmatch_lines(["*run `nox -s scale` or set MLREF_SCALE=1*"])
    result.stdout.no_fnmatch_line("*not installed*")


def test_the_scale_run_fails_when_an_engine_is_missing(
    scale_dir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLREF_SCALE", "1")
    result = scale_dir.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    result.stdout.re_match_lines(
        [
            r".*MLREF_SCALE=1 but (redis-server|the redis client) is not installed",
            r".*MLREF_SCALE=1 but (pyspark is not installed|no java on PATH)",
            r".*MLREF_SCALE=1 but nginx is not installed",
        ]
    )
