"""GitHub Copilot (CLI and cloud coding agent) `preToolUse` (.github/hooks/*.json): `toolName` and `toolArgs`,
a JSON string decoded again (the VS Code-compatible `tool_name`/`tool_input` form is read too). Deny:
`{"permissionDecision": "deny", "permissionDecisionReason": ...}` on stdout with exit 0 — Copilot logs and
skips a hook that exits non-zero, so exit 2 would let the tool run. Allow: exit 0, nothing printed."""

from __future__ import annotations

import json

from tfgate.agents.adapters import Action, Answer, field, json_object, tool_call

_SHELLS = ("bash", "powershell", "shell", "run_in_terminal")
_FILE_TOOLS = ("create", "edit", "write", "str_replace", "str_replace_editor", "apply_patch", "insert")


def parse(data: object) -> list[Action]:
    if isinstance(data, dict) and "toolName" not in data and "tool_name" in data:
        tool, args = field(data, "tool_name"), field(data, "tool_input", kind=dict)
    else:
        tool = field(data, "toolName")
        args = json_object(field(data, "toolArgs", kind=(str, dict)), "toolArgs")
    cwd = data.get("cwd") if isinstance(data.get("cwd"), str) else None
    keys = ("path", "file_path", "filePath")
    return tool_call(tool, args, cwd, file_tools=_FILE_TOOLS, path_keys=keys, shells=_SHELLS)


def allow() -> Answer:
    return Answer(0)


def deny(reason: str) -> Answer:
    out = {"permissionDecision": "deny", "permissionDecisionReason": reason}
    return Answer(0, json.dumps(out) + "\n", f"tfgate guard: {reason}\n")


def config(command: str) -> dict[str, list[dict]]:
    entry = {"type": "command", "bash": command, "powershell": command, "cwd": ".", "timeoutSec": 30}
    return {"preToolUse": [entry]}


FILES = {"project": ".github/hooks/tfgate.json", "user": "~/.copilot/hooks/tfgate.json"}
TOP = {"version": 1}
NOTE = "The cloud coding agent reads .github/hooks/ from the default branch: commit and merge it."
