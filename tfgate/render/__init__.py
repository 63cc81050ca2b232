"""Renderers: one module per output format behind one small interface, ``render(result, ...) -> str``."""

from __future__ import annotations

import os
import sys
from importlib import import_module
from pathlib import Path

from tfgate.errors import TfgateError
from tfgate.model import CombinedResult, Result

FORMATS = ("text", "json", "markdown", "html", "gitlab")


def render(result: Result | CombinedResult, fmt: str, *, color: bool = False) -> str:
    """Render the result in one of FORMATS; each format module has `render(Result)` and
    `render_roots(CombinedResult)`. Renderers present; they decide nothing."""
    if fmt not in FORMATS:
        raise TfgateError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    module = import_module(f"tfgate.render.{fmt}")
    fn = module.render_roots if isinstance(result, CombinedResult) else module.render
    if fmt == "text":
        return fn(result, color=color)
    return fn(result)


def report_dir(path: Path) -> Path:
    """Create a report folder (and its parents); one that cannot be created is an input error naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TfgateError(f"cannot create the report folder {path}: {exc.strerror or exc}") from None
    return path


def rendered_bytes(result: Result | CombinedResult, fmt: str) -> bytes:
    """``render(result, fmt)`` as UTF-8, made directly where the format can (json)."""
    if fmt == "json" and isinstance(result, Result):
        from tfgate.render.json import render_bytes

        return render_bytes(result)
    return render(result, fmt).encode("utf-8")


def write_report(path: Path, text: str | bytes) -> Path:
    """Write a rendered report, creating its folder; an unwritable path is an input error naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TfgateError(f"cannot write the report {path}: {exc.strerror or exc}") from None
    return path


def use_color(stream: object = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def emit(result: object, fmt: str | None, reports: dict[str, Path | None]) -> None:
    """Print the result in the chosen format and write any extra report files."""
    for kind, path in reports.items():
        if path is not None:
            write_report(path, rendered_bytes(result, kind))  # type: ignore[arg-type]
    chosen = fmt or "text"
    out = getattr(sys.stdout, "buffer", None)
    if chosen == "json" and out is not None:
        sys.stdout.flush()
        out.write(rendered_bytes(result, chosen))  # type: ignore[arg-type]
        out.flush()
        return
    sys.stdout.write(render(result, chosen, color=chosen == "text" and use_color()))  # type: ignore[arg-type]
    sys.stdout.flush()
