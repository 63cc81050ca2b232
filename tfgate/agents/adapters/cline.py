"""Cline `PreToolUse` (an executable named PreToolUse in .clinerules/hooks/): `preToolUse.toolName` and
`.parameters`. Deny: `{"cancel": true, "errorMessage": ...}` on stdout, exit 0; allow: `{"cancel": false}`
(Cline documents no exit-code contract, so the answer is always valid JSON)."""

from __future__ import annotations

import json

from tfgate.agents.adapters import Action, Answer, Malformed, field, tool_call

_FILE_TOOLS = (
    "write_to_file",
    "replace_in_file",
    "apply_diff",
    "insert_content",
    "new_rule",
    "search_and_replace",
)


def parse(data: object) -> list[Action]:
    tool = field(data, "preToolUse", "toolName")
    params = field(data, "preToolUse", "parameters", kind=dict)
    roots = data.get("workspaceRoots")
    cwd = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None
    if tool == "use_mcp_tool" and not isinstance(params.get("command"), str):
        return []
    return tool_call(
        tool, params, cwd, file_tools=_FILE_TOOLS, path_keys=("path",), shells=("execute_command",)
    )


def allow() -> Answer:
    return Answer(0, json.dumps({"cancel": False}) + "\n")


def deny(reason: str) -> Answer:
    if not reason:
        raise Malformed("empty reason")
    return Answer(0, json.dumps({"cancel": True, "errorMessage": f"tfgate guard: {reason}"}) + "\n")


def script(command: str) -> str:
    """The hook file Cline runs (it must be executable, with a shebang)."""
    return (
        f"#!/bin/sh\n# tfgate guard hook (written by `tfgate guard install --agent cline`)\nexec {command}\n"
    )


FILES = {"project": ".clinerules/hooks/PreToolUse", "user": "~/Documents/Cline/Hooks/PreToolUse"}
NOTE = "Tick “Enable Hooks” in Cline's settings (hooks are off by default; Windows is not supported)."
