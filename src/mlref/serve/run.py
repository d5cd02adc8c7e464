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


def serve(settings: Settings, *, config: ServeConfig | None = None) -> None:
    """Run the server under uvicorn on ``settings.host:settings.port`` until interrupted."""
    import uvicorn

    from mlref.serve.app import create_app

    cfg = config or ServeConfig.from_settings(settings, gc_freeze=True)
    check_servable(settings, cfg)  # before anything is opened (and created) in the workdir
    app = create_app(settings, config=cfg)
    logger.info("serving on http://%s:%d", settings.host, settings.port)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # the CLI configures logging
        lifespan="on",
        timeout_graceful_shutdown=int(cfg.graceful_timeout_s),
    )
