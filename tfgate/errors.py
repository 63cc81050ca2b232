"""Errors that end a run with exit code 2 (usage or input error). tfgate fails closed."""

from __future__ import annotations


class TfgateError(Exception):
    """Input or usage tfgate cannot fully understand: a clear one-line message, exit 2, never a pass."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PlanError(TfgateError):
    """The plan cannot be read or contains something tfgate does not understand."""


class ManifestError(TfgateError):
    """The protected-resource manifest is missing, malformed or invalid."""


class TerraformError(TfgateError):
    """Terraform could not be found or failed."""
