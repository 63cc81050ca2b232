"""GitHub Copilot (CLI and cloud coding agent) `preToolUse` (.github/hooks/*.json): `toolName` and `toolArgs`,
a JSON string decoded again (the VS Code-compatible `tool_name`/`tool_input` form is read too). Deny:
`{"permissionDecision": "deny", "permissionDecisionReason": ...}` on stdout with exit 0 — Copilot logs and
skips a hook that exits non-zero, so exit 2 would let the tool run. Allow: exit 0, nothing printed."""

from __future__ import annotations

import json

from tfgate.agents.adapters import Action, Answer, Malformed, field, shell_text

_SHELLS = ("bash", "powershell", "shell", "run_in_terminal")
_FILE_TOOLS = ("create", "edit", "write", "str_replace", "str_replace_editor", "apply_patch", "insert")


def parse(data: object) -> list[Action]:
    if isinstance(data, dict) and "toolName" not in data and "tool_name" in data:
        tool, args = field(data, "tool_name"), field(data, "tool_input", kind=dict)
    else:
        tool = field(data, "toolName")
        args = field(data, "toolArgs", kind=(str, dict))
        if isinstance(args, str):
            from tfgate.strict import json_loads

            try:
                args = json_loads(args)
            except (ValueError, RecursionError) as exc:
                raise Malformed(f"toolArgs is not JSON: {exc}") from None
            if not isinstance(args, dict):
                raise Malformed("toolArgs is not a JSON object")
    cwd = data.get("cwd") if isinstance(data.get("cwd"), str) else None
    if tool in _FILE_TOOLS:
        path = next((args[k] for k in ("path", "file_path", "filePath") if k in args), None)
        if not isinstance(path, str) or not path:
            raise Malformed(f"{tool}: no path in the tool arguments")
        return [Action("write", path, cwd)]
    command = args.get("command")
    if command is None:
        if tool in _SHELLS:
            raise Malformed(f"{tool}: no command in the tool arguments")
        return []
    return [Action("shell", shell_text(command), cwd)]


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
