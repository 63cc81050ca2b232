"""Gemini CLI `BeforeTool` (.gemini/settings.json): run_shell_command, write_file, replace. Deny: exit 2 with
the reason on stderr, and `{"decision": "deny", "reason": ...}` as the only stdout. Allow: exit 0, nothing."""

from __future__ import annotations

import json

from tfgate.agents.adapters import Action, Answer, field, tool_call, under

EVENT = "BeforeTool"
_FILE_TOOLS = ("write_file", "replace", "edit", "write_todos_file")


def parse(data: object) -> list[Action]:
    tool = field(data, "tool_name")
    cwd = field(data, "cwd", required=False)
    tool_input = field(data, "tool_input", kind=dict)
    where = under(cwd, tool_input.get("directory", tool_input.get("dir_path")))
    return tool_call(tool, tool_input, where, file_tools=_FILE_TOOLS, shells=("run_shell_command",))


def allow() -> Answer:
    return Answer(0)


def deny(reason: str) -> Answer:
    return Answer(2, json.dumps({"decision": "deny", "reason": reason}) + "\n", f"tfgate guard: {reason}\n")


def config(command: str) -> dict[str, list[dict]]:
    hook = {"type": "command", "name": "tfgate-guard", "command": command, "timeout": 30000}
    return {EVENT: [{"matcher": ".*", "hooks": [hook]}]}


FILES = {"project": ".gemini/settings.json", "user": "~/.gemini/settings.json"}
#: Stable-channel builds run hooks only with `hooksConfig.enabled` (kept as it is when already set).
TOP = {"hooksConfig": {"enabled": True}}
NOTE = "Gemini CLI runs hooks only when enabled: check that hooksConfig.enabled is true (set here unless it was set)."
