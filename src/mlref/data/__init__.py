"""Reference data: a seeded transaction generator, validation with quarantine, freshness.

Importing this package is cheap; pandas/pandera are imported by the modules that use them
(``mlref.data.generate``, ``mlref.data.validate``, ``mlref.data.corrupt``).
"""

from __future__ import annotations
