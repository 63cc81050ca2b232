"""`tfgate guard install --agent NAME --scope project|user`: writes the guard into that agent's hook configuration.

JSON configurations are merged, never clobbered: the existing file is read strictly (a duplicate key or invalid
JSON is an error, not a reason to start over), tfgate's own entries are replaced where they stand, everything
else is kept, and the file is replaced atomically. Running it twice changes nothing. Cline's hook is an
executable file: one that tfgate did not write is left alone (an error saying what to add to it)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tfgate.agents.adapters import load

_OURS = ("tfgate-guard", "tfgate guard", "tfgate.agents.hook")


class InstallError(Exception):
    """The configuration cannot be merged safely (exit 2)."""


@dataclass(frozen=True)
class Written:
    path: Path
    changed: bool
    #: What tfgate put there (the hook entries, or the script).
    added: str
    note: str = ""


def guard_command(agent: str) -> str:
    """The command the installed hook runs: the `tfgate-guard` console script by absolute path."""
    exe = shutil.which("tfgate-guard") or str(Path(sys.executable).parent / "tfgate-guard")
    base = shlex.quote(exe) if os.path.isfile(exe) else f"{shlex.quote(sys.executable)} -m tfgate.agents.hook"
    return f"{base} --agent {agent}"


def _ours(entry: object) -> bool:
    if isinstance(entry, str):
        return any(mark in entry for mark in _OURS)
    if isinstance(entry, dict):
        return any(_ours(v) for v in entry.values())
    if isinstance(entry, list):
        return any(_ours(v) for v in entry)
    return False


def merge(doc: dict, top: dict, entries: dict[str, list[dict]]) -> dict:
    """`doc` with tfgate's hook entries in place (replacing earlier ones of tfgate's, keeping all others)."""
    out = json.loads(json.dumps(doc))
    for key, value in top.items():
        out.setdefault(key, value)
    hooks = out.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise InstallError("its `hooks` is not a JSON object")
    for event, new in entries.items():
        current = hooks.setdefault(event, [])
        if not isinstance(current, list):
            raise InstallError(f"its `hooks.{event}` is not a list")
        mine = [k for k, e in enumerate(current) if _ours(e)]
        if mine:
            at = mine[0]
            current[:] = [e for k, e in enumerate(current) if k not in mine]
            current[at:at] = new
        else:
            current.extend(new)
    return out


def _read(path: Path) -> dict:
    from tfgate.strict import json_loads

    if not path.exists():
        return {}
    try:
        doc = json_loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InstallError(
            f"{path} is not strict JSON ({exc}); fix it first, tfgate will not overwrite it"
        ) from None
    if not isinstance(doc, dict):
        raise InstallError(f"{path} is not a JSON object; tfgate will not overwrite it")
    return doc


def _write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install(agent: str, scope: str, *, project: Path, home: Path, command: str | None = None) -> Written:
    """Write (merge) the guard into one agent's configuration; returns what was written."""
    adapter = load(agent)
    if scope not in adapter.FILES:
        raise InstallError(f"--scope must be one of: {', '.join(adapter.FILES)}")
    spec = adapter.FILES[scope]
    path = home / spec[2:] if spec.startswith("~/") else project / spec
    command = command or guard_command(agent)
    note = getattr(adapter, "NOTE", "")
    if agent == "cline":
        script = adapter.script(command)
        if path.exists():
            current = path.read_text(encoding="utf-8", errors="replace")
            if current == script:
                return Written(path, False, script, note)
            if not _ours(current):
                raise InstallError(
                    f"{path} exists and is not tfgate's; add `{command}` to it yourself (its JSON answer must "
                    "reach Cline) or move it away"
                )
        _write(path, script, 0o755)
        return Written(path, True, script, note)
    entries = adapter.config(command)
    doc = _read(path)
    merged = merge(doc, getattr(adapter, "TOP", {}), entries)
    added = json.dumps(entries, indent=2)
    if merged == doc and path.exists():
        return Written(path, False, added, note)
    _write(path, json.dumps(merged, indent=2) + "\n")
    return Written(path, True, added, note)


def main_install(agent: str, scope: str, *, project: Path | None = None, home: Path | None = None) -> int:
    """Install and print what was written (exit 0), or why not (exit 2)."""
    try:
        w = install(agent, scope, project=project or Path.cwd(), home=home or Path.home())
    except (InstallError, OSError) as exc:
        sys.stderr.write(f"tfgate guard install: error: {exc}\n")
        return 2
    verb = "wrote" if w.changed else "unchanged (already installed)"
    sys.stdout.write(f"{verb}: {w.path}\n{w.added.rstrip()}\n" + (f"note: {w.note}\n" if w.note else ""))
    return 0
