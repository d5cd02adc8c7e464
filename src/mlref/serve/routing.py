"""Canary routing: which model answers a request while a rollout is active.

A user is in the canary arm when a keyed hash of their id (BLAKE2b, keyed with the rollout's
salt) falls below ``share`` of the hash range: stable for the whole rollout (a user sees one
model), independent between rollouts (a new salt splits users anew), and the same in every
server process (no state shared between replicas). The canary's answers act: its score,
decision and threshold are the response, unlike the shadow's.

``Router`` holds the active rollout (``None``: routing off, the only cost a ``None`` check per
request) and watches the rollout file (``mlref.canary.state``) on a slow poll. A request
takes one snapshot of the rollout when it arrives and is scored, answered and logged under
it, so changing or ending a rollout never misroutes an accepted request; the batcher of a
rollout that ended is kept (idle) until shutdown drains it, so no accepted request is
dropped either.

Errors are counted per arm here (a failed request has no prediction-log row) and written to
``<workdir>/canary/<rollout_id>.counts.json`` on each poll for ``mlref canary status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlref.canary.state import (
    Rollout,
    RolloutError,
    counts_path,
    read_rollout,
    rollout_path,
    write_json_atomic,
)

if TYPE_CHECKING:
    from mlref.serve.batching import BatchingPredictor
    from mlref.serve.predictor import Scored, ServedModel
    from mlref.serve.schemas import Transaction

logger = logging.getLogger(__name__)

CHAMPION_ARM = "champion"
CANARY_ARM = "canary"
DEFAULT_POLL_S = 1.0
_HASH_RANGE = 2**64


def in_canary(user_id: int, salt: str, share: float) -> bool:
    """Whether ``user_id`` is in the canary arm of the rollout salted with ``salt``."""
    return _bucket(user_id, salt.encode()) < int(share * _HASH_RANGE)


def _bucket(user_id: int, key: bytes) -> int:
    digest = hashlib.blake2b(
        int(user_id).to_bytes(8, "little", signed=True), key=key, digest_size=8
    ).digest()
    return int.from_bytes(digest, "little")


class ActiveRollout:
    """A rollout the server routes: its canary model, the canary's batcher, per-arm counts."""

    def __init__(
        self,
        rollout: Rollout,
        model: ServedModel,
        batcher: BatchingPredictor[Transaction, Scored],
    ) -> None:
        self.rollout = rollout
        self.model = model
        self.batcher = batcher
        self._key = rollout.salt.encode()
        self._cut = int(rollout.share * _HASH_RANGE)
        # arm -> [requests, errors]
        self.counts: dict[str, list[int]] = {CHAMPION_ARM: [0, 0], CANARY_ARM: [0, 0]}

    @property
    def rollout_id(self) -> str:
        return self.rollout.rollout_id

    def is_canary(self, user_id: int) -> bool:
        return _bucket(user_id, self._key) < self._cut

    async def submit(
        self,
        champion: BatchingPredictor[Transaction, Scored],
        champion_model: ServedModel,
        transactions: Sequence[Transaction],
    ) -> tuple[list[Scored], list[ServedModel], list[str]]:
        """Score each transaction on its user's arm; returns scores, the model that answered
        and the arm, in request order. The arms are fixed here from this rollout's snapshot,
        so a rollout change meanwhile cannot move them."""
        arms = [CANARY_ARM if self.is_canary(t.user_id) else CHAMPION_ARM for t in transactions]
        index = {CHAMPION_ARM: [], CANARY_ARM: []}  # type: dict[str, list[int]]
        for i, arm in enumerate(arms):
            index[arm].append(i)
        scored: list[Any] = [None] * len(transactions)
        if not index[CANARY_ARM] or not index[CHAMPION_ARM]:
            # one arm (always so for /predict): awaited directly, so the batcher admits the
            # request in this call, exactly as with routing off
            arm = arms[0]
            batcher = self.batcher if arm == CANARY_ARM else champion
            got = await self._counted(arm, batcher, list(transactions))
            return got, [self.model if arm == CANARY_ARM else champion_model] * len(got), arms
        jobs = []
        for arm, batcher in ((CHAMPION_ARM, champion), (CANARY_ARM, self.batcher)):
            rows = index[arm]
            job = asyncio.ensure_future(
                self._counted(arm, batcher, [transactions[i] for i in rows])
            )
            jobs.append((rows, job))
        for rows, job in jobs:
            for i, s in zip(rows, await job, strict=True):
                scored[i] = s
        models = [self.model if arm == CANARY_ARM else champion_model for arm in arms]
        return scored, models, arms

    async def _counted(
        self, arm: str, batcher: BatchingPredictor[Transaction, Scored], items: list[Transaction]
    ) -> list[Scored]:
        counts = self.counts[arm]
        counts[0] += len(items)
        try:
            if len(items) == 1:
                return [await batcher.submit(items[0])]
            return await batcher.submit_many(items)
        except Exception:
            counts[1] += len(items)
            raise

    def counts_record(self) -> dict[str, Any]:
        return {
            "rollout_id": self.rollout_id,
            "written_at": time.time(),
            "arms": {arm: {"requests": c[0], "errors": c[1]} for arm, c in self.counts.items()},
        }


BuildRollout = Callable[[Rollout], Awaitable[ActiveRollout]]


class Router:
    """The active rollout of one server, kept in step with the rollout file."""

    def __init__(self, workdir: Path, *, poll_s: float = DEFAULT_POLL_S) -> None:
        self.workdir = Path(workdir)
        self.poll_s = poll_s
        self.active: ActiveRollout | None = None
        self.retired: list[ActiveRollout] = []
        self._seen: tuple[int, int] | None = None
        self._failed: set[str] = set()

    def _file_changed(self) -> bool:
        try:
            st = rollout_path(self.workdir).stat()
            key = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            key = (0, 0)
        if key == self._seen:
            return False
        self._seen = key
        return True

    async def refresh(self, build: BuildRollout) -> None:
        """Read the rollout file if it changed and route accordingly."""
        if not self._file_changed():
            return
        try:
            rollout = read_rollout(self.workdir)
        except RolloutError as exc:
            logger.error("canary routing unchanged: %s", exc)
            return
        await self.apply(rollout, build)

    async def apply(self, rollout: Rollout | None, build: BuildRollout) -> None:
        current = self.active
        if rollout is None or not rollout.active:
            if current is not None:
                logger.info(
                    "canary rollout %s ended (%s): all traffic to the champion",
                    current.rollout_id,
                    rollout.status if rollout else "file removed",
                )
                self._retire(current)
                self.active = None
            return
        if current is not None and current.rollout_id == rollout.rollout_id:
            return
        if rollout.rollout_id in self._failed:
            return
        try:
            new = await build(rollout)
        except Exception:
            self._failed.add(rollout.rollout_id)
            logger.exception(
                "canary rollout %s: could not load canary version %s; all traffic stays "
                "on the champion",
                rollout.rollout_id,
                rollout.canary_version,
            )
            return
        self.active = new  # one assignment: each request sees the old rollout or the new
        if current is not None:
            self._retire(current)
        logger.info(
            "canary rollout %s: %.0f%% of users to version %s",
            rollout.rollout_id,
            100 * rollout.share,
            rollout.canary_version,
        )

    def _retire(self, old: ActiveRollout) -> None:
        # kept until shutdown (idle batchers cost a sleeping task): requests that took the
        # old snapshot may still be queueing on it
        self.retired.append(old)
        self.write_counts(old)

    def write_counts(self, rollout: ActiveRollout | None = None) -> None:
        target = rollout or self.active
        if target is None:
            return
        try:
            write_json_atomic(counts_path(self.workdir, target.rollout_id), target.counts_record())
        except OSError as exc:
            logger.warning("canary: could not write the per-arm counts: %s", exc)

    async def watch(self, build: BuildRollout) -> None:
        """Poll the rollout file until cancelled; never raises."""
        while True:
            try:
                await self.refresh(build)
                self.write_counts()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("canary routing: poll failed; routing unchanged")
            await asyncio.sleep(self.poll_s)

    def batchers(self) -> list[BatchingPredictor[Transaction, Scored]]:
        """Every canary batcher of this server's life (for the shutdown drain)."""
        rollouts = [*self.retired, *([self.active] if self.active else [])]
        return [r.batcher for r in rollouts]

    def final_counts(self) -> None:
        for r in [*self.retired, *([self.active] if self.active else [])]:
            with contextlib.suppress(Exception):
                self.write_counts(r)
