"""Kiro CLI `preToolUse` (the hooks of an agent in .kiro/agents/): execute_bash/shell and fs_write/write. Deny:
exit 2 with the reason on stderr (returned to the model). Allow: exit 0."""

from __future__ import annotations

from tfgate.agents.adapters import Action, Answer, exit2, field, tool_call

_SHELLS = ("execute_bash", "execute_cmd", "shell", "bash")
_FILE_TOOLS = ("fs_write", "write")


def parse(data: object) -> list[Action]:
    tool = field(data, "tool_name")
    cwd = field(data, "cwd", required=False)
    tool_input = field(data, "tool_input", kind=dict)
    return tool_call(tool, tool_input, cwd, file_tools=_FILE_TOOLS, path_keys=("path",), shells=_SHELLS)


def allow() -> Answer:
    return Answer(0)


def deny(reason: str) -> Answer:
    return exit2(reason)


def config(command: str) -> dict[str, list[dict]]:
    return {"preToolUse": [{"matcher": "*", "command": command, "timeout_ms": 30000, "cache_ttl_seconds": 0}]}


FILES = {"project": ".kiro/agents/tfgate.json", "user": "~/.kiro/agents/tfgate.json"}
TOP = {"name": "tfgate", "description": "Kiro with the tfgate guard on every tool call", "tools": ["*"]}
NOTE = "The hook runs only in this agent: `kiro-cli chat --agent tfgate` (or make tfgate the default agent)."
