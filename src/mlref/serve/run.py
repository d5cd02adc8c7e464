"""The process entry point: ``serve(settings)`` checks there is a system to serve
(``mlref.serve.preflight``), then runs the scoring app under uvicorn."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mlref.serve.config import ServeConfig
from mlref.serve.preflight import check_servable

if TYPE_CHECKING:
    from mlref.settings import Settings

logger = logging.getLogger(__name__)


def draining_server(app: Any, config: Any) -> Any:
    """A ``uvicorn.Server`` for ``app`` (``config``: its ``uvicorn.Config``) that tells the
    app's runtime when shutdown begins: uvicorn waits for open connections before the app's
    lifespan ends, so a client trickling its body would hold shutdown for the whole graceful
    timeout; told at once, the runtime answers it 503 (``ServingRuntime.begin_drain``)."""
    import uvicorn

    runtime = app.state.runtime

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            runtime.begin_drain()
            await super().shutdown(sockets=sockets)

    return DrainingServer(config)


class StartupFailed(RuntimeError):
    """Loading the model or the feature store failed: the server stopped, never ready."""


def serve(settings: Settings, *, config: ServeConfig | None = None) -> None:
    """Run the server under uvicorn on ``settings.host:settings.port`` until interrupted.

    Raises ``NothingToServe`` before starting when the workdir holds no system, and
    ``StartupFailed`` after stopping when loading failed: a server that can never become
    ready exits instead of answering 503 for ever: loading is retried with backoff for
    ``load_give_up_s`` first (docs/faults.md)."""
    import uvicorn

    from mlref.serve.app import create_app

    cfg = config or ServeConfig.from_settings(settings, gc_freeze=True)
    check_servable(settings, cfg)  # before anything is opened (and created) in the workdir
    app = create_app(settings, config=cfg)
    server = draining_server(
        app,
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,  # the CLI configures logging
            lifespan="on",
            timeout_graceful_shutdown=int(cfg.graceful_timeout_s),
        ),
    )
    runtime = app.state.runtime
    runtime.on_load_failure = lambda _reason: setattr(server, "should_exit", True)
    logger.info("serving on http://%s:%d", settings.host, settings.port)
    server.run()
    if runtime.gave_up:
        raise StartupFailed(f"could not load the model and feature store: {runtime.load_error}")
