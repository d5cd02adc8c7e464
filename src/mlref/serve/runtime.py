"""What the routes share (``ServingRuntime``, on ``app.state.runtime``): loading the model,
the feature store and the shadow model; the batchers and their threads; the prediction log;
shadow scoring after the response; readiness; and the bounded shutdown drain.

Start-up (``start``): open the prediction log, start the batcher, then load the champion ONNX
model (registry alias or a file), the Feast feature store and, when a challenger is
registered, the shadow model, in the inference thread. ``/healthz`` answers at once;
``/readyz`` and the scoring routes answer 503 until loading is done, so a slow Feast import
never looks like a dead process. What the server needs on disk is checked before any of this
(``mlref.serve.preflight``), so a workdir that can never serve fails at once.

Shutdown (``stop``): refuse new scoring requests (503), finish every accepted one (the batcher
drains without waiting for ``max_wait_ms``), wait for their log records and shadow scores,
flush the prediction log, stop the threads. The drain is bounded by ``graceful_timeout_s``:
when a model or feature-store call hangs past it, the requests still waiting are abandoned
(answered 503, counted in a warning), the prediction log is still flushed and closed, and the
executors are shut down without waiting for the hung thread.

Readiness (``/readyz``, the ``mlref_ready`` gauge) is true only while the model and feature
store are loaded, the server is not shutting down and the batcher's worker is alive: a dead
worker refuses every request, so the orchestrator must stop routing traffic here.

The per-request work itself is in ``mlref.serve.scoring`` (the hot path).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask

from mlref.serve.admission import Admission
from mlref.serve.batching import BatchFailed, BatchingPredictor, PredictorClosed, QueueFull
from mlref.serve.body import BodyReads
from mlref.serve.errors import NotReady
from mlref.serve.features import (
    FeastFeatureSource,
    FeatureSource,
    FeatureStoreUnavailable,
    RequestBatch,
)
from mlref.serve.metrics import ServingMetrics
from mlref.serve.predictor import (
    Scored,
    Scorer,
    ServedModel,
    load_registered_model,
    score_rows,
    served_model_from_card,
)
from mlref.serve.predlog import PredictionLog, PredictionRecord
from mlref.serve.routing import ActiveRollout, Router

if TYPE_CHECKING:
    import numpy as np

    from mlref.canary.state import Rollout
    from mlref.serve.config import ServeConfig
    from mlref.serve.schemas import Transaction
    from mlref.settings import Settings

logger = logging.getLogger(__name__)

# after the drain deadline, each remaining shutdown step still gets this long (callers answered
# with an error need a few event-loop turns to send their responses)
_SHUTDOWN_GRACE_S = 0.25


class ServingRuntime:
    """Everything the routes share; lives on ``app.state.runtime``."""

    def __init__(
        self,
        settings: Settings,
        config: ServeConfig,
        *,
        model: ServedModel | None,
        features: FeatureSource | None,
        shadow: ServedModel | None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.model = model
        self.features = features
        self.shadow = shadow
        self.metrics = ServingMetrics()
        self.ready = False
        # the last start-up failure (internal detail: logged, never sent to clients), the
        # attempts so far, when the next one runs (loop time), and whether it gave up
        self.load_error: str | None = None
        self.load_attempts = 0
        self.next_load_at: float | None = None
        self.gave_up = False
        # called (on the event loop) when start-up gives up (load_give_up_s of failures): a
        # process that owns the server (``mlref.serve.run``) stops it; embedded apps answer
        # 503 on /healthz so their orchestrator restarts them
        self.on_load_failure: Callable[[str], None] | None = None
        # the online store's last read failure while serving (None: healthy), and the task
        # that reads it periodically and after a failure until it reads again
        self.store_error: str | None = None
        self._store_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        # the request bodies being read: when the server starts shutting down (``begin_drain``,
        # before uvicorn waits for its connections) they are answered 503 at once, so a slow
        # client never holds shutdown
        self.body_reads = BodyReads()
        self.scorer: Scorer | None = None
        self.batcher: BatchingPredictor[Transaction, Scored] | None = None
        self.shadow_batcher: BatchingPredictor[np.ndarray, float] | None = None
        self.log: PredictionLog | None = None
        self._infer_pool: ThreadPoolExecutor | None = None
        self._shadow_pool: ThreadPoolExecutor | None = None
        self._load_task: asyncio.Task[None] | None = None
        self._active = 0
        self._idle: asyncio.Event | None = None
        self._shadow_jobs: dict[int, tuple[list[PredictionRecord], list[np.ndarray]]] = {}
        # /predict/batch calls at or above the model's crossover, scored whole (score_whole):
        # their answers, and the rows they hold (counted against max_queue with the queue's)
        self._whole: set[asyncio.Future[list[Scored]]] = set()
        self._whole_rows = 0
        self._job_ids = itertools.count()
        # unique per record, cheaper than a uuid4 per request (no urandom syscall), and in
        # arrival order within a run: a random prefix per server start + a counter (32 hex)
        run = uuid.uuid4().hex[:8]
        self.next_request_id = map(
            "{}{:024x}".format, itertools.repeat(run), itertools.count()
        ).__next__
        self._stopping: asyncio.Future[None] | None = None
        self._gc_frozen = False
        # canary routing (mlref.serve.routing): off until a rollout file says otherwise;
        # ``canary_loader`` replaces the registry lookup of the canary model (tests)
        self.router = Router(settings.workdir)
        self.canary_loader: Callable[[Rollout], ServedModel] | None = None
        self._rollout_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self.log = PredictionLog(
            self.settings.prediction_log,
            flush_rows=cfg.log_flush_rows,
            flush_interval_s=cfg.log_flush_interval_s,
            busy_timeout_s=cfg.log_busy_timeout_s,
            write_retries=cfg.log_write_retries,
            retry_backoff_s=cfg.log_retry_backoff_s,
            max_pending_rows=cfg.log_max_pending_rows,
            max_pending_bytes=cfg.log_max_pending_bytes,
            max_rows=cfg.log_max_rows,
            max_age_s=cfg.log_max_age_s,
            max_file_bytes=cfg.log_max_file_bytes,
        )
        # the prediction log is opened once the model and store are loaded: a start-up that
        # fails (a file missing) creates nothing in the workdir
        # one thread: one batch at a time; the model and the feature store are created and
        # used in this same thread (SQLite connections stay with the thread that made them)
        self._infer_pool = ThreadPoolExecutor(1, thread_name_prefix="mlref-infer")
        self.batcher = BatchingPredictor(
            self._score,
            max_batch_size=cfg.max_batch_size if cfg.batching else 1,
            max_wait_ms=cfg.max_wait_ms if cfg.batching else 0.0,
            max_queue=cfg.max_queue,
            executor=self._infer_pool,
            name="predict",
            admission=Admission(
                cfg.p99_budget_ms,
                cfg.max_batch_size if cfg.batching else 1,
                cfg.max_wait_ms if cfg.batching else 0.0,
            )
            if cfg.admission
            else None,
        )
        self.batcher.add_listener(
            lambda info: self.metrics.observe_batch(info.size, info.error is not None)
        )
        self.batcher.start()
        # said before uvicorn's "running": the server answers /healthz at once, scores later
        logger.info("loading model and feature store...")
        self._load_task = asyncio.create_task(self._load(), name="mlref-load")

    async def _load(self) -> None:
        """Load until it succeeds, retrying with a doubling wait; give up after
        ``load_give_up_s`` (a file restored or a store started meanwhile is picked up without a
        restart; one that never comes back ends in a restart, not in 503 for ever)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        give_up_at = loop.time() + self.config.load_give_up_s
        delay = self.config.load_retry_s
        assert self._infer_pool is not None
        while True:
            self.load_attempts += 1
            try:
                await loop.run_in_executor(self._infer_pool, self._load_blocking)
                break
            except Exception as exc:
                self.load_error = f"{type(exc).__name__}: {exc}"
                if loop.time() + delay > give_up_at:
                    self.gave_up = True
                    self.next_load_at = None
                    logger.exception(
                        "serving start-up failed %d times in %.0f s; giving up (load_give_up_s)",
                        self.load_attempts,
                        self.config.load_give_up_s,
                    )
                    if self.on_load_failure is not None:
                        self.on_load_failure(self.load_error)
                    return
                self.next_load_at = loop.time() + delay
                logger.error(
                    "serving start-up failed (attempt %d); retrying in %.1f s: %s",
                    self.load_attempts,
                    delay,
                    self.load_error,
                    exc_info=self.load_attempts == 1,  # the trace once, then one line each
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.load_retry_max_s)
        try:
            assert self.log is not None
            await asyncio.to_thread(self.log.start)
        except Exception as exc:  # not a missing file that may come back: give up now
            self.load_error = f"{type(exc).__name__}: {exc}"
            self.gave_up = True
            logger.exception("serving start-up failed: the prediction log cannot be opened")
            if self.on_load_failure is not None:
                self.on_load_failure(self.load_error)
            return
        self.load_error = None
        self.next_load_at = None
        if self.shadow is not None:
            self._shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="mlref-shadow")
            self.shadow_batcher = BatchingPredictor(
                partial(score_rows, self.shadow),
                max_batch_size=self.config.max_batch_size,
                max_wait_ms=0.0,
                max_queue=self.config.max_queue,
                executor=self._shadow_pool,
                name="shadow",
            )
            self.shadow_batcher.start()
        if self.config.gc_freeze and gc.get_freeze_count() == 0:  # nobody else froze it
            gc.collect()  # once, before ready: leave no garbage in the frozen generation
            gc.freeze()
            self._gc_frozen = True
        self.ready = True
        if callable(getattr(self.features, "reconnect", None)):  # a real store, not an object
            self._store_task = asyncio.create_task(self._watch_store(), name="mlref-store-watch")
        self._rollout_task = asyncio.create_task(
            self.router.watch(self._build_canary), name="mlref-canary-routing"
        )
        assert self.model is not None
        logger.info(
            "ready in %.1f s: model %s, shadow %s, batching %s (max_batch_size=%d, max_wait_ms=%s)",
            time.perf_counter() - started,
            self.model.version,
            self.shadow.version if self.shadow else "off",
            "on" if self.config.batching else "off",
            self.batcher.max_batch_size if self.batcher else 0,
            self.config.max_wait_ms,
        )

    def _load_blocking(self) -> None:
        cfg = self.config
        # what an earlier attempt loaded stays loaded (a retry after the feature store failed
        # does not load the model again)
        from_registry = self.model is None and cfg.model_path is None
        if self.model is None:
            if cfg.model_path is not None:
                card = cfg.model_card_path or cfg.model_path.with_suffix(".card.json")
                self.model = served_model_from_card(
                    cfg.model_path, card, None, intra_op_threads=cfg.intra_op_threads
                )
            else:
                self.model = load_registered_model(
                    self.settings, cfg.model_alias, intra_op_threads=cfg.intra_op_threads
                )
            if self.shadow is None and cfg.shadow_alias and cfg.model_path is None:
                self.shadow = self._try_load_shadow(cfg.shadow_alias)
        self.model.warm_up()
        if self.shadow is not None:
            if self.shadow.feature_names != self.model.feature_names:
                logger.error(
                    "shadow model %s takes %s, the champion takes %s: shadow mode off",
                    self.shadow.version,
                    list(self.shadow.feature_names),
                    list(self.model.feature_names),
                )
                self.shadow = None
            else:
                self.shadow.warm_up()
        self._check_dependencies(from_registry)
        if self.features is None:
            self.features = FeastFeatureSource.open(self.settings)
        try:
            self._warm_up_features()
        except FeatureStoreUnavailable:
            if isinstance(self.features, FeastFeatureSource):
                self.features = None  # opened again (and checked again) by the next attempt
            raise
        self.scorer = Scorer(self.model, self.features)

    def _check_dependencies(self, from_registry: bool) -> None:
        """Log and expose (``mlref_dependency_drift``) the served model's environment as
        recorded at training against this one (monitor-1). It informs, never blocks: the
        model's parity was proven at export, and refusing to serve is the operator's call.
        A model given as a file or an object has no registry run to read: inconclusive."""
        from mlref.train.provenance import dependency_check, version_environment

        assert self.model is not None
        recorded = None
        if from_registry:  # its training run's tag (opening a registry otherwise would create one)
            try:
                # the version loaded, not the alias now: a promotion may have moved it since
                recorded = version_environment(self.settings, str(self.model.version))
            except Exception:  # the check must never stop the champion from serving
                logger.exception("could not read the recorded environment of the model")
        result = dependency_check(recorded)
        self.metrics.set_dependency_drift(result.verdict, int(result.measured or 0))
        level = logging.WARNING if result.verdict in ("fail", "warn") else logging.INFO
        logger.log(level, "dependency_drift of model %s: %s", self.model.version, result.explain())

    def _warm_up_features(self) -> None:
        """One lookup before going ready: Feast opens its registry and online store lazily
        (~1.6 s seen here), which the first real requests would otherwise queue behind."""
        import numpy as np

        probe = RequestBatch(
            transaction_id=("warm-up",),
            user_id=np.array([-1], dtype=np.int64),
            amount=np.array([1.0]),
            merchant_category=("grocery",),
            event_ns=np.array([time.time_ns()], dtype=np.int64),
        )
        assert self.features is not None
        self.features.lookup(probe)

    async def _watch_store(self) -> None:
        """Read the online store every ``store_check_interval_s`` while healthy; after a
        failure (here or in a batch), reconnect and read with a doubling wait until it reads,
        then turn ready again. Runs in the inference thread, between batches."""
        loop = asyncio.get_running_loop()
        cfg = self.config
        delay = cfg.load_retry_s
        while not self.closing:
            await asyncio.sleep(cfg.store_check_interval_s if self.store_error is None else delay)
            if self.closing or self._infer_pool is None:
                return
            broken = self.store_error is not None
            try:
                await loop.run_in_executor(self._infer_pool, self._probe_store, broken)
            except RuntimeError:  # the executor was shut down under us: stopping
                return
            except Exception as exc:
                self._store_failed(exc)
                delay = min(delay * 2, cfg.load_retry_max_s) if broken else cfg.load_retry_s
                continue
            if broken:
                logger.warning("the online store reads again: ready (was: %s)", self.store_error)
                self.store_error = None
                delay = cfg.load_retry_s
                if not callable(getattr(self.features, "reconnect", None)):
                    return  # only a real store is watched while healthy

    def _probe_store(self, reconnect: bool) -> None:
        if reconnect:
            reopen = getattr(self.features, "reconnect", None)
            if callable(reopen):
                reopen()
        self._warm_up_features()

    def _store_failed(self, exc: BaseException) -> None:
        """On the event loop: turn not ready until the store reads again (``_watch_store``)."""
        detail = f"{type(exc).__name__}: {exc}"
        if self.store_error is None:
            logger.error("the online store cannot be read; not ready until it can: %s", detail)
        self.store_error = detail
        if not self.closing and (self._store_task is None or self._store_task.done()):
            self._store_task = asyncio.create_task(self._watch_store(), name="mlref-store-watch")

    async def _build_canary(self, rollout: Rollout) -> ActiveRollout:
        """The canary model of ``rollout`` (loaded off the inference thread) and its batcher,
        which shares the inference thread and the feature store with the champion's."""
        loader = self.canary_loader or self._load_canary_model
        canary = await asyncio.to_thread(loader, rollout)
        assert self.model is not None
        assert self.features is not None
        if canary.feature_names != self.model.feature_names:
            raise ValueError(
                f"canary version {canary.version} takes {list(canary.feature_names)}, the "
                f"champion takes {list(self.model.feature_names)}"
            )
        await asyncio.to_thread(canary.warm_up)
        scorer = Scorer(canary, self.features)
        cfg = self.config

        def score(transactions: list[Transaction]) -> list[Scored]:
            try:
                return scorer.score_batch(transactions)
            except FeatureStoreUnavailable as exc:  # the same store as the champion's
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self._store_failed, exc)
                raise

        max_batch = self.batcher.max_batch_size if self.batcher else 1
        max_wait = cfg.max_wait_ms if cfg.batching else 0.0
        # the canary's answers act: the same deadline admission as the champion's
        batcher: BatchingPredictor[Transaction, Scored] = BatchingPredictor(
            score,
            max_batch_size=max_batch,
            max_wait_ms=max_wait,
            max_queue=cfg.max_queue,
            executor=self._infer_pool,
            name=f"canary-{rollout.rollout_id}",
            admission=Admission(cfg.p99_budget_ms, max_batch, max_wait) if cfg.admission else None,
        )
        batcher.start()
        return ActiveRollout(rollout, canary, batcher)

    def _load_canary_model(self, rollout: Rollout) -> ServedModel:
        from mlref.canary.state import CANARY

        model = load_registered_model(
            self.settings, CANARY, intra_op_threads=self.config.intra_op_threads
        )
        if str(model.version) != str(rollout.canary_version):
            raise ValueError(
                f"the registry's {CANARY!r} alias is version {model.version}, the rollout "
                f"names {rollout.canary_version}: start the rollout again (mlref canary start)"
            )
        return model

    def _try_load_shadow(self, alias: str) -> ServedModel | None:
        from mlref.registry import RegistryError

        try:
            return load_registered_model(
                self.settings, alias, intra_op_threads=self.config.intra_op_threads
            )
        except RegistryError:  # no challenger is the normal case: a fact, not an order
            logger.info("shadow mode off: no %s model registered", alias)
        except Exception:  # a broken challenger must not stop the champion from serving
            logger.exception("could not load the %s model; shadow mode off", alias)
        return None

    def begin_drain(self) -> None:
        """The server is shutting down: end the body reads in progress now (503) and refuse
        new requests. Called by the process's server when it starts shutting down
        (``mlref.serve.run.DrainingServer``), and by ``stop``."""
        self.closing = True
        self.body_reads.drain()

    async def stop(self) -> None:
        """Idempotent; a second caller waits for the first shutdown to finish."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.graceful_timeout_s
        # a thread still busy (loading, or a hung model/feature call) is never waited for
        busy_thread = False
        self.begin_drain()
        if self._store_task is not None and not self._store_task.done():
            self._store_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._store_task
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
            busy_thread = True  # the cancelled load goes on in the inference thread
        if self._rollout_task is not None:
            self._rollout_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rollout_task
        if self.batcher is not None:  # drains every accepted request, or abandons them
            busy_thread |= await self._stop_batcher(self.batcher, deadline)
        for canary_batcher in self.router.batchers():  # the canary arms' accepted requests
            busy_thread |= await self._stop_batcher(canary_batcher, deadline)
        busy_thread |= await self._stop_whole(deadline)
        if self._idle is not None:
            # their responses, log records and shadow scores; abandoned callers were answered
            # with an error and need only a few loop turns to finish
            await self._wait_idle(max(deadline, loop.time() + _SHUTDOWN_GRACE_S))
        self.router.final_counts()
        if self.shadow_batcher is not None:
            busy_thread |= await self._stop_batcher(
                self.shadow_batcher, max(deadline, loop.time() + _SHUTDOWN_GRACE_S)
            )
        if self.log is not None:
            # flushed whatever happened above; the writer has its own (retry-bounded) budget
            await asyncio.to_thread(self.log.close, max(self.config.graceful_timeout_s, 5.0))
        for pool in (self._infer_pool, self._shadow_pool):
            if pool is None:
                continue
            if busy_thread:
                pool.shutdown(wait=False, cancel_futures=True)
            else:
                await asyncio.to_thread(pool.shutdown, True)
        if self._gc_frozen:
            gc.unfreeze()
            self._gc_frozen = False
        logger.info(
            "stopped; prediction log rows written: %d, dropped: %d",
            self.log.written if self.log else 0,
            self.log.dropped if self.log else 0,
        )

    async def _stop_batcher(self, batcher: BatchingPredictor[Any, Any], deadline: float) -> bool:
        """Drain ``batcher`` until ``deadline`` (loop time), then abort it: the callers still
        waiting get 503 (``PredictorClosed``). True when it had to be aborted."""
        try:
            async with asyncio.timeout_at(deadline):
                await batcher.stop()
            return False
        except TimeoutError:
            if batcher.stopped:  # the deadline had passed, but there was nothing left to drain
                return False
        abandoned = await batcher.abort(
            f"shutdown timed out after {self.config.graceful_timeout_s:g} s"
        )
        logger.warning(
            "shutdown: the %s batcher did not drain within graceful_timeout_s=%g s (a model or "
            "feature-store call hangs); %d requests abandoned and answered 503; the hung thread "
            "is left behind",
            batcher.name,
            self.config.graceful_timeout_s,
            abandoned,
        )
        return True

    def begin(self) -> None:
        """Count work that shutdown must wait for (a request, or its shadow/log follow-up);
        pair with :meth:`end` in a ``finally``."""
        assert self._idle is not None
        self._active += 1
        self._idle.clear()

    def end(self) -> None:
        self._active -= 1
        self._update_idle()

    def _update_idle(self) -> None:
        assert self._idle is not None
        if self._active == 0 and not self._shadow_jobs:
            self._idle.set()
        else:
            self._idle.clear()

    async def _wait_idle(self, deadline: float) -> None:
        """Wait (until ``deadline``, loop time) for responses, log records and shadow scores
        of accepted requests.

        A shadow job whose background task never runs (the client vanished before the response
        was sent, so Starlette skips it) is logged without a shadow score after the timeout.
        """
        assert self._idle is not None
        self._update_idle()
        try:
            async with asyncio.timeout_at(deadline):
                await self._idle.wait()
        except TimeoutError:
            orphans = list(self._shadow_jobs.values())
            self._shadow_jobs.clear()
            logger.warning(
                "shutdown: %d requests still busy after graceful_timeout_s=%g s; %d shadow jobs "
                "logged without a shadow score",
                self._active,
                self.config.graceful_timeout_s,
                len(orphans),
            )
            for records, _rows in orphans:
                self.append_log(records)

    # -- scoring ---------------------------------------------------------------------------
    async def score_whole(self, transactions: list[Transaction]) -> list[Scored]:
        """Score a large ``/predict/batch`` call in ONE model call on the inference thread, so
        it reaches the model's native path (``CrossoverModel``; the batcher's chunks of
        ``max_batch_size`` never would). It shares the thread with the batcher's batches (one
        call at a time) but not its queue: it runs after the batch in ``process``.

        Admission as the batcher's for a batch call: refused (``Overloaded``) when the
        champion's queue is already predicted past the budget (an idle server never refuses a
        call for its own size), ``QueueFull`` when its rows and the queued requests together
        exceed ``max_queue``. A model or feature-store failure is ``BatchFailed``, as in the
        batcher; shutdown drains these calls within ``graceful_timeout_s``, then answers 503.
        """
        batcher, pool, loop = self.batcher, self._infer_pool, self._loop
        if batcher is None or pool is None or loop is None or self.closing:
            raise PredictorClosed("the server is shutting down and accepts no new requests")
        if not batcher.accepting:
            raise PredictorClosed(f"{batcher.name} is not accepting work; restart the server")
        n = len(transactions)
        queued = batcher.queue_depth + self._whole_rows
        if queued + n > batcher.max_queue:
            raise QueueFull("predict", batcher.max_queue, queued, n)
        admission = batcher.admission
        if admission is not None and batcher.queue_depth + 1 > admission.safe_depth:
            # the queue as a single request at its back would see it; check() admits whenever
            # the queue is shorter than one batch
            admission.check(loop.time(), batcher.queue_depth, 1, None, batcher.in_flight)
        answer: asyncio.Future[list[Scored]] = loop.create_future()

        def settle(done: Any) -> None:  # in the loop, once the thread has finished
            if answer.done():  # abandoned by a timed-out shutdown
                return
            if done.cancelled():
                answer.set_exception(PredictorClosed("the server stopped before this batch"))
            elif (exc := done.exception()) is not None:
                failure = BatchFailed(f"the batch of {n} transactions failed: {exc}")
                failure.__cause__ = exc
                answer.set_exception(failure)
            else:
                answer.set_result(done.result())

        def finished(done: Any) -> None:  # in the inference thread
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(settle, done)

        try:
            job = pool.submit(self._score, transactions)
        except RuntimeError as exc:  # the pool was shut down
            raise PredictorClosed("the server is shutting down") from exc
        self._whole.add(answer)
        self._whole_rows += n
        job.add_done_callback(finished)
        failed = True
        try:
            scored = await answer
            failed = False
            return scored
        finally:
            self._whole.discard(answer)
            self._whole_rows -= n
            if answer.cancelled():  # the caller went away: not scored unless already started
                job.cancel()
            self.metrics.observe_batch(n, failed)

    async def _stop_whole(self, deadline: float) -> bool:
        """Wait for the whole-batch calls until ``deadline`` (loop time), then answer the rest
        503. True when some had to be abandoned (their thread may be hung)."""
        if not self._whole:
            return False
        assert self._loop is not None
        await asyncio.wait(set(self._whole), timeout=max(0.0, deadline - self._loop.time()))
        left = [f for f in self._whole if not f.done()]
        for answer in left:
            answer.set_exception(
                PredictorClosed(
                    f"shutdown timed out after {self.config.graceful_timeout_s:g} s before "
                    "this batch was scored"
                )
            )
        if left:
            logger.warning("shutdown: %d whole-batch calls abandoned and answered 503", len(left))
        return bool(left)

    def _score(self, transactions: list[Transaction]) -> list[Scored]:
        if self.scorer is None:
            raise NotReady("still loading the model and the feature store")
        try:
            return self.scorer.score_batch(transactions)
        except FeatureStoreUnavailable as exc:
            # this thread is not the loop's: readiness turns false there, at once
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._store_failed, exc)
            raise

    @property
    def serving(self) -> bool:
        """Ready to score: loaded, the online store readable, not shutting down, and the
        batcher's worker alive."""
        batcher = self.batcher
        return (
            self.ready
            and self.store_error is None
            and not self.closing
            and batcher is not None
            and batcher.accepting
        )

    @property
    def alive(self) -> bool:
        """Liveness: false only once start-up has given up (restart the process)."""
        return not self.gave_up

    def not_ready_reason(self) -> str:
        """Why not ready, in words for a client: no paths, no exception text (those are in
        the server log)."""
        if self.closing:
            return "shutting down"
        if self.gave_up:
            return (
                f"start-up failed {self.load_attempts} times and gave up; the server must be "
                "restarted (the cause is in the server log)"
            )
        if self.load_error:
            wait = ""
            if self.next_load_at is not None and self._loop is not None:
                wait = f"; retrying in {max(self.next_load_at - self._loop.time(), 0.0):.1f} s"
            return (
                f"start-up failed (attempt {self.load_attempts}){wait}; the cause is in the "
                "server log"
            )
        if not self.ready:
            return "loading the model and the feature store"
        if self.store_error is not None:
            return "the feature store cannot be read; retrying (the cause is in the server log)"
        return (
            "the batcher's worker has stopped: every scoring request is refused; restart the server"
        )

    def check_ready(self) -> None:
        if self.closing:
            raise PredictorClosed("the server is shutting down and accepts no new requests")
        if not self.ready and self.load_error is None:
            raise NotReady("still loading the model and the feature store")
        if not self.ready or self.store_error is not None:
            raise NotReady(self.not_ready_reason())

    def follow_up(
        self, records: list[PredictionRecord], scored: Sequence[Scored]
    ) -> BackgroundTask | None:
        """What happens to a request's log records: with a shadow model, a task to run after
        the response is sent (score ``scored``'s feature rows in shadow, then log); without
        one, they are handed to the log now (None)."""
        if self.shadow_batcher is None:
            self.append_log(records)
            return None
        # runs after the response is sent: the caller never waits for the shadow model
        job = next(self._job_ids)
        self._shadow_jobs[job] = (records, [s.row for s in scored])
        return BackgroundTask(self._shadow_then_log, job)

    async def _shadow_then_log(self, job: int) -> None:
        pending = self._shadow_jobs.pop(job, None)
        if pending is None:  # already logged without a shadow score by a timed-out shutdown
            return
        records, rows = pending
        self.begin()
        try:
            await self._shadow_score(records, rows)
        finally:
            self.append_log(records)
            self.end()

    async def _shadow_score(self, records: list[PredictionRecord], rows: list[np.ndarray]) -> None:
        try:
            assert self.shadow_batcher is not None
            assert self.shadow is not None
            scores = await self.shadow_batcher.submit_many(rows)
            for record, score in zip(records, scores, strict=True):
                record.shadow_score = score
                record.shadow_version = self.shadow.version
        except Exception as exc:
            self.metrics.count_shadow_error()
            logger.warning("shadow scoring failed; logged without a shadow score: %s", exc)

    async def log_before_answer(
        self, records: list[PredictionRecord], scored: Sequence[Scored]
    ) -> None:
        """The sync mode (``log_sync``): shadow-score, then wait until the log has committed
        (or dropped and counted) ``records``, before the caller answers."""
        if self.shadow_batcher is not None:
            await self._shadow_score(records, [s.row for s in scored])
        assert self.log is not None
        try:
            done = self.log.submit(records)
        except RuntimeError as exc:
            logger.error("%d prediction log records lost: %s", len(records), exc)
            return
        # a dropped row is counted by the log (its reason is the result); the answer still
        # goes out: the prediction is valid, and refusing it would not bring the row back
        await asyncio.wrap_future(done)

    def append_log(self, records: list[PredictionRecord]) -> None:
        assert self.log is not None
        try:
            self.log.append(records)
        except RuntimeError as exc:
            logger.error("%d prediction log records lost: %s", len(records), exc)
