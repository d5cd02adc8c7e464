"""``python -m mlref.scale --out DIR``: run the scale-out measurements (see mlref.scale.run)."""

from __future__ import annotations

from mlref.scale.run import main

raise SystemExit(main())
