"""Renderers: one module per output format behind one small interface, ``render(result, ...) -> str``."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

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


def report_dir(path: Path) -> Path:
    """Create a report folder (and its parents); one that cannot be created is an input error naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TfgateError(f"cannot create the report folder {path}: {exc.strerror or exc}") from None
    return path


def write_report(path: Path, text: str) -> Path:
    """Write a rendered report, creating its folder; an unwritable path is an input error naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TfgateError(f"cannot write the report {path}: {exc.strerror or exc}") from None
    return path
