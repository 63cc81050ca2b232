"""The agent hook: reads a coding agent's tool-call payload, runs the guard on it, answers allow or block,
and records blocks in the audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfgate.agents.analyzer import check_argv, check_command, check_write
from tfgate.agents.words import Decision
from tfgate.strict import json_loads

# --- the Claude Code PreToolUse hook -----------------------------------------------------------------


@dataclass(frozen=True)
class HookAnswer:
    """What the hook process prints and exits with."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    decision: Decision | None = None
    command: str | None = None
    cwd: str | None = None


def deny_json(reason: str) -> str:
    """The PreToolUse JSON form of a denial."""
    return json.dumps(
        {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": reason,
            }
        }
    )


def _deny(reason: str, decision: Decision | None = None, command: str | None = None, cwd: str | None = None):
    return HookAnswer(2, deny_json(reason) + "\n", f"tfgate guard: {reason}\n", decision, command, cwd)


def hook(stdin_text: str) -> HookAnswer:
    """Answer one Claude Code PreToolUse hook call: exit 0 (go ahead, no output) or 2 (deny)."""
    try:
        data = json_loads(stdin_text)
    except (ValueError, RecursionError) as exc:
        return _deny(f"malformed hook input (not JSON: {exc}); blocked (fail closed)")
    if not isinstance(data, dict) or not isinstance(data.get("tool_name"), str):
        return _deny("malformed hook input (no tool_name); blocked (fail closed)")
    tool_input = data.get("tool_input")
    cwd = data.get("cwd") if isinstance(data.get("cwd"), str) else None
    if data["tool_name"] in _FILE_TOOLS:
        path = tool_input.get(_FILE_TOOLS[data["tool_name"]]) if isinstance(tool_input, dict) else None
        if not isinstance(path, str) or not path:
            return _deny(f"malformed {data['tool_name']} hook input (no file path); blocked (fail closed)")
        decision = check_write(path, cwd)
        return HookAnswer(0) if decision.allowed else _deny(decision.reason, decision, f"write {path}", cwd)
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if data["tool_name"] != "Bash":
        if not isinstance(command, str):
            return HookAnswer(0)
    elif not isinstance(command, str):
        return _deny("malformed Bash hook input (tool_input.command is not a string); blocked (fail closed)")
    decision = check_command(command, cwd)
    if decision.allowed:
        return HookAnswer(0, decision=decision, command=command, cwd=cwd)
    return _deny(decision.reason, decision, command, cwd)


#: Claude Code's file tools and the field that names the file.
_FILE_TOOLS = {
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}


def settings_snippet(command: str) -> str:
    """The `.claude/settings.json` snippet that installs the guard as a PreToolUse hook."""
    return json.dumps(
        {
            "hooks": {
                "PreToolUse": [
                    {
                        "matcher": "Bash|Write|Edit|MultiEdit|NotebookEdit",
                        "hooks": [{"type": "command", "command": command}],
                    }
                ]
            }
        },
        indent=2,
    )


def _audit_block(
    decision: Decision | None,
    reason: str,
    command: str | None,
    cwd: str | None,
    *,
    source: str,
    audit_log: str | None,
) -> str | None:
    """Record a block in the audit log; returns a warning line when the log cannot be written."""
    from tfgate import audit

    base = Path(cwd) if cwd and Path(cwd).is_dir() else Path.cwd()
    try:
        audit.record_event(
            "guard",
            command=command,
            log=audit_log,
            cwd=base,
            manifest_log=_manifest_audit_log(base),
            verdict="block",
            reason=reason,
            segment=decision.segment if decision else None,
            code=decision.code if decision else "malformed-input",
            source=source,
        )
    except Exception as exc:  # the block stands either way
        return f"tfgate guard: warning: could not write the audit log: {exc}\n"
    return None


def _manifest_audit_log(cwd: Path) -> Path | None:
    import os

    if os.environ.get("TFGATE_AUDIT_LOG"):
        return None
    try:
        from tfgate.policy.manifest import load_manifest

        return load_manifest(None, cwd=cwd).audit_log
    except Exception:
        return None


def main(command_args: Sequence[str], *, print_config: bool = False, audit_log: str | None = None) -> int:
    """`tfgate guard`: the hook (JSON on stdin) or the generic form (`-- COMMAND...`). Fails closed."""
    import sys

    try:
        if print_config and not command_args:  # with a command too, the command is judged
            import shlex
            import shutil

            exe = shutil.which("tfgate")
            cmd = f"{shlex.quote(exe)} guard" if exe else f"{shlex.quote(sys.executable)} -m tfgate guard"
            sys.stdout.write(settings_snippet(cmd) + "\n")
            return 0
        if command_args:
            decision = check_argv(command_args)
            if decision.allowed:
                return 0
            text = " ".join(command_args) if len(command_args) > 1 else command_args[0]
            warn = _audit_block(decision, decision.reason, text, None, source="argv", audit_log=audit_log)
            sys.stderr.write(f"tfgate guard: blocked: {decision.reason}\n" + (warn or ""))
            return 2
        answer = hook(sys.stdin.read())
        warn = None
        if answer.exit_code != 0:
            reason = answer.decision.reason if answer.decision else answer.stderr.strip()
            warn = _audit_block(
                answer.decision, reason, answer.command, answer.cwd, source="claude-code", audit_log=audit_log
            )
        sys.stdout.write(answer.stdout)
        sys.stderr.write(answer.stderr + (warn or ""))
        return answer.exit_code
    except BaseException as exc:  # fail closed: Claude Code treats any exit code but 2 as "go ahead"
        message = f"internal error ({type(exc).__name__}: {exc}); blocked (fail closed)"
        sys.stdout.write(deny_json(message) + "\n")
        sys.stderr.write(f"tfgate guard: {message}\n")
        return 2
