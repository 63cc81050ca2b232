"""One adapter per coding agent behind one small interface: `parse(payload) -> actions` (shell commands, file
writes) and `allow()` / `deny(reason) -> Answer` (stdout, stderr, exit code) in the shape that agent treats as a
go-ahead or a block, plus `config(command)`, the hook entry its configuration file takes (see `install`).

Every agent but Cursor and Claude Code (with `onFailure: "block"`) lets a tool run when its hook crashes,
times out or answers in an unexpected shape, so adapters never raise on bad input: they raise `Malformed`,
which the hook answers with that agent's own deny."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from types import ModuleType

from tfgate.agents.words import record

AGENTS = ("claude", "codex", "gemini", "cursor", "copilot", "windsurf", "cline", "kiro")


@record
class Action:
    """What a tool call would do: run a shell command line, or write (create, edit, delete) a file."""

    kind: str  # "shell" or "write"
    text: str  # the command line, or the file's path
    cwd: str | None = None
    #: The new text a write puts in the file, as far as the payload shows it (judged for shell startup files).
    content: str = ""


@record
class Answer:
    """What the hook process prints and exits with."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""


class Malformed(ValueError):
    """The payload is not in the agent's documented shape (answered as a block, never as a pass)."""


def load(agent: str) -> ModuleType:
    """The adapter module of one agent (imported alone: the hook pays only for the agent it serves)."""
    if agent not in AGENTS:
        raise Malformed(f"unknown agent {agent!r} (known: {', '.join(AGENTS)})")
    return importlib.import_module(f"tfgate.agents.adapters.{agent}")


def field(data: object, *path: str, kind: type = str, required: bool = True) -> object:
    """A value nested in a JSON object, of the given type; Malformed when it is missing or of another type."""
    value = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            if required:
                raise Malformed(f"no {'.'.join(path)} in the hook input")
            return None
        value = value[key]
    if not isinstance(value, kind) or (kind is str and required and not value):
        if not required and value is None:
            return None
        what = "non-empty string" if kind is str else getattr(kind, "__name__", "string or object")
        raise Malformed(f"{'.'.join(path)} is not a {what}")
    return value


def shell_text(command: object) -> str:
    """A shell command given as a string or as an argv list (`["bash", "-lc", "..."]`)."""
    if isinstance(command, str) and command:
        return command
    if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        import shlex

        return command[0] if len(command) == 1 else shlex.join(command)
    raise Malformed("the command is neither a non-empty string nor a list of strings")


_NEW_TEXT = ("content", "contents", "new_string", "new_str", "file_text", "new_source", "diff", "text")


def new_text(args: object) -> str:
    """The new text of a file tool's arguments (`content`, `new_string`, each of `edits[].new_string` ...)."""
    if isinstance(args, list):
        return "\n".join(new_text(a) for a in args)
    if not isinstance(args, dict):
        return ""
    parts = [v for k in _NEW_TEXT if isinstance(v := args.get(k), str)]
    parts += [new_text(args[k]) for k in ("edits",) if isinstance(args.get(k), list)]
    return "\n".join(p for p in parts if p)


def json_object(value: object, what: str) -> dict:
    """A JSON object given as an object or as a JSON string to decode again (strictly: no repeated key)."""
    if isinstance(value, str):
        from tfgate.strict import json_loads

        try:
            value = json_loads(value)
        except (ValueError, RecursionError) as exc:
            raise Malformed(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not a JSON object")
    return value


def tool_call(
    tool: str, args: dict, cwd: str | None, *, file_tools: Sequence[str], path_keys: Sequence[str] = ("file_path",),
    shells: Sequence[str] = (),
) -> list[Action]:  # fmt: skip
    """The shape most agents share: a file tool names its file; any other tool is judged by its `command`
    argument when it has one (which the agent's shell tools must)."""
    if tool in file_tools:
        path = next((args[k] for k in path_keys if k in args), None)
        if not isinstance(path, str) or not path:
            raise Malformed(f"{tool}: no file path in the tool arguments")
        return [Action("write", path, cwd, new_text(args))]
    command = args.get("command")
    if command is None:
        if tool in shells:
            raise Malformed(f"{tool}: no command in the tool arguments")
        return []
    return [Action("shell", shell_text(command), cwd)]


def under(cwd: str | None, directory: object) -> str | None:
    """A tool's own directory field (relative to the working directory)."""
    if not isinstance(directory, str) or not directory:
        return cwd
    return os.path.join(cwd or "", directory) if not os.path.isabs(directory) else directory


def exit2(reason: str) -> Answer:
    """The deny most agents share: exit 2 with the (non-empty) reason on stderr."""
    return Answer(2, "", f"tfgate guard: {reason or 'blocked'}\n")
