"""Importing feast through mlref leaves nothing to be finalized at interpreter exit: not the
importer's frames and their locals (that kept the reference system's XGBoost model alive
and ended gate runs with "Exception ignored in: <function Booster.__del__ ...>"), nor
file-backed metric values that nobody closes ("ResourceWarning: unclosed file")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# A fresh interpreter: feast must not be imported yet, the first import is the one at stake.
PROBE = textwrap.dedent(
    """
    import gc
    import sys
    import weakref

    from mlref.features import store


    class Model:
        pass


    def build():
        model = Model()  # stands for the trained model a build keeps in its locals
        store._import_feast()
        return weakref.ref(model)


    ref = build()
    gc.collect()
    assert "feast" in sys.modules
    import os

    print("env set" if "PROMETHEUS_MULTIPROC_DIR" in os.environ else "env clean")
    from prometheus_client import values

    print("in-memory metrics" if values.ValueClass is values.MutexValue else "mmap metrics")
    print("alive" if ref() is not None else "freed")
    """
)


def test_first_feast_import_does_not_keep_the_importer_alive() -> None:
    # a fresh interpreter's environment: this process may have imported feast already
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    exported, metrics, importer = done.stdout.strip().splitlines()[-3:]
    assert exported == "env clean", (
        "feast's metrics directory is left in the environment: child processes would keep "
        "file-backed metrics in a directory this process deletes at exit"
    )
    assert metrics == "in-memory metrics", "feast's metrics would leave mmap files open at exit"
    assert importer == "freed", (
        "a local of the function that first imported feast is still alive after it "
        "returned: something keeps its frame (a stored exception's traceback?)"
    )
