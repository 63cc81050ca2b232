"""Each agent's adapter: payloads in the documented shape, answered the way that agent treats as a block or a
go-ahead; malformed input answered as that agent's block; `tfgate guard install` merging each configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate.agents.adapters import AGENTS
from tfgate.agents.hook import judge
from tfgate.agents.install import InstallError, install, merge

DESTROY = "cd infra && terraform destroy -auto-approve"
PLAN = "terraform plan -out=p.bin"


def claude(command: str) -> dict:
    return {"session_id": "s", "transcript_path": "/t.jsonl", "cwd": "/repo", "permission_mode": "default",
            "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "toolu_1",
            "tool_input": {"command": command, "description": "d", "timeout": 120000}}  # fmt: skip


def codex(command: str) -> dict:
    return {"session_id": "s", "turn_id": "t", "transcript_path": None, "cwd": "/repo",
            "hook_event_name": "PreToolUse", "model": "gpt-5-codex", "permission_mode": "default",
            "tool_name": "Bash", "tool_use_id": "call_1", "tool_input": {"command": command}}  # fmt: skip


def gemini(command: str) -> dict:
    return {"session_id": "s", "transcript_path": "/t", "cwd": "/repo", "hook_event_name": "BeforeTool",
            "timestamp": "2026-12-01T23:00:00Z", "tool_name": "run_shell_command",
            "tool_input": {"command": command, "description": "d", "directory": "infra"}}  # fmt: skip


def cursor(command: str) -> dict:
    return {"conversation_id": "c", "generation_id": "g", "model": "m", "hook_event_name": "beforeShellExecution",
            "cursor_version": "2.0", "workspace_roots": ["/repo"], "user_email": "u@x", "command": command,
            "cwd": ""}  # fmt: skip


def copilot(command: str) -> dict:
    return {"sessionId": "s", "timestamp": 1704614600000, "cwd": "/repo", "toolName": "bash",
            "toolArgs": json.dumps({"command": command, "description": "d"})}  # fmt: skip


def windsurf(command: str) -> dict:
    return {"agent_action_name": "pre_run_command", "trajectory_id": "t", "execution_id": "e",
            "timestamp": "2026-12-01T23:00:00Z", "tool_info": {"command_line": command, "cwd": "/repo"}}  # fmt: skip


def cline(command: str) -> dict:
    return {"clineVersion": "3.40", "hookName": "PreToolUse", "timestamp": "1", "taskId": "t",
            "workspaceRoots": ["/repo"], "userId": "u",
            "preToolUse": {"toolName": "execute_command",
                           "parameters": {"command": command, "requires_approval": "true"}}}  # fmt: skip


def kiro(command: str) -> dict:
    return {"hook_event_name": "preToolUse", "cwd": "/repo", "tool_name": "execute_bash",
            "tool_input": {"command": command}}  # fmt: skip


SHELL = {"claude": claude, "codex": codex, "gemini": gemini, "cursor": cursor, "copilot": copilot,
         "windsurf": windsurf, "cline": cline, "kiro": kiro}  # fmt: skip

# A file write of tfgate's manifest, in each agent's file-tool shape.
WRITES = {
    "claude": {"hook_event_name": "PreToolUse", "cwd": "/repo", "tool_name": "Write",
               "tool_input": {"file_path": "/repo/tfgate.yaml", "content": "rules: []\n"}},
    "codex": {"cwd": "/repo", "hook_event_name": "PreToolUse", "tool_name": "apply_patch",
              "tool_input": {"command": "*** Begin Patch\n*** Update File: main.tf\n@@\n-a\n+b\n"
                             "*** Delete File: tfgate.yaml\n*** End Patch\n"}},
    "gemini": {"cwd": "/repo", "hook_event_name": "BeforeTool", "tool_name": "replace",
               "tool_input": {"file_path": "/repo/tfgate.yaml", "old_string": "2", "new_string": "1"}},
    "cursor": {"hook_event_name": "preToolUse", "workspace_roots": ["/repo"], "tool_name": "Write",
               "tool_input": {"file_path": "/repo/.tfgate/ledger.json", "contents": "{}"}},
    "copilot": {"sessionId": "s", "cwd": "/repo", "toolName": "edit",
                "toolArgs": json.dumps({"path": "/repo/tfgate.yaml", "old_str": "2", "new_str": "1"})},
    "windsurf": {"agent_action_name": "pre_write_code", "tool_info": {
        "file_path": "/repo/allowed_signers", "edits": [{"old_string": "", "new_string": "me ssh-ed25519 A"}]}},
    "cline": {"hookName": "PreToolUse", "workspaceRoots": ["/repo"],
              "preToolUse": {"toolName": "write_to_file", "parameters": {"path": "tfgate.yaml", "content": "x"}}},
    "kiro": {"hook_event_name": "preToolUse", "cwd": "/repo", "tool_name": "fs_write",
             "tool_input": {"command": "create", "path": "/repo/tfgate.yaml", "file_text": "rules: []"}},
}  # fmt: skip


def is_block(agent: str, exit_code: int, stdout: str, stderr: str) -> bool:
    """What each agent's documented contract treats as a block."""
    out = json.loads(stdout) if stdout.strip() else {}
    if agent == "claude":
        return (
            exit_code == 2
            and "tfgate" in stderr
            and out["hookSpecificOutput"]["permissionDecision"] == "deny"
        )
    if agent == "codex":
        return exit_code == 2 and stderr.strip() != "" and stdout == ""  # no field outside the schema
    if agent == "gemini":
        return (
            exit_code == 2 and stderr.strip() != "" and out == {"decision": "deny", "reason": out["reason"]}
        )
    if agent == "cursor":
        return out.get("permission") == "deny" and bool(out.get("agent_message"))
    if agent == "copilot":
        return (
            exit_code == 0 and out["permissionDecision"] == "deny" and bool(out["permissionDecisionReason"])
        )
    if agent == "cline":
        return exit_code == 0 and out["cancel"] is True and bool(out["errorMessage"])
    return exit_code == 2 and stderr.strip() != ""  # windsurf, kiro


def is_allow(agent: str, exit_code: int, stdout: str) -> bool:
    if agent == "cursor":
        return exit_code == 0 and json.loads(stdout) == {"permission": "allow"}
    if agent == "cline":
        return exit_code == 0 and json.loads(stdout) == {"cancel": False}
    return exit_code == 0 and stdout == ""


def test_every_agent_has_an_adapter() -> None:
    assert set(SHELL) == set(WRITES) == set(AGENTS)


@pytest.mark.parametrize("agent", AGENTS)
def test_shell_commands(agent: str) -> None:
    a = judge(agent, json.dumps(SHELL[agent](DESTROY)))
    assert is_block(agent, a.exit_code, a.stdout, a.stderr), a
    assert "tfgate destroy" in a.stdout + a.stderr and "do not work around" in a.stdout + a.stderr
    a = judge(agent, json.dumps(SHELL[agent]("mv tfgate.yaml /tmp/ && tfgate destroy")))
    assert is_block(agent, a.exit_code, a.stdout, a.stderr) and "tfgate destroy" not in a.stdout + a.stderr
    a = judge(agent, json.dumps(SHELL[agent](PLAN)))
    assert is_allow(agent, a.exit_code, a.stdout), a


@pytest.mark.parametrize("agent", AGENTS)
def test_file_writes_of_tfgate_ground(agent: str) -> None:
    a = judge(agent, json.dumps(WRITES[agent]))
    assert is_block(agent, a.exit_code, a.stdout, a.stderr), a
    assert a.decision is not None and a.decision.code == "tamper"


MALFORMED = ["", "{", "[]", "null", '"terraform destroy"', '{"a": 1, "a": 2}', "{}"]


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("text", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_input_is_that_agents_block(agent: str, text: str) -> None:
    a = judge(agent, text)
    assert a.blocked and is_block(agent, a.exit_code, a.stdout, a.stderr), (text, a)
    assert "malformed" in a.stdout + a.stderr


@pytest.mark.parametrize(
    ("agent", "payload"),
    [
        ("claude", {"tool_name": "Bash", "tool_input": {"command": ["terraform", "destroy"]}}),
        ("codex", {"tool_name": "Bash", "tool_input": {}}),
        ("codex", {"tool_name": "apply_patch", "tool_input": {"command": "no patch here"}}),
        ("gemini", {"tool_name": "run_shell_command", "tool_input": {"command": 7}}),
        ("cursor", {"hook_event_name": "beforeShellExecution", "workspace_roots": ["/r"]}),
        ("cursor", {"hook_event_name": "somethingElse", "command": "ls"}),
        ("copilot", {"toolName": "bash", "toolArgs": "{not json"}),
        ("copilot", {"toolName": "bash", "toolArgs": '{"command": "ls", "command": "terraform destroy"}'}),
        ("copilot", {"toolName": "edit", "toolArgs": "{}"}),
        ("windsurf", {"agent_action_name": "pre_run_command", "tool_info": {}}),
        ("cline", {"preToolUse": {"toolName": "execute_command", "parameters": {}}}),
        ("kiro", {"tool_name": "fs_write", "tool_input": {"file_text": "x"}}),
    ],
)
def test_wrong_shapes_are_blocks(agent: str, payload: dict) -> None:
    a = judge(agent, json.dumps(payload))
    assert is_block(agent, a.exit_code, a.stdout, a.stderr), a


def test_agent_specific_shapes() -> None:
    # Codex passes argv lists; Gemini's directory is relative to cwd; Copilot's VS Code form has tool_input.
    a = judge("codex", json.dumps({"tool_name": "shell", "cwd": "/r",
                                   "tool_input": {"command": ["bash", "-lc", DESTROY]}}))  # fmt: skip
    assert a.exit_code == 2
    write = {"tool_name": "Write", "cwd": "/r", "tool_input": {"file_path": "/r/tfgate.yaml", "content": "x"}}
    assert judge("codex", json.dumps(write)).exit_code == 2  # Codex Write/Edit in the file_path shape
    write["tool_input"]["file_path"] = "/r/main.tf"
    assert judge("codex", json.dumps(write)).exit_code == 0
    envrc = {"tool_name": "Edit", "cwd": "/r", "tool_input": {"file_path": "/r/.envrc", "old_string": "",
             "new_string": "export TFGATE_APPROVALS=/tmp/mine"}}  # fmt: skip
    assert judge("claude", json.dumps(envrc)).exit_code == 2  # a shell start-up file: judged as commands
    patch = "*** Begin Patch\n*** Update File: .bashrc\n@@\n+export PATH=/tmp/x:$PATH\n*** End Patch\n"
    assert (
        judge("codex", json.dumps({"tool_name": "apply_patch", "tool_input": {"command": patch}})).exit_code
        == 2
    )
    vs = {
        "hook_event_name": "PreToolUse",
        "cwd": "/r",
        "tool_name": "bash",
        "tool_input": {"command": DESTROY},
    }
    assert judge("copilot", json.dumps(vs)).stdout.count('"deny"') == 1
    mcp = {"hook_event_name": "beforeMCPExecution", "workspace_roots": ["/r"], "tool_name": "run",
           "tool_input": json.dumps({"command": DESTROY}), "command": "npx mcp-server"}  # fmt: skip
    assert judge("cursor", json.dumps(mcp)).exit_code == 2
    mcp["tool_input"] = json.dumps({"query": "select 1"})
    assert judge("cursor", json.dumps(mcp)).stdout == '{"permission": "allow"}\n'
    mcp["tool_input"] = "{oops"
    assert judge("cursor", json.dumps(mcp)).blocked
    for agent in ("claude", "codex", "gemini", "kiro"):  # tools with nothing to run pass
        read = {"tool_name": "Read", "cwd": "/r", "tool_input": {"file_path": "/r/tfgate.yaml"}}
        assert is_allow(
            agent, judge(agent, json.dumps(read)).exit_code, judge(agent, json.dumps(read)).stdout
        )


def _guard(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from tfgate.agents.hook import main; sys.exit(main())"  # what the console script runs
    return subprocess.run([sys.executable, "-c", code, *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})  # fmt: skip


@pytest.mark.parametrize("agent", ["codex", "copilot", "cline"])
def test_the_lean_entry_point_as_a_process(agent: str, tmp_path: Path) -> None:
    env = {"TFGATE_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
    p = _guard("--agent", agent, stdin=json.dumps(SHELL[agent](DESTROY)), env=env)
    assert is_block(agent, p.returncode, p.stdout, p.stderr), p
    entry = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    assert entry["event"] == "guard" and entry["source"] == agent and entry["command"] == DESTROY
    p = _guard("--agent", agent, stdin=json.dumps(SHELL[agent](PLAN)), env=env)
    assert is_allow(agent, p.returncode, p.stdout), p
    p = _guard("--agent", agent, stdin="garbage", env=env)
    assert is_block(agent, p.returncode, p.stdout, p.stderr), p
    assert "typer" not in _guard("--", "true").stderr
    p = subprocess.run([sys.executable, "-c", "import sys, tfgate.agents.hook; print(sorted(sys.modules))"],
                       capture_output=True, text=True)  # fmt: skip
    assert "typer" not in p.stdout and "tfgate.cli" not in p.stdout and "yaml" not in p.stdout


def test_the_generic_form_and_usage_errors() -> None:
    assert _guard("--", "terraform", "apply").returncode == 2
    assert _guard("--", "terraform plan").returncode == 0
    assert _guard("--agent", "nobody").returncode == 2
    assert _guard("--bogus").returncode == 2


# --- install ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_install_project_scope_is_idempotent(agent: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    w = install(
        agent, "project", project=tmp_path, home=home, command="/opt/bin/tfgate-guard --agent " + agent
    )
    assert w.changed and w.path.is_relative_to(tmp_path) and not w.path.is_relative_to(home)
    first = w.path.read_bytes()
    again = install(
        agent, "project", project=tmp_path, home=home, command="/opt/bin/tfgate-guard --agent " + agent
    )
    assert not again.changed and w.path.read_bytes() == first
    u = install(agent, "user", project=tmp_path, home=home, command="tfgate-guard --agent " + agent)
    assert u.path.is_relative_to(home)
    if agent == "cline":
        assert os.access(w.path, os.X_OK) and first.startswith(b"#!/bin/sh\n")
        return
    doc = json.loads(first)
    text = json.dumps(doc)
    assert text.count("/opt/bin/tfgate-guard --agent " + agent) >= 1
    if agent == "cursor":
        assert all(e["failClosed"] is True for entries in doc["hooks"].values() for e in entries)
    if agent == "claude":
        assert doc["hooks"]["PreToolUse"][0]["hooks"][0]["onFailure"] == "block"


def test_install_merges_and_never_clobbers(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    theirs = {"model": "opus", "permissions": {"allow": ["Bash(ls:*)"]},
              "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "lint"}]}],
                        "PostToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": "fmt"}]}]}}  # fmt: skip
    settings.write_text(json.dumps(theirs))
    install("claude", "project", project=tmp_path, home=tmp_path, command="old/tfgate-guard --agent claude")
    install("claude", "project", project=tmp_path, home=tmp_path, command="new/tfgate-guard --agent claude")
    doc = json.loads(settings.read_text())
    assert doc["model"] == "opus" and doc["permissions"] == theirs["permissions"]
    assert doc["hooks"]["PostToolUse"] == theirs["hooks"]["PostToolUse"]
    pre = doc["hooks"]["PreToolUse"]
    assert pre[0] == theirs["hooks"]["PreToolUse"][0] and len(pre) == 2  # replaced in place, not added twice
    assert pre[1]["hooks"][0]["command"] == "new/tfgate-guard --agent claude"
    for bad in ('{"hooks": {}, "hooks": {}}', "{// comment\n}", "[1]", '{"hooks": []}'):
        settings.write_text(bad)
        with pytest.raises(InstallError):
            install(
                "claude", "project", project=tmp_path, home=tmp_path, command="tfgate-guard --agent claude"
            )
        assert settings.read_text() == bad  # left as it was
    hook = tmp_path / ".clinerules" / "hooks" / "PreToolUse"
    hook.parent.mkdir(parents=True)
    hook.write_text("#!/bin/sh\necho '{\"cancel\": false}'\n")
    with pytest.raises(InstallError, match="not tfgate's"):
        install("cline", "project", project=tmp_path, home=tmp_path, command="tfgate-guard --agent cline")


def test_merge_keeps_top_level_keys() -> None:
    doc = merge(
        {"version": 1, "hooks": {"stop": [{"command": "x"}]}}, {"version": 1}, {"preToolUse": [{"a": 1}]}
    )
    assert doc == {"version": 1, "hooks": {"stop": [{"command": "x"}], "preToolUse": [{"a": 1}]}}


def test_cli_install_prints_what_it_wrote(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tfgate", "guard", "install", "--agent", "cursor", "--scope",
                           "project"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "HOME": str(tmp_path / "h")})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path / ".cursor" / "hooks.json") in proc.stdout and "failClosed" in proc.stdout
    doc = json.loads((tmp_path / ".cursor" / "hooks.json").read_text())
    assert doc["version"] == 1 and "--agent cursor" in doc["hooks"]["beforeShellExecution"][0]["command"]
    proc = _guard("install", "--agent", "kiro", "--scope", "user", env={"HOME": str(tmp_path / "h")})
    assert proc.returncode == 0 and (tmp_path / "h" / ".kiro" / "agents" / "tfgate.json").is_file()


@pytest.mark.parametrize("agent", AGENTS)
def test_an_internal_error_is_that_agents_block(agent: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import io

    from tfgate.agents import hook

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("analyzer bug")

    monkeypatch.setattr(hook, "check_command", boom)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(SHELL[agent](PLAN))))
    code = hook.guarded_run([], agent=agent)
    out = capsys.readouterr()
    assert is_block(agent, code, out.out, out.err), (code, out)
    assert "internal error" in out.out + out.err
