"""Kiro CLI `preToolUse` (the hooks of an agent in .kiro/agents/): execute_bash/shell and fs_write/write. Deny:
exit 2 with the reason on stderr (returned to the model). Allow: exit 0."""

from __future__ import annotations

from tfgate.agents.adapters import Action, Answer, Malformed, exit2, field, shell_text

_SHELLS = ("execute_bash", "execute_cmd", "shell", "bash")
_FILE_TOOLS = ("fs_write", "write")


def parse(data: object) -> list[Action]:
    tool = field(data, "tool_name")
    cwd = field(data, "cwd", required=False)
    tool_input = field(data, "tool_input", kind=dict)
    if tool in _FILE_TOOLS:
        return [Action("write", field(tool_input, "path"), cwd)]
    command = tool_input.get("command")
    if command is None:
        if tool in _SHELLS:
            raise Malformed(f"{tool}: no tool_input.command")
        return []
    return [Action("shell", shell_text(command), cwd)]


def allow() -> Answer:
    return Answer(0)


def deny(reason: str) -> Answer:
    return exit2(reason)


def config(command: str) -> dict[str, list[dict]]:
    return {"preToolUse": [{"matcher": "*", "command": command, "timeout_ms": 30000, "cache_ttl_seconds": 0}]}


FILES = {"project": ".kiro/agents/tfgate.json", "user": "~/.kiro/agents/tfgate.json"}
TOP = {"name": "tfgate", "description": "Kiro with the tfgate guard on every tool call", "tools": ["*"]}
NOTE = "The hook runs only in this agent: `kiro-cli chat --agent tfgate` (or make tfgate the default agent)."
