"""Features of the reference system: one definition, an offline and an online path, Feast.

Import the submodules you need; ``mlref.features.store`` is the only one that touches Feast
(and imports it inside its functions).
"""
