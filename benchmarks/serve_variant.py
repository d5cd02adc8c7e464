"""``python -m mlref.load.server`` with uvicorn's event loop and HTTP parser named explicitly.

    python benchmarks/serve_variant.py --loop asyncio --http h11 -- --workdir W --port-file F

uvicorn's ``auto`` picks uvloop and httptools when they are installed and falls back to
asyncio and h11 silently; the server benchmark runs the same scoring server under both pairs
(``bench_server.LOOP_VARIANTS``) to measure what the choice is worth per request. Everything
else is ``mlref.load.server`` itself: this only fixes the two ``uvicorn.Config`` arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), required=True)
    parser.add_argument("--http", choices=("h11", "httptools"), required=True)
    parser.add_argument("server_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    import uvicorn

    original = uvicorn.Config.__init__

    def config(self: Any, *a: Any, **kw: Any) -> None:
        kw["loop"], kw["http"] = args.loop, args.http
        original(self, *a, **kw)

    uvicorn.Config.__init__ = config  # type: ignore[method-assign]
    from mlref.load.server import main as server_main

    rest = args.server_args[1:] if args.server_args[:1] == ["--"] else args.server_args
    return server_main(rest)


if __name__ == "__main__":
    sys.exit(main())
