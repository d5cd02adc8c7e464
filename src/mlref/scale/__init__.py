"""Scale-out of the reference system on engines users already run.

* :mod:`mlref.scale.redis_store`: Feast's Redis online store (configuration only) and a
  throw-away local ``redis-server``;
* :mod:`mlref.scale.spark_batch`: batch scoring on Spark (``mapInPandas`` + ONNX Runtime per
  partition), identical to the single-process batch scorer;
* :mod:`mlref.scale.replicas`: server replicas (N ports, or ``uvicorn --workers``) sharing
  only the feature store and the model;
* :mod:`mlref.scale.run`: ``run_scale(out_dir)`` measures all of it (``python -m mlref.scale``).

Importing this package is cheap: redis, pyspark, Feast and uvicorn load inside functions.
"""

from __future__ import annotations

from typing import Any


def run_scale(out_dir: Any, **kwargs: Any) -> dict[str, Any]:
    """See :func:`mlref.scale.run.run_scale`."""
    from mlref.scale.run import run_scale as _run

    return _run(out_dir, **kwargs)


__all__ = ["run_scale"]
