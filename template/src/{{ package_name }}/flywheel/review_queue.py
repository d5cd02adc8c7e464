"""The human review queue: a SQLite table of hard examples waiting for a label.

Status moves one way: ``pending -> labelled`` or ``pending -> skipped``; labelled and skipped
are final (a second label for the same transaction is refused rather than silently
overwriting the first). Times are stored as unix seconds (like the prediction log) and read
back as UTC timestamps. ``labelled_feedback`` turns the labelled rows into the frame the
retrain step merges into the training data.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

TABLE = "review_queue"
STATUSES: tuple[str, ...] = ("pending", "labelled", "skipped")
FEEDBACK_COLUMNS: tuple[str, ...] = ("transaction_id", "is_fraud", "label_timestamp")

_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    transaction_id TEXT PRIMARY KEY,
    request_id TEXT,
    user_id INTEGER,
    event_timestamp REAL,
    ts REAL,
    score REAL NOT NULL,
    threshold REAL NOT NULL,
    uncertainty REAL NOT NULL,
    model_version TEXT,
    features TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'labelled', 'skipped')),
    created_at REAL NOT NULL,
    labelled_at REAL,
    label INTEGER CHECK (label IN (0, 1)),
    reviewer TEXT,
    note TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_status_priority ON {TABLE} (status, uncertainty);
"""
_TIME_COLUMNS = ("event_timestamp", "ts", "created_at", "labelled_at", "updated_at")


def _unix(value: datetime | pd.Timestamp | float | None) -> float:
    import pandas as pd

    if value is None:
        return time.time()
    if isinstance(value, (int, float)):
        return float(value)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone; pass a UTC-aware datetime")
    return stamp.timestamp()


class ReviewQueue:
    """Review queue stored in the SQLite file ``path`` (created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=10.0)
        try:
            con.executescript(_DDL)
            with con:  # one transaction: commit on success, roll back on error
                yield con
        finally:
            con.close()

    def enqueue(
        self, examples: pd.DataFrame, now: datetime | pd.Timestamp | float | None = None
    ) -> int:
        """Add hard examples (from :func:`mine_hard_examples`) as pending; returns how many
        were new. A transaction already in the queue, in any status, is left as it is."""
        required = {"transaction_id", "score", "threshold", "uncertainty"}
        missing = sorted(required - set(examples.columns))
        if missing:
            raise ValueError(f"examples lack columns {missing}; build them with mine_hard_examples")
        created = _unix(now)
        rows = []
        for rec in examples.to_dict("records"):
            rows.append(
                (
                    str(rec["transaction_id"]),
                    _opt_str(rec.get("request_id")),
                    _opt_int(rec.get("user_id")),
                    _opt_time(rec.get("event_timestamp")),
                    _opt_time(rec.get("ts")),
                    float(rec["score"]),
                    float(rec["threshold"]),
                    float(rec["uncertainty"]),
                    _opt_str(rec.get("model_version")),
                    _opt_str(rec.get("features")),
                    created,
                    created,
                )
            )
        with self._connect() as con:
            before = con.total_changes
            con.executemany(
                f"INSERT OR IGNORE INTO {TABLE} (transaction_id, request_id, user_id, "
                "event_timestamp, ts, score, threshold, uncertainty, model_version, features, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            added = con.total_changes - before
        logger.info("review queue %s: %d new of %d offered", self.path, added, len(rows))
        return added

    def items(self, status: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Queue rows, most uncertain first (then oldest, then by transaction id)."""
        import pandas as pd

        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        sql = f"SELECT * FROM {TABLE}"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY uncertainty, created_at, transaction_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._connect() as con:
            cur = con.execute(sql, params)
            names = [d[0] for d in cur.description]
            frame = pd.DataFrame.from_records(cur.fetchall(), columns=names)
        for col in _TIME_COLUMNS:
            frame[col] = pd.to_datetime(frame[col].astype("float64"), unit="s", utc=True)
        frame["label"] = frame["label"].astype("Int8")
        return frame

    def pending(self, limit: int | None = None) -> pd.DataFrame:
        """Pending items in review order (most uncertain first)."""
        return self.items("pending", limit)

    def counts(self) -> dict[str, int]:
        """Number of items per status (every status present, zero if none)."""
        with self._connect() as con:
            got = dict(con.execute(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status"))
        return {s: int(got.get(s, 0)) for s in STATUSES}

    def label(
        self,
        transaction_id: str,
        label: int | bool,
        at: datetime | pd.Timestamp | float | None = None,
        reviewer: str = "",
    ) -> None:
        """Record a reviewer's label (0 legit / 1 fraud); the item must be pending."""
        if isinstance(label, bool):
            label = int(label)
        if label not in (0, 1):
            raise ValueError(f"label must be 0 (legit) or 1 (fraud), got {label!r}")
        when = _unix(at)
        self._move(
            transaction_id,
            "labelled",
            "UPDATE review_queue SET status = 'labelled', label = ?, labelled_at = ?, "
            "reviewer = ?, updated_at = ? WHERE transaction_id = ? AND status = 'pending'",
            (int(label), when, reviewer, when, str(transaction_id)),
        )

    def skip(
        self,
        transaction_id: str,
        at: datetime | pd.Timestamp | float | None = None,
        reason: str = "",
        reviewer: str = "",
    ) -> None:
        """Mark a pending item as skipped (no label), with the reason in ``note``."""
        when = _unix(at)
        self._move(
            transaction_id,
            "skipped",
            "UPDATE review_queue SET status = 'skipped', note = ?, reviewer = ?, "
            "updated_at = ? WHERE transaction_id = ? AND status = 'pending'",
            (reason, reviewer, when, str(transaction_id)),
        )

    def _move(self, transaction_id: str, target: str, sql: str, params: tuple[Any, ...]) -> None:
        with self._connect() as con:
            changed = con.execute(sql, params).rowcount
            if changed == 1:
                return
            row = con.execute(
                f"SELECT status FROM {TABLE} WHERE transaction_id = ?", (str(transaction_id),)
            ).fetchone()
        if row is None:
            raise KeyError(f"transaction {transaction_id!r} is not in the review queue {self.path}")
        raise ValueError(
            f"transaction {transaction_id!r} is already {row[0]}; only pending items can be "
            f"{target} (statuses move pending -> labelled | skipped, once)"
        )


def labelled_feedback(queue_path: str | Path) -> pd.DataFrame:
    """Labels from the review queue as training feedback.

    Columns ``transaction_id`` (str), ``is_fraud`` (int8) and ``label_timestamp`` (UTC: when
    the reviewer labelled it, i.e. when the label became known), sorted by label time. A queue
    file that does not exist yet gives an empty frame: nothing has been reviewed.
    """
    import pandas as pd

    path = Path(queue_path)
    if not path.exists():
        logger.info("no review queue at %s yet: no feedback labels", path)
        return pd.DataFrame(
            {
                "transaction_id": pd.Series([], dtype="object"),
                "is_fraud": pd.Series([], dtype="int8"),
                "label_timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            }
        )
    done = ReviewQueue(path).items("labelled")
    out = pd.DataFrame(
        {
            "transaction_id": done["transaction_id"].astype("object"),
            "is_fraud": done["label"].astype("int8"),
            "label_timestamp": done["labelled_at"].astype("datetime64[ns, UTC]"),
        }
    )
    return out.sort_values(["label_timestamp", "transaction_id"]).reset_index(drop=True)


def _opt_str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _opt_int(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return int(value)


def _opt_time(value: Any) -> float | None:
    import pandas as pd

    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return _unix(value)
