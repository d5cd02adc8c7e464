"""One frozen settings object for the reference system, built by a factory and passed in.

Nothing here touches the disk at import time; ``Settings.ensure_dirs()`` makes the
folders when a stage actually needs them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ONLINE_STORES: tuple[str, ...] = ("sqlite", "redis")
# the demo's workdir, and every other command's and nox session's: one place to look
DEFAULT_WORKDIR = ".mlref"
# what mlref writes at the top of a workdir (the demo's retrain writes its store under
# retrain/, the load runner and the replicas their runs); ``--fresh`` removes these and only
# these, so a mistaken --workdir never loses anything mlref did not make
SYSTEM_ENTRIES: tuple[str, ...] = (
    "data",
    "feature_repo",
    "artifacts",
    "mlflow",
    "logs",
    "reports",
    "flywheel",
    "retrain",
    "load",
    "replicas",
)


@dataclass(frozen=True)
class DataConfig:
    n_users: int = 1_000
    days: int = 90
    fraud_rate: float = 0.01
    seed: int = 7
    start: str = "2026-01-01T00:00:00+00:00"
    # drift switch: from this ISO date on, amounts shift and a new category appears
    drift_from: str | None = None
    drift_amount_factor: float = 2.5
    label_delay_days: int = 7


@dataclass(frozen=True)
class Settings:
    """Where everything goes and how big it is. Every path derives from ``workdir``."""

    workdir: Path
    data: DataConfig = field(default_factory=DataConfig)
    # validation
    max_quarantine_rate: float = 0.05
    max_data_age_hours: float = 48.0
    # registry: None means a SQLite file under workdir
    tracking_uri: str | None = None
    model_name: str = "mlref-fraud"
    # serving
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 64
    # 0: opportunistic batching (batches form while one is scored). `nox -s perf` measured 2 ms
    # worse p99 at 50 req/s before the batcher learned to skip waits that cannot fill a batch;
    # since then 0 and 2 ms stay within run-to-run noise of each other, and 0 needs no tuning
    max_wait_ms: float = 0.0
    max_queue: int = 1024
    batching: bool = True
    p99_budget_ms: float = 50.0
    # Feast online store: "sqlite" (a file under the feature repo) or "redis" (a running
    # redis-server at ``redis_url``, Feast's connection string "host:port[,db=N,password=..]")
    online_store: str = "sqlite"
    redis_url: str = "127.0.0.1:6379"

    def __post_init__(self) -> None:
        if self.online_store not in ONLINE_STORES:
            raise ValueError(
                f"online_store must be one of {ONLINE_STORES}, got {self.online_store!r}"
            )

    @property
    def raw_path(self) -> Path:
        return self.workdir / "data" / "transactions.parquet"

    @property
    def data_config_path(self) -> Path:
        """The DataConfig the stored transactions were generated with (see
        :func:`save_data_config`)."""
        return self.workdir / "data" / "config.json"

    @property
    def quarantine_path(self) -> Path:
        return self.workdir / "data" / "quarantine.parquet"

    @property
    def feature_repo(self) -> Path:
        return self.workdir / "feature_repo"

    @property
    def artifacts_dir(self) -> Path:
        return self.workdir / "artifacts"

    @property
    def mlflow_dir(self) -> Path:
        return self.workdir / "mlflow"

    @property
    def registry_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').as_posix()}"

    @property
    def prediction_log(self) -> Path:
        return self.workdir / "logs" / "predictions.sqlite"

    @property
    def reports_dir(self) -> Path:
        return self.workdir / "reports"

    def ensure_dirs(self) -> None:
        for path in (
            self.raw_path.parent,
            self.feature_repo,
            self.artifacts_dir,
            self.mlflow_dir,
            self.prediction_log.parent,
            self.reports_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)

    def system_entries(self) -> list[Path]:
        """The entries of ``workdir`` that an mlref run made (empty for a fresh workdir)."""
        return [self.workdir / name for name in SYSTEM_ENTRIES if (self.workdir / name).exists()]

    def clear(self) -> list[Path]:
        """Remove what :meth:`system_entries` lists; anything else in workdir stays."""
        import shutil

        removed = self.system_entries()
        for path in removed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        return removed

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def save_data_config(settings: Settings) -> Path:
    """Record beside the stored transactions the DataConfig they were generated with, so a
    later command on the same workdir judges them by it (the demo's 120 days, not the
    default 90: the freshness check's "as of" is the data's configured end)."""
    path = settings.data_config_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(settings.data), indent=2) + "\n")
    return path


def make_settings(workdir: str | os.PathLike[str] | None = None, **overrides: object) -> Settings:
    """Build settings; ``workdir`` defaults to $MLREF_HOME or ./.mlref (:data:`DEFAULT_WORKDIR`).

    Data knobs come from ``overrides``, then from the workdir's recorded DataConfig (when
    its transactions were generated there), then from DataConfig's defaults.
    """
    root = Path(workdir or os.environ.get("MLREF_HOME") or DEFAULT_WORKDIR).resolve()
    data_overrides = {k: v for k, v in overrides.items() if k in DataConfig.__dataclass_fields__}
    rest = {k: v for k, v in overrides.items() if k not in data_overrides}
    recorded = root / "data" / "config.json"
    if recorded.is_file():
        stored = json.loads(recorded.read_text())
        known = {k: v for k, v in stored.items() if k in DataConfig.__dataclass_fields__}
        data_overrides = {**known, **data_overrides}
    return Settings(workdir=root, data=DataConfig(**data_overrides), **rest)  # type: ignore[arg-type]
