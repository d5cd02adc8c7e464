"""mlref: a reference fraud-detection system enforced by mlgates.

Importing this package is cheap: Feast, MLflow, XGBoost and ONNX Runtime are imported by
the stage that needs them, never here.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
