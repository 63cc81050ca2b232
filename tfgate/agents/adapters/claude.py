"""Claude Code `PreToolUse` (.claude/settings.json): Bash plus the file tools Write, Edit, MultiEdit and
NotebookEdit. Deny: exit 2 with the reason on stderr (what the model sees) and the JSON form
(`hookSpecificOutput.permissionDecision: "deny"`) on stdout. Allow: exit 0, nothing printed."""

from __future__ import annotations

import json

from tfgate.agents.adapters import Action, Answer, Malformed, field, new_text

EVENT = "PreToolUse"
#: File tools and the field that names the file.
FILE_TOOLS = {
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}


def parse(data: object) -> list[Action]:
    tool = field(data, "tool_name")
    cwd = field(data, "cwd", required=False)
    tool_input = field(data, "tool_input", kind=dict, required=tool in ("Bash", *FILE_TOOLS))
    if tool in FILE_TOOLS:
        return [Action("write", field(tool_input, FILE_TOOLS[tool]), cwd, new_text(tool_input))]
    if tool == "Bash":
        return [Action("shell", field(tool_input, "command"), cwd)]
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if command is None:
        return []  # Read, Grep, WebFetch ...: nothing to run
    if not isinstance(command, str):
        raise Malformed(f"{tool}: tool_input.command is not a string")
    return [Action("shell", command, cwd)]


def allow() -> Answer:
    return Answer(0)


def deny(reason: str) -> Answer:
    out = {"hookSpecificOutput": {"hookEventName": EVENT, "permissionDecision": "deny",
                                  "permissionDecisionReason": reason}}  # fmt: skip
    return Answer(2, json.dumps(out) + "\n", f"tfgate guard: {reason}\n")


def config(command: str) -> dict[str, list[dict]]:
    """The hook entries per event (`onFailure: block`: a hook that cannot start or times out blocks, on
    Claude Code 2.1.295 and later; older versions ignore the key). Every tool is matched: a tool tfgate does
    not list (an MCP shell) is judged by its `command` too."""
    hook = {"type": "command", "command": command, "timeout": 30, "onFailure": "block"}
    return {EVENT: [{"matcher": "*", "hooks": [hook]}]}


FILES = {"project": ".claude/settings.json", "user": "~/.claude/settings.json"}
