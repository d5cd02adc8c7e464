"""The process entry point: ``serve(settings)`` checks there is a system to serve
(``mlref.serve.preflight``), then runs the scoring app under uvicorn."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mlref.serve.config import ServeConfig
from mlref.serve.preflight import check_servable

if TYPE_CHECKING:
    from mlref.settings import Settings

logger = logging.getLogger(__name__)


class StartupFailed(RuntimeError):
    """Loading the model or the feature store failed: the server stopped, never ready."""


def serve(settings: Settings, *, config: ServeConfig | None = None) -> None:
    """Run the server under uvicorn on ``settings.host:settings.port`` until interrupted.

    Raises ``NothingToServe`` before starting when the workdir holds no system, and
    ``StartupFailed`` after stopping when loading failed: a server that can never become
    ready exits instead of answering 503 for ever."""
    import uvicorn

    from mlref.serve.app import create_app

    cfg = config or ServeConfig.from_settings(settings, gc_freeze=True)
    check_servable(settings, cfg)  # before anything is opened (and created) in the workdir
    app = create_app(settings, config=cfg)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,  # the CLI configures logging
            lifespan="on",
            timeout_graceful_shutdown=int(cfg.graceful_timeout_s),
        )
    )
    runtime = app.state.runtime
    runtime.on_load_failure = lambda _reason: setattr(server, "should_exit", True)
    logger.info("serving on http://%s:%d", settings.host, settings.port)
    server.run()
    if runtime.load_error is not None:
        raise StartupFailed(f"could not load the model and feature store: {runtime.load_error}")
