"""Enforce: the gate in the path (gated plan/apply/destroy, the terraform shim)."""
