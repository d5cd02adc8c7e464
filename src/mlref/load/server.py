"""Run the scoring server (or the floor app) in this process for a load test or benchmark.

``python -m mlref.load.server --workdir W --port-file F [options]`` binds 127.0.0.1 on an
ephemeral port itself (no port race), writes the port to ``F``, then runs uvicorn on that
socket until SIGTERM/SIGINT (uvicorn's graceful shutdown: accepted requests finish). The runner
and the server benchmark start it with ``sys.executable -m mlref.load.server`` so the server
never shares a process with the load generator or with pytest.

``--model-path`` serves an exported ONNX file (its ``.card.json`` beside it) instead of the
registry's champion; ``--app floor`` / ``--app framework-floor`` serve the benchmark's floors
(``mlref.load.floor``, ``mlref.load.framework_floor``) instead of the scoring app.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlref.load.server", description=__doc__)
    p.add_argument("--workdir", required=True, help="the reference system's workdir")
    p.add_argument("--port-file", required=True, help="the bound port is written here")
    p.add_argument("--port", type=int, default=0, help="0 = ephemeral (default)")
    p.add_argument("--app", choices=("mlref", "floor", "framework-floor"), default="mlref")
    p.add_argument("--model-path", default=None, help="serve this ONNX file, not the champion")
    p.add_argument("--batching", type=_bool, default=None, help="on/off (default: settings)")
    p.add_argument("--max-wait-ms", type=float, default=None)
    p.add_argument("--max-batch-size", type=int, default=None)
    p.add_argument("--max-queue", type=int, default=None)
    p.add_argument(
        "--admission", type=_bool, default=None, help="admission by deadline on/off (default on)"
    )
    p.add_argument(
        "--in-flight-admission",
        type=_bool,
        default=None,
        help="the HTTP layer's in-flight limit on/off (default off; needs --admission on)",
    )
    p.add_argument("--log-level", default="WARNING")
    return p


def bind_loopback(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def _write_port(path: Path, port: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, path)  # the reader never sees a half-written file


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    import uvicorn

    from mlref.settings import make_settings

    overrides: dict[str, object] = {"host": "127.0.0.1"}
    for key in ("batching", "max_wait_ms", "max_batch_size", "max_queue"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    settings = make_settings(args.workdir, **overrides)
    graceful_s = 20
    if args.app == "floor":
        from mlref.load.floor import floor_app

        app: object = floor_app
    elif args.app == "framework-floor":
        from mlref.load import framework_floor

        app = framework_floor.app
    else:
        from mlref.serve.app import ServeConfig, create_app

        extra: dict[str, object] = {}
        if args.model_path:
            extra = {"model_path": Path(args.model_path), "shadow_alias": None}
        # this process is the server's alone: freeze the start-up heap (ServeConfig.gc_freeze)
        if args.admission is not None:
            extra["admission"] = args.admission
        if args.in_flight_admission is not None:
            extra["in_flight_admission"] = args.in_flight_admission
        config = ServeConfig.from_settings(settings, gc_freeze=True, **extra)
        graceful_s = int(config.graceful_timeout_s)
        app = create_app(settings, config=config)
    sock = bind_loopback(args.port)
    port = int(sock.getsockname()[1])
    _write_port(Path(args.port_file), port)
    logger.info("%s app on http://127.0.0.1:%d", args.app, port)
    uv_config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=graceful_s,
    )
    if args.app == "mlref":  # tells the app when shutdown begins: slow clients answered 503
        from mlref.serve.run import draining_server

        server = draining_server(app, uv_config)
    else:
        server = uvicorn.Server(uv_config)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
