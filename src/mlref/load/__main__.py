"""``python -m mlref.load``: a bounded Locust load test against a local scoring server."""

from __future__ import annotations

from mlref.load.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
