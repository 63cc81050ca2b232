"""Locate data files shipped with tfgate (rules/, fixtures/demo) in a wheel or a source checkout."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_path(relative: str) -> Path:
    """Path of a shipped data file, e.g. ``data_path("rules/catalog.yaml")``.

    In an installed wheel the files live under ``tfgate/_data``; in a source checkout (or an
    editable install) they are read from the repository's top-level folders.
    """
    for base in (_PKG / "_data", _PKG.parent):
        candidate = base / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"tfgate data file not found: {relative}")
