"""Cursor hooks (.cursor/hooks.json): `beforeShellExecution` (command, cwd), `beforeMCPExecution` and
`preToolUse` (tool_name, tool_input: an object, or for MCP a JSON string) for file writes and other tools. Deny: `{"permission": "deny", "user_message", "agent_message"}` on stdout and exit
2 (never "ask", which auto-review mode ignores); allow: `{"permission": "allow"}`. Entries carry `failClosed:
true`, so a hook that crashes or times out blocks."""

from __future__ import annotations

import json

from tfgate.agents.adapters import Action, Answer, Malformed, field, json_object, shell_text, tool_call

_FILE_TOOLS = ("Write", "Edit", "StrReplace", "MultiEdit", "Delete", "EditNotebook", "edit_file", "write")


def _cwd(data: dict) -> str | None:
    cwd = data.get("cwd")
    if isinstance(cwd, str) and cwd:
        return cwd
    roots = data.get("workspace_roots")
    return roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None


def parse(data: object) -> list[Action]:
    event = field(data, "hook_event_name")
    cwd = _cwd(data)
    if event == "beforeShellExecution":
        return [Action("shell", shell_text(field(data, "command", kind=object)), cwd)]
    if event not in ("preToolUse", "beforeMCPExecution"):
        raise Malformed(f"unexpected hook_event_name {event!r}")
    tool = field(data, "tool_name")
    tool_input = json_object(data.get("tool_input"), "tool_input")  # MCP calls give a JSON string
    if event == "beforeMCPExecution" and not isinstance(tool_input.get("command"), (str, list)):
        return []  # an MCP tool whose arguments hold no command line
    keys = ("file_path", "path", "target_file")
    return tool_call(tool, tool_input, cwd, file_tools=_FILE_TOOLS, path_keys=keys)


def allow() -> Answer:
    return Answer(0, json.dumps({"permission": "allow"}) + "\n")


def deny(reason: str) -> Answer:
    out = {"permission": "deny", "user_message": f"tfgate guard: {reason}", "agent_message": reason}
    return Answer(2, json.dumps(out) + "\n", f"tfgate guard: {reason}\n")


def config(command: str) -> dict[str, list[dict]]:
    entry = {"command": command, "timeout": 30, "failClosed": True}
    return {"beforeShellExecution": [entry], "beforeMCPExecution": [dict(entry)], "preToolUse": [dict(entry)]}


FILES = {"project": ".cursor/hooks.json", "user": "~/.cursor/hooks.json"}
TOP = {"version": 1}
