"""`-C DIR`, as with `terraform -chdir=DIR`: every relative path on the command line is read and written
relative to DIR, and a DIR that is not a directory is an input error (exit 2) naming it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from tfgate.errors import TfgateError

P = TypeVar("P", Path, str, None)


def working_dir(chdir: Path | str | None) -> Path:
    """The working directory given with -C (default "."); missing or not a directory: TfgateError."""
    root = Path(chdir) if chdir is not None else Path(".")
    if not root.is_dir():
        what = "not a directory" if root.exists() else "working directory not found"
        raise TfgateError(f"{what}: {root}")
    return root


def at(root: Path, path: P) -> P:
    """PATH relative to ROOT (absolute paths, None and "-" for stdin stay as they are)."""
    if path is None or str(path) == "-" or os.path.isabs(path) or str(root) in ("", "."):
        return path
    joined = root / Path(path).expanduser()
    return joined if isinstance(path, Path) else str(joined)  # type: ignore[return-value]


def shown(path: Path | str, base: Path) -> str:
    """How to write PATH in a command run with BASE as its working directory: relative inside BASE, else
    absolute (both resolved, so the command works as printed)."""
    full = Path(os.path.abspath(path))
    try:
        rel = full.relative_to(Path(os.path.abspath(base)))
    except ValueError:
        return str(full)
    return str(rel) if str(rel) != "." else "."
