"""Renderers: one module per output format behind one small interface, ``render(result, ...) -> str``."""

from __future__ import annotations

from importlib import import_module

from tfgate.errors import TfgateError
from tfgate.model import Result

FORMATS = ("text", "json", "markdown", "html")


def render(result: Result, fmt: str, *, color: bool = False) -> str:
    """Render the result in one of FORMATS. Renderers present; they decide nothing."""
    if fmt not in FORMATS:
        raise TfgateError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    module = import_module(f"tfgate.render.{fmt}")
    if fmt == "text":
        return module.render(result, color=color)
    return module.render(result)
