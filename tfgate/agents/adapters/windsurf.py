"""Windsurf Cascade hooks (.windsurf/hooks.json): `pre_run_command` (tool_info.command_line, tool_info.cwd) and
`pre_write_code` (tool_info.file_path). Deny: exit 2, the reason on stderr (Cascade shows it). Allow: exit 0."""

from __future__ import annotations

from tfgate.agents.adapters import Action, Answer, Malformed, exit2, field, new_text, shell_text


def parse(data: object) -> list[Action]:
    event = field(data, "agent_action_name")
    info = field(data, "tool_info", kind=dict)
    cwd = info.get("cwd") if isinstance(info.get("cwd"), str) else None
    if event == "pre_run_command":
        return [Action("shell", shell_text(field(info, "command_line", kind=object)), cwd)]
    if event == "pre_write_code":
        return [Action("write", field(info, "file_path"), cwd, new_text(info))]
    raise Malformed(f"unexpected agent_action_name {event!r}")


def allow() -> Answer:
    return Answer(0)


def deny(reason: str) -> Answer:
    return exit2(reason)


def config(command: str) -> dict[str, list[dict]]:
    entry = {"command": command, "show_output": True}
    return {"pre_run_command": [entry], "pre_write_code": [dict(entry)]}


FILES = {"project": ".windsurf/hooks.json", "user": "~/.codeium/windsurf/hooks.json"}
