"""The agent hook: reads one coding agent's tool-call payload, judges every action in it (shell commands with the
analyzer, file writes against tfgate's ground), answers in that agent's terms, and records blocks in the audit
log. `main` is the lean `tfgate-guard` console script: it imports the guard and nothing of the CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from tfgate.agents.adapters import Action, Malformed, load
from tfgate.agents.analyzer import check_argv, check_command, check_write
from tfgate.agents.words import Decision, record
from tfgate.strict import json_loads

TYPE_CHECKING = False  # pathlib only where a block is recorded: the hook starts for every command
if TYPE_CHECKING:
    from pathlib import Path


@record
class HookAnswer:
    """What the hook process prints and exits with, and what decided it."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    decision: Decision | None = None
    command: str | None = None
    cwd: str | None = None
    blocked: bool = False


def _judge_action(action: Action) -> Decision:
    if action.kind == "write":
        return check_write(action.text, action.cwd, action.content)
    return check_command(action.text, action.cwd)


def judge(agent: str, stdin_text: str) -> HookAnswer:
    """Answer one hook call of `agent`: its go-ahead, or its deny. Malformed input is denied (fail closed)."""
    adapter = load(agent)
    try:
        try:
            data = json_loads(stdin_text)
        except (ValueError, RecursionError) as exc:
            raise Malformed(f"not JSON: {exc}") from None
        actions = adapter.parse(data)
    except Malformed as exc:
        answer = adapter.deny(f"malformed hook input ({exc}); blocked (fail closed)")
        return HookAnswer(answer.exit_code, answer.stdout, answer.stderr, blocked=True)
    for action in actions:
        decision = _judge_action(action)
        if not decision.allowed:
            answer = adapter.deny(decision.reason)
            text = action.text if action.kind == "shell" else f"write {action.text}"
            return HookAnswer(
                answer.exit_code, answer.stdout, answer.stderr, decision, text, action.cwd, True
            )
    answer = adapter.allow()
    return HookAnswer(answer.exit_code, answer.stdout, answer.stderr)


def hook(stdin_text: str) -> HookAnswer:
    """One Claude Code PreToolUse hook call (the default agent)."""
    return judge("claude", stdin_text)


def settings_snippet(command: str) -> str:
    """The `.claude/settings.json` snippet that installs the guard as a PreToolUse hook."""
    return json.dumps({"hooks": load("claude").config(command)}, indent=2)


def _audit_block(
    decision: Decision | None, reason: str, command: str | None, cwd: str | None, *, source: str,
    audit_log: str | None,
) -> str | None:  # fmt: skip
    """Record a block in the audit log; returns a warning line when the log cannot be written."""
    from pathlib import Path

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


def run(command_args: Sequence[str], *, agent: str = "claude", print_config: bool = False,
        audit_log: str | None = None) -> int:  # fmt: skip
    """`tfgate guard`: the hook of one agent (JSON on stdin) or the generic form (`-- COMMAND...`)."""
    if print_config and not command_args:  # with a command too, the command is judged
        from tfgate.agents.install import guard_command

        sys.stdout.write(settings_snippet(guard_command("claude")) + "\n")
        return 0
    if command_args:
        decision = check_argv(command_args)
        if decision.allowed:
            return 0
        text = " ".join(command_args) if len(command_args) > 1 else command_args[0]
        warn = _audit_block(decision, decision.reason, text, None, source="argv", audit_log=audit_log)
        sys.stderr.write(f"tfgate guard: blocked: {decision.reason}\n" + (warn or ""))
        return 2
    answer = judge(agent, sys.stdin.read())
    warn = None
    if answer.blocked:
        reason = answer.decision.reason if answer.decision else (answer.stderr or answer.stdout).strip()
        warn = _audit_block(
            answer.decision, reason, answer.command, answer.cwd, source=agent, audit_log=audit_log
        )
    sys.stdout.write(answer.stdout)
    sys.stderr.write(answer.stderr + (warn or ""))
    return answer.exit_code


def guarded_run(command_args: Sequence[str], *, agent: str = "claude", **kw: object) -> int:
    """`run`, failing closed in the agent's own terms: any internal error is that agent's deny."""
    try:
        return run(command_args, agent=agent, **kw)
    except BaseException as exc:  # most agents treat a crash as "go ahead"
        message = f"internal error ({type(exc).__name__}: {exc}); blocked (fail closed)"
        try:
            answer = load(agent).deny(message)
        except BaseException:
            answer = load("claude").deny(message)
        sys.stdout.write(answer.stdout)
        sys.stderr.write(answer.stderr)
        return answer.exit_code


def cli_guard(args: Sequence[str], agent: str, scope: str, print_config: bool, audit_log: str | None,
              dashdash: bool) -> int:  # fmt: skip
    """`tfgate guard` of the typer CLI: `install` (unless after `--`), else the hook or the generic form."""
    if args[:1] == ["install"] and not dashdash:
        from tfgate.agents.install import main_install

        return main_install(agent, scope)
    return guarded_run(args, agent=agent, print_config=print_config, audit_log=audit_log)


_USAGE = """usage: tfgate-guard [--agent NAME] [--audit-log PATH]     (hook: the agent's JSON on stdin)
       tfgate-guard [--audit-log PATH] -- COMMAND...           (judge a command line: exit 0 or 2)
       tfgate-guard install --agent NAME [--scope project|user]
agents: claude codex gemini cursor copilot windsurf cline kiro
"""


def main(argv: Sequence[str] | None = None) -> int:
    """The `tfgate-guard` console script (no typer: it starts in a few tens of milliseconds)."""
    args = list(sys.argv[1:] if argv is None else argv)
    agent, audit_log, scope, command, install = "claude", None, "project", [], False
    try:
        while args:
            arg = args.pop(0)
            if arg == "--":
                command = args
                break
            if arg in ("--agent", "--audit-log", "--scope") and args:
                value = args.pop(0)
            elif arg.startswith(("--agent=", "--audit-log=", "--scope=")):
                arg, value = arg.split("=", 1)
            elif arg == "install" and not install:
                install = True
                continue
            elif arg in ("-h", "--help"):
                sys.stdout.write(_USAGE)
                return 0
            else:
                raise Malformed(f"unknown argument {arg!r}")
            agent, audit_log, scope = (
                (value, audit_log, scope) if arg == "--agent"
                else (agent, value, scope) if arg == "--audit-log" else (agent, audit_log, value)
            )  # fmt: skip
        load(agent)
    except Malformed as exc:
        sys.stderr.write(f"tfgate-guard: {exc}\n{_USAGE}")
        return 2
    if install:
        from tfgate.agents.install import main_install

        return main_install(agent, scope)
    return guarded_run(command, agent=agent, audit_log=audit_log)


if __name__ == "__main__":
    sys.exit(main())
