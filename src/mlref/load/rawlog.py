"""Raw per-request records: one CSV line per request, exact latency (no histogram buckets).

Locust's own statistics round response times above 100 ms into buckets, so its p99 is not
exact; the locustfile (and ``loadgen``) append every request here instead. Each process writes
its own file (``requests-<pid>.csv``) in one directory, so Locust's ``--processes`` workers
never share a file; ``read_raw`` concatenates them.

Columns: ``name`` (the request name), ``status`` (HTTP status, 0 when no response),
``latency_ms`` (float), ``exception`` (empty when the request counted as a success),
``start`` (unix seconds when the request was sent), ``n`` (transactions in the request).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS: tuple[str, ...] = ("name", "status", "latency_ms", "exception", "start", "n")
RAW_DIR_ENV = "MLREF_LOAD_RAW_DIR"
FLUSH_EVERY = 20_000  # rows kept in memory before an early append (bounds memory)


class RawWriter:
    """Buffer rows in memory; ``flush()`` appends them to ``<directory>/requests-<pid>.csv``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.rows: list[tuple[str, int, float, str, float, int]] = []
        self.written = 0

    @property
    def path(self) -> Path:
        # the pid is read at flush time: Locust's --processes forks after the file is imported
        return self.directory / f"requests-{os.getpid()}.csv"

    def add(
        self, name: str, status: int, latency_ms: float, exception: str, start: float, n: int
    ) -> None:
        self.rows.append((name, int(status), float(latency_ms), exception, float(start), int(n)))
        if len(self.rows) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(COLUMNS)
            writer.writerows(
                (name, status, f"{lat:.4f}", exc, f"{start:.6f}", n)
                for name, status, lat, exc, start, n in self.rows
            )
        self.written += len(self.rows)
        self.rows.clear()


def raw_files(directory: str | os.PathLike[str]) -> list[Path]:
    return sorted(Path(directory).glob("requests-*.csv"))


def read_raw(directory: str | os.PathLike[str]) -> pd.DataFrame:
    """All records under ``directory`` as one frame (COLUMNS; ``exception`` '' when none)."""
    import pandas as pd

    files = raw_files(directory)
    if not files:
        raise FileNotFoundError(
            f"no raw request records (requests-*.csv) in {directory}: the load generator sent "
            "nothing or crashed before the end of the test; see its log next to that folder"
        )
    frames = [
        pd.read_csv(
            f,
            dtype={"name": str, "status": "int64", "latency_ms": "float64", "exception": str},
            keep_default_na=False,
        )
        for f in files
    ]
    frame = pd.concat(frames, ignore_index=True)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"raw request records in {directory} lack columns {missing}")
    frame["start"] = frame["start"].astype("float64")
    frame["n"] = frame["n"].astype("int64")
    return frame[list(COLUMNS)]
