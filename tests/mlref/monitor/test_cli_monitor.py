"""``mlref monitor`` on a workdir whose registry holds the model that made the predictions:
it reads each version's reference from the registry, says which versions and rows it
judged, and writes a new numbered report instead of overwriting the demo's monitor.html."""

from __future__ import annotations

import shutil

import pandas as pd

from mlref.cli import main
from mlref.registry import CHAMPION, Registry
from mlref.settings import make_settings


def test_monitor_command_judges_per_version_and_keeps_earlier_reports(
    ref_settings, reference_system, synth, log_writer, capsys, tmp_path
) -> None:
    # a private workdir with a copy of the session's registry (read-only elsewhere); its
    # artefacts stay where the session wrote them, so only this copy's reports change
    workdir = tmp_path / "mlref"
    shutil.copytree(ref_settings.mlflow_dir, workdir / "mlflow")
    settings = make_settings(workdir)
    settings.ensure_dirs()
    champion = Registry(settings).version_of(CHAMPION)
    assert champion is not None

    served = synth(600, seed=51, prefix="c")
    served["model_version"] = champion
    retired = synth(150, seed=52, prefix="r")  # a version this registry never held
    retired["model_version"] = "999"
    shutil.copy(
        log_writer(pd.concat([served, retired], ignore_index=True)), settings.prediction_log
    )
    demo_report = settings.reports_dir / "monitor.html"
    demo_report.write_text("the demo's report", encoding="utf-8")

    main(["monitor", "--workdir", str(workdir)])
    out = capsys.readouterr().out
    assert f"v{champion}: 600 predictions" in out, out
    assert "150 predictions of model v999 not judged" in out, out
    assert f"report HTML: {settings.reports_dir / 'monitor-1.html'}" in out, out
    assert (settings.reports_dir / "monitor-1.json").is_file()
    assert demo_report.read_text(encoding="utf-8") == "the demo's report"

    main(["monitor", "--workdir", str(workdir)])
    assert "monitor-2.html" in capsys.readouterr().out
    assert (settings.reports_dir / "monitor-1.html").is_file()
