"""OpenAI Codex CLI `PreToolUse` (.codex/hooks.json): the shell tool and apply_patch (the files are read from
the patch's `*** Add/Update/Delete File:` and `*** Move to:` lines). Deny: exit 2 with a non-empty reason on
stderr and nothing on stdout (Codex rejects any output field outside its schema, and a rejected answer lets
the tool run). Allow: exit 0, nothing printed."""

from __future__ import annotations

import re

from tfgate.agents.adapters import Action, Answer, Malformed, exit2, field, new_text, tool_call, under
from tfgate.agents.words import lazy_re

EVENT = "PreToolUse"
_PATCH_FILE = lazy_re(r"^\*\*\* (?:Add File|Update File|Delete File|Move to): (.+?)\s*$", re.M)
_PATCH_TOOLS = ("apply_patch", "Edit", "Write")


def parse(data: object) -> list[Action]:
    tool = field(data, "tool_name")
    cwd = field(data, "cwd", required=False)
    tool_input = field(data, "tool_input", kind=dict)
    if tool in _PATCH_TOOLS and isinstance(
        tool_input.get("file_path"), str
    ):  # Edit/Write in the Claude shape
        return [Action("write", tool_input["file_path"], cwd, new_text(tool_input))]
    if tool in _PATCH_TOOLS:
        patch = tool_input.get("command", tool_input.get("input", tool_input.get("patch")))
        if isinstance(patch, list):
            patch = "\n".join(p for p in patch if isinstance(p, str))
        if not isinstance(patch, str) or "*** Begin Patch" not in patch:
            raise Malformed(f"{tool}: no patch text in tool_input")
        files = _PATCH_FILE.findall(patch)
        if not files:
            raise Malformed(f"{tool}: the patch names no file")
        added = "\n".join(line[1:] for line in patch.splitlines() if line.startswith("+"))
        return [Action("write", f, cwd, added) for f in files]
    shells = ("Bash", "shell", "local_shell", "exec_command", "unified_exec")
    return tool_call(tool, tool_input, under(cwd, tool_input.get("workdir")), file_tools=(), shells=shells)


def allow() -> Answer:
    return Answer(0)


def deny(reason: str) -> Answer:
    return exit2(reason)


def config(command: str) -> dict[str, list[dict]]:
    return {EVENT: [{"matcher": ".*", "hooks": [{"type": "command", "command": command, "timeout": 30,
                                                "statusMessage": "tfgate guard"}]}]}  # fmt: skip


FILES = {"project": ".codex/hooks.json", "user": "~/.codex/hooks.json"}
NOTE = "Codex loads project hooks only in a trusted project; review and trust the hook in `/hooks`."
