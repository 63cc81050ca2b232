"""Evaluate: the manifest, the built-in catalog, risk ranking and the decision (pure functions of loaded inputs)."""
