"""Feast repository shipped as package data.

``feature_store.yaml`` is a template (``string.Template``) written into
``settings.feature_repo`` at build time; ``fraud_repo`` holds the Feast objects (it imports
feast, so only ``mlref.features.store`` imports it, inside functions).
"""
