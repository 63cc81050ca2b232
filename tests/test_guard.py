"""The AI-agent guard: a table of real command lines, the PreToolUse hook contract, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tfgate.agents.analyzer import check_command
from tfgate.agents.hook import hook
from tfgate.agents.lexer import split_commands
from tfgate.agents.words import MUTATING, SELF_APPROVAL, TAMPER, UNKNOWN, UNPARSEABLE, UNRESOLVED

BLOCK = False
ALLOW = True

# (command line, allowed?, expected decision code when blocked)
TABLE: list[tuple[str, bool, str | None]] = [
    # plain mutations
    ("terraform apply", BLOCK, MUTATING),
    ("terraform apply -auto-approve", BLOCK, MUTATING),
    ("terraform apply plan.out", BLOCK, MUTATING),
    ("terraform apply -destroy -auto-approve", BLOCK, MUTATING),
    ("terraform destroy -auto-approve", BLOCK, MUTATING),
    ("terraform refresh", BLOCK, MUTATING),
    ("tofu apply -auto-approve", BLOCK, MUTATING),
    ("terraform.exe apply", BLOCK, MUTATING),
    ('"C:\\tools\\Terraform.exe" destroy', BLOCK, MUTATING),
    ("/c/Tools/TERRAFORM.EXE apply", BLOCK, MUTATING),
    ("/usr/local/bin/terraform apply -input=false tfplan", BLOCK, MUTATING),
    ("terraform -chdir=infra/prod apply -auto-approve", BLOCK, MUTATING),
    ("terraform -chdir=infra -no-color destroy", BLOCK, MUTATING),
    ("terraform1.9.5 apply", BLOCK, MUTATING),
    ("tfgate-terraform apply -auto-approve", BLOCK, MUTATING),
    ("python -m tfgate.plan.embedded destroy", BLOCK, MUTATING),
    # state mutations
    ("terraform state rm aws_db_instance.main", BLOCK, MUTATING),
    ("terraform state mv aws_s3_bucket.a aws_s3_bucket.b", BLOCK, MUTATING),
    ("terraform state push terraform.tfstate", BLOCK, MUTATING),
    ("terraform state push -force old.tfstate", BLOCK, MUTATING),
    ("terraform state replace-provider hashicorp/aws registry.acme.corp/acme/aws", BLOCK, MUTATING),
    ("terraform import aws_s3_bucket.b my-bucket", BLOCK, MUTATING),
    ("terraform taint aws_instance.web", BLOCK, MUTATING),
    ("terraform untaint aws_instance.web", BLOCK, MUTATING),
    ("terraform force-unlock -force 1234-5678", BLOCK, MUTATING),
    ("terraform workspace delete prod", BLOCK, MUTATING),
    # hidden behind shell syntax
    ("cd infra && terraform apply -auto-approve", BLOCK, MUTATING),
    ("terraform plan -out=p.bin; terraform apply p.bin", BLOCK, MUTATING),
    ("make fmt || terraform destroy -auto-approve", BLOCK, MUTATING),
    ("yes yes | terraform apply", BLOCK, MUTATING),
    ("terraform apply -auto-approve &", BLOCK, MUTATING),
    ("terraform init\nterraform apply -auto-approve", BLOCK, MUTATING),
    ("(cd infra; terraform apply)", BLOCK, MUTATING),
    ("{ terraform apply; }", BLOCK, MUTATING),
    ("if true; then terraform apply; fi", BLOCK, MUTATING),
    ("echo $(terraform apply -auto-approve)", BLOCK, MUTATING),
    ('echo "result: $(terraform destroy -auto-approve)"', BLOCK, MUTATING),
    ("echo `terraform apply -auto-approve`", BLOCK, MUTATING),
    ("diff <(terraform apply -auto-approve) x", BLOCK, MUTATING),
    ("sh -c 'terraform apply -auto-approve'", BLOCK, MUTATING),
    ('bash -lc "cd infra && terraform destroy -auto-approve"', BLOCK, MUTATING),
    ("bash -c \"sh -c 'terraform apply'\"", BLOCK, MUTATING),
    ("eval terraform apply", BLOCK, MUTATING),
    ("eval \"$(echo x)\"; eval 'terraform state rm a.b'", BLOCK, UNRESOLVED),
    ("env TF_LOG=debug terraform apply", BLOCK, MUTATING),
    ("env -i PATH=/usr/bin terraform destroy", BLOCK, TAMPER),
    ("env -S 'terraform apply -auto-approve'", BLOCK, MUTATING),
    ("TF_IN_AUTOMATION=1 terraform apply -auto-approve", BLOCK, MUTATING),
    ("AWS_PROFILE=prod TF_LOG=1 /opt/tf/bin/terraform apply", BLOCK, MUTATING),
    ("sudo terraform apply", BLOCK, MUTATING),
    ("sudo -u deploy -E terraform destroy", BLOCK, MUTATING),
    ("nohup terraform apply -auto-approve > apply.log 2>&1 &", BLOCK, MUTATING),
    ("time terraform apply", BLOCK, MUTATING),
    ("time -p terraform apply", BLOCK, MUTATING),
    ("echo infra | xargs -I{} terraform -chdir={} apply -auto-approve", BLOCK, MUTATING),
    ("command terraform apply", BLOCK, MUTATING),
    ("exec terraform apply", BLOCK, MUTATING),
    ("timeout 600 terraform apply -auto-approve", BLOCK, MUTATING),
    ("find . -name main.tf -execdir terraform apply -auto-approve \\;", BLOCK, MUTATING),
    ("aws-vault exec prod -- terraform apply", BLOCK, MUTATING),
    ("T=terraform; $T apply", BLOCK, MUTATING),
    ("$TF_BIN apply -auto-approve", BLOCK, UNRESOLVED),
    ("$(which terraform) destroy", BLOCK, UNRESOLVED),
    ("\\terraform apply", BLOCK, MUTATING),
    ("terr''aform apply", BLOCK, MUTATING),
    ('"terraform" "apply"', BLOCK, MUTATING),
    ("/usr/bin/terr*form apply", BLOCK, MUTATING),
    ("bash <<'EOF'\ncd infra\nterraform apply -auto-approve\nEOF", BLOCK, MUTATING),
    ("bash <<< 'terraform destroy -auto-approve'", BLOCK, MUTATING),
    ("ssh deploy@bastion 'cd /srv/infra && terraform apply -auto-approve'", BLOCK, MUTATING),
    ("su -c 'terraform apply' deploy", BLOCK, MUTATING),
    ("watch -n 60 terraform apply -auto-approve", BLOCK, MUTATING),
    # terragrunt
    ("terragrunt apply", BLOCK, MUTATING),
    ("terragrunt destroy -auto-approve", BLOCK, MUTATING),
    ("terragrunt run-all apply --terragrunt-non-interactive", BLOCK, MUTATING),
    ("terragrunt run --all apply", BLOCK, MUTATING),
    ("terragrunt run -- destroy", BLOCK, MUTATING),
    ("terragrunt apply-all", BLOCK, MUTATING),
    ("terragrunt --working-dir live/prod state rm aws_db_instance.main", BLOCK, MUTATING),
    # fail closed
    ("terraform aply", BLOCK, UNKNOWN),
    ("terraform -chdir infra apply", BLOCK, UNKNOWN),
    ("terraform state frobnicate", BLOCK, UNKNOWN),
    ("terraform apply 'unbalanced", BLOCK, UNPARSEABLE),
    ('echo "$(terraform plan" ', BLOCK, UNPARSEABLE),
    # an agent signing its own approval
    ("tfgate approve plan.bin", BLOCK, SELF_APPROVAL),
    ("ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n tfgate approval.json", BLOCK, SELF_APPROVAL),
    (
        "tfgate shim approve -s me -k ~/.ssh/id -r why -y -- state rm aws_db_instance.main",
        BLOCK,
        SELF_APPROVAL,
    ),
    ("tfgate audit checkpoint --key ~/.ssh/id_ed25519 --signer alice@example.com", BLOCK, SELF_APPROVAL),
    ("tfgate audit verify --checkpoint cp.json", ALLOW, None),
    # read-only and unrelated commands pass
    ("terraform init -input=false", ALLOW, None),
    ("terraform validate", ALLOW, None),
    ("terraform plan -out=plan.bin", ALLOW, None),
    ("terraform plan -destroy -out=destroy.bin", ALLOW, None),
    ("terraform -chdir=infra plan", ALLOW, None),
    ("terraform show -json plan.bin > plan.json", ALLOW, None),
    ("terraform output -json", ALLOW, None),
    ("terraform fmt -recursive", ALLOW, None),
    ("terraform version", ALLOW, None),
    ("terraform -version", ALLOW, None),
    ("terraform providers", ALLOW, None),
    ("terraform graph | dot -Tsvg > g.svg", ALLOW, None),
    ("terraform state list", ALLOW, None),
    ("terraform state show aws_db_instance.main", ALLOW, None),
    ("terraform state pull > backup.tfstate", ALLOW, None),
    ("terraform workspace list", ALLOW, None),
    ("terraform workspace select prod", ALLOW, None),
    ("terraform workspace show", ALLOW, None),
    ("terraform apply -help", ALLOW, None),
    ("terraform", ALLOW, None),
    ("tofu plan", ALLOW, None),
    ("terragrunt plan", ALLOW, None),
    ("terragrunt run-all plan", ALLOW, None),
    ("terragrunt hclfmt", ALLOW, None),
    ("tfgate plan", ALLOW, None),
    ("tfgate apply .tfgate/plans/x/plan.bin --approvals a.sig", ALLOW, None),
    ("tfgate destroy", ALLOW, None),
    ("tfgate check plan.bin --format json", ALLOW, None),
    ("tfgate guard -- terraform apply", ALLOW, None),
    ("tfgate-terraform plan -out=p.bin", ALLOW, None),
    ("cd infra && terraform plan -out=p.bin && tfgate apply p.bin", ALLOW, None),
    ("git commit -m 'do not run terraform apply by hand'", ALLOW, None),
    ('grep -rn "terraform destroy" docs/', ALLOW, None),
    ("grep terraform apply.log", ALLOW, None),
    ("ls -la; echo done", ALLOW, None),
    ("echo 'unbalanced", ALLOW, None),
    ("python -m pytest tests -q", ALLOW, None),
    ("cat <<'EOF' > notes.md\nrun terraform apply later\nEOF", ALLOW, None),
    ("command -v terraform", ALLOW, None),
    ("which terraform && terraform version", ALLOW, None),
    ("# terraform apply", ALLOW, None),
]


def test_table_is_big_enough() -> None:
    assert len(TABLE) >= 40
    assert sum(1 for _, ok, _ in TABLE if ok) >= 20
    assert sum(1 for _, ok, _ in TABLE if not ok) >= 20


@pytest.mark.parametrize(("command", "allowed", "code"), TABLE, ids=[c for c, _, _ in TABLE])
def test_table(command: str, allowed: bool, code: str | None) -> None:
    decision = check_command(command)
    assert decision.allowed is allowed, decision
    if not allowed:
        assert decision.code == code, decision
        assert decision.reason
        assert decision.segment


def test_blocked_reason_tells_the_agent_what_to_do() -> None:
    d = check_command("cd infra && terraform apply -auto-approve")
    assert d.segment == "terraform apply -auto-approve"
    assert "tfgate plan" in d.reason and "tfgate apply" in d.reason and "tfgate approve" in d.reason
    assert "tfgate destroy" in check_command("terraform destroy").reason
    assert "tfgate destroy" in check_command("terraform apply -destroy").reason


def test_lexer_splits_like_a_shell() -> None:
    words, subs = split_commands("A=1 b 'c d' \"e $(f g)\" && h | i; j & k\nl || (m) 2>/dev/null")
    assert words == [["A=1", "b", "c d", "e $(f g)"], ["h"], ["i"], ["j"], ["k"], ["l"], ["m"]]
    assert subs == ["f g"]


def _payload(command: object, tool: str = "Bash", **extra: object) -> str:
    return json.dumps(
        {
            "session_id": "abc",
            "hook_event_name": "PreToolUse",
            "cwd": "/tmp",
            "tool_name": tool,
            "tool_input": {"command": command, "description": "x"},
            **extra,
        }
    )


def test_hook_denies_with_exit_2_and_json() -> None:
    answer = hook(_payload("terraform apply -auto-approve"))
    assert answer.exit_code == 2
    out = json.loads(answer.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse"
    assert out["permissionDecision"] == "deny"
    assert "tfgate plan" in out["permissionDecisionReason"]
    assert "tfgate plan" in answer.stderr


def test_hook_allows_silently() -> None:
    answer = hook(_payload("terraform plan"))
    assert (answer.exit_code, answer.stdout, answer.stderr) == (0, "", "")
    edit = json.dumps({"tool_name": "Edit", "tool_input": {"file_path": "/x", "old_string": "a"}})
    assert (hook(edit).exit_code, hook(edit).stdout) == (0, "")


@pytest.mark.parametrize(
    "tool_input",
    [
        {"file_path": "/repo/tfgate.yaml", "content": "rules: []\n"},
        {"file_path": "/repo/tfgate.yaml", "old_string": "approvals: 2", "new_string": "approvals: 1"},
        {"file_path": "/repo/.tfgate/ledger.json", "edits": [{"old_string": "a", "new_string": "b"}]},
        {"notebook_path": "/repo/.claude/settings.json", "new_source": "{}", "edit_mode": "replace"},
    ],
)
def test_hook_blocks_file_tools_on_tfgate_ground(tool_input: dict) -> None:
    tool = "NotebookEdit" if "notebook_path" in tool_input else "Write" if "content" in tool_input else "Edit"
    answer = hook(json.dumps({"tool_name": tool, "cwd": "/repo", "tool_input": tool_input}))
    assert answer.exit_code == 2
    assert json.loads(answer.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "ask a human" in answer.stderr
    assert hook(json.dumps({"tool_name": "Write", "tool_input": {"content": "x"}})).exit_code == 2  # no path


@pytest.mark.parametrize(
    "stdin",
    ["", "not json", "[]", '{"tool_input": {"command": "ls"}}', _payload(None), _payload(["terraform"])],
)
def test_hook_fails_closed_on_malformed_input(stdin: str) -> None:
    answer = hook(stdin)
    assert answer.exit_code == 2
    assert json.loads(answer.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "malformed" in answer.stderr


def _cli(*args: str, stdin: str = "", env_extra: dict | None = None, cwd=None):
    import os

    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "tfgate", "guard", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def test_cli_hook_blocks_and_audits(tmp_path) -> None:
    log = tmp_path / "audit.jsonl"
    proc = _cli(
        stdin=_payload("sudo terraform destroy -auto-approve"), env_extra={"TFGATE_AUDIT_LOG": str(log)}
    )
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 1
    assert entries[0]["event"] == "guard"
    assert entries[0]["verdict"] == "block"
    assert entries[0]["command"] == "sudo terraform destroy -auto-approve"
    proc = _cli(stdin=_payload("terraform plan"), env_extra={"TFGATE_AUDIT_LOG": str(log)})
    assert (proc.returncode, proc.stdout) == (0, "")
    assert len(log.read_text().splitlines()) == 1  # allowed commands are not logged


def test_cli_hook_fails_closed_on_garbage(tmp_path) -> None:
    proc = _cli(stdin="{oops", env_extra={"TFGATE_AUDIT_LOG": str(tmp_path / "a.jsonl")})
    assert proc.returncode == 2
    assert "deny" in proc.stdout


def test_cli_generic_form(tmp_path) -> None:
    env = {"TFGATE_AUDIT_LOG": str(tmp_path / "a.jsonl")}
    assert _cli("--", "terraform", "apply", "-auto-approve", env_extra=env).returncode == 2
    assert _cli("--", "cd x && terraform destroy", env_extra=env).returncode == 2
    assert _cli("--", "terraform", "plan", env_extra=env).returncode == 0
    assert _cli("--", "ls", "-la", env_extra=env).returncode == 0


def test_cli_print_config() -> None:
    proc = _cli("--print-config")
    assert proc.returncode == 0
    cfg = json.loads(proc.stdout)
    entry = cfg["hooks"]["PreToolUse"][0]
    assert entry["matcher"] == "*"
    assert entry["hooks"][0]["type"] == "command"
    assert entry["hooks"][0]["command"].endswith("--agent claude")
    assert entry["hooks"][0]["onFailure"] == "block"


# Routes around the guard found in review, each with the shell feature it uses. All must block.
EVASIONS: list[str] = [
    # found in a fourth review
    'X="terraform apply -auto-approve"; sh -c "$X"',
    "printf 'terraform apply -auto-approve\\n' > x.sh && sh x.sh",
    "echo 'terraform apply -auto-approve' > x.sh && chmod +x x.sh && ./x.sh",
    "cat > run.sh <<'EOF'\nterraform apply -auto-approve\nEOF\nbash run.sh",
    "printf 'apply:\\n\\tterraform apply -auto-approve\\n' > Makefile && make apply",
    "docker run --rm --entrypoint=terraform myimg apply -auto-approve",
    "~/.terraform.versions/terraform_1.9* apply",
    # found in a third review
    'nohup env TF_CLI_ARGS="destroy -auto-approve" terraform',
    'timeout 600 env TF_CLI_ARGS="destroy -auto-approve" terraform',
    'command env TF_CLI_ARGS="destroy -auto-approve" terraform',
    'builtin export TF_CLI_ARGS="destroy -auto-approve"; terraform',
    'command export TF_CLI_ARGS="destroy -auto-approve"; terraform',
    'sudo TF_CLI_ARGS="destroy -auto-approve" terraform',
    'docker run -e TF_CLI_ARGS="destroy -auto-approve" -v $PWD:/w -w /w hashicorp/terraform',
    "$(echo terraform) $(echo YXBwbHk= | base64 -d) -auto-approve",
    "${TF:-terraform} $SUB",
    'cp "$(command -v terraform)" ~/.local/bin/tf && tf apply -auto-approve',
    'ln -s "$(command -v terraform)" ./tf; PATH=.:$PATH tf apply -auto-approve',
    'echo "terraform apply -auto-approve" | ssh host bash',
    'echo "terraform apply" | ssh host sh -s',
    "ssh deploy@bastion bash -s <<'X'\ncd infra && terraform destroy -auto-approve\nX",
    'python3 -c \'import subprocess as s; a="apply"; s.run(["terraform", a, "-auto-approve"])\'',
    'python3 -c \'import subprocess as s; s.run(["terraform", "-chdir=" + "environments/production/us-east-1/networking/core", "apply"])\'',
    'echo "terraform apply -auto-approve" | bash -o errexit',
    'echo "terraform apply -auto-approve" | bash -O extglob',
    'echo "terraform apply -auto-approve" | bash --rcfile /dev/null',
    'echo "terraform apply -auto-approve" | bash /dev/fd/0',
    'echo "terraform apply -auto-approve" | . /dev/fd/0',
    'echo "terraform apply -auto-approve" | sh -c sh',
    'echo "terraform apply -auto-approve" | xargs -I{} sh -c "{}"',
    'echo "terraform apply -auto-approve" | xargs env',
    'echo "terraform apply -auto-approve" | xargs nice',
    "echo 'import os; os.system(\"terraform apply -auto-approve\")' | python3 /dev/stdin",
    'echo \'import os; os.system("terraform apply -auto-approve")\' | python3 -c "exec(input())"',
    "terraform stacks deployment-run approve-all-plans -deployment-run-id dr-1",
    # found in a second review
    'TF_CLI_ARGS+="destroy -auto-approve" terraform',
    'read TF_CLI_ARGS <<< "destroy -auto-approve"; export TF_CLI_ARGS; terraform',
    'printf -v TF_CLI_ARGS "%s" destroy; export TF_CLI_ARGS; terraform',
    "echo terraform apply | bash",
    'printf "%s %s" terraform apply | bash',
    "bash <(echo terraform apply)",
    "echo 'terraform apply' | bash -s prod",
    "echo 'terraform apply' | ssh host",
    "echo 'import os; os.system(\"terraform apply\")' | python3",
    "terraform apply --destroy -auto-approve",
    "terraform init --migrate-state",
    # environment that changes what runs (TF_CLI_ARGS can even supply the subcommand)
    'TF_CLI_ARGS="destroy -auto-approve" terraform',
    'export TF_CLI_ARGS_state="rm aws_db_instance.main"; terraform state',
    "env TF_CLI_ARGS=destroy terraform",
    "TFGATE_TERRAFORM=./fake-tf tfgate apply plan.bin",
    "tfgate apply --terraform ./fake-tf plan.bin",
    "tfgate apply plan.bin --new-workspace",
    'echo "terraform apply -auto-approve" | bash',
    "cat <<EOF | bash\nterraform apply -auto-approve\nEOF",
    "source /dev/stdin <<< 'terraform apply -auto-approve'",
    "VAR=1 bash <<< 'terraform apply -auto-approve'",
    "time bash <<< 'terraform apply -auto-approve'",
    "( bash ) <<< 'terraform apply -auto-approve'",
    "sudo bash <<< 'terraform apply -auto-approve'",
    "echo apply -auto-approve | xargs terraform",
    'timeout 600 terraform "$(printf apply)" -auto-approve',
    'nohup terraform "$(echo apply)"',
    'f() { nohup terraform "$@"; }; f apply -auto-approve',
    "nohup terraform {apply,}",
    "cat > notes.txt <<EOF\n$(terraform apply -auto-approve)\nEOF",
    'echo "${x:-$(terraform apply -auto-approve)}"',
    "((x = 1 << 2))\nterraform apply -auto-approve",
    'T="terraform apply -auto-approve"; $T',
    'read -r T S <<< "terraform apply"; $T $S',
    '$"terraform" $"apply"',
    "${T:-terraform} ${S:-apply}",
    'a=([0]=terraform [1]=apply [2]=-auto-approve); "${a[@]}"',
    "A=apply; A=plan true; terraform $A -auto-approve",
    "A=apply; (A=plan); terraform $A -auto-approve",
    "A=apply; bash -c 'A=plan'; terraform $A -auto-approve",
    "{terraform,apply,-auto-approve}",
    "flock /tmp/tfgate terraform apply -auto-approve",
    "sudo -u tfgate terraform apply",
    "docker run --name tfgate hashicorp/terraform apply",
    "env -vS 'terraform apply -auto-approve'",
    'script -qc "terraform apply -auto-approve" /dev/null',
    "su -lc 'terraform apply'",
    "python3 -mtfgate.embedded apply -auto-approve",
    "python3 -Bm tfgate.plan.embedded apply",
    "command bash -v -c 'terraform apply -auto-approve'",
    "command env -v terraform apply -auto-approve",
    "terragrunt graph apply",
    "terragrunt --working-dir modules apply -auto-approve",
    "terragrunt run-all --terragrunt-working-dir test destroy",
    "terragrunt $(echo apply)",
    'terragrunt run-all "$CMD"',
    "terraform test",
    "tofu test",
    "terraform plan -out=./-h; terraform apply -- -h",
    "tfenv exec apply -auto-approve",
    "tofuenv exec destroy",
    "docker run --rm -v $PWD:/w hashicorp/terraform:1.9 apply",
    "~/.terraform.versions/terraform_1.9* apply",
    "terraform.real apply",
    "nix-shell -p terraform --run 'terraform apply'",
    "parallel terraform ::: apply",
    "tcsh -c 'terraform apply'",
    "csh -c 'terraform apply'",
    "ksh93 -c 'terraform apply'",
    "pwsh -c 'terraform apply'",
    'cmd //c "terraform apply"',
    "fish --command 'terraform apply'",
    'eval eval eval eval eval eval eval eval eval eval te""rraform apply -auto-approve',
    "echo ${x:-'}'}; te''rraform apply -auto-approve",
    "nohup tfgate approve plan.bin --signer me --yes",
    "uvx tfgate approve plan.bin",
    "python3 -mtfgate approve plan.bin",
    "ssh-keygen -Ysign -n tfgate -f key st.json",
    'ssh-keygen -Y sign -n "tf$(printf g)ate" -f key st.json',
    "env ssh-keygen -Y sign -n tfgate -f key st.json",
    "command ssh-keygen -Y sign -n tfgate -f key st.json",
    "python3 -c \"import os; os.system('terraform apply')\"",
    "perl -e 'system(\"terraform apply\")'",
    "awk 'BEGIN{system(\"terraform apply\")}'",
    'python3 <<EOF\nimport os; os.system("terraform apply -auto-approve")\nEOF',
    'git -c alias.x="!terraform apply -auto-approve" x',
    "shopt -s expand_aliases; alias t=terraform\nt apply",
    'ln -s "$(command -v terraform)" ./tf && ./tf apply',
    "eval \"$(printf 'terraform apply')\"",
    "source <(printf 'terraform apply')",
    "at now <<< 'terraform apply'",
    "tmux new -d 'terraform apply'",
    "sg docker -c 'terraform apply'",
    "terraform init -migrate-state",
    "terraform init -reconfigure -force-copy",
    'node -e \'require("child_process").execSync("terraform apply")\'',
]

# Harmless command lines that mention Terraform words: all must pass.
HARMLESS: list[str] = [
    "git commit -m \"$(cat <<'EOF'\nFix the gate. Don't run terraform apply (ever).\n\nCo-Authored-By: x\nEOF\n)\"",
    "gh pr create --title t --body \"$(cat <<'EOF'\n## Summary\n- can't apply (yet)\nEOF\n)\"",
    "cat > docs/runbook.md <<'EOF'\nRun `terraform plan`, then `terraform apply` after review.\nEOF",
    "python -m pytest tests/test_terraform.py -k apply",
    "awk '/apply/ {print}' terraform/main.tf",
    "terraform show -json plan.bin | python3 -c \"import json,sys; d=json.load(sys.stdin); print(len(d), 'to destroy')\"",
    ".venv/bin/pytest tests/test_terraform.py -k apply",
    "sudo mv terraform /usr/local/bin/",
    "sudo unzip -o terraform_1.9.5_linux_amd64.zip -d /usr/local/bin/",
    "sudo chown -R terraform:terraform /srv/tf",
    "asdf install terraform 1.9.5",
    "find terraform -name '*.tf' -exec grep -l aws_instance {} +",
    "docker build -t myorg/terraform:1.9 .",
    "docker exec -it terraform sh",
    "kubectl -n terraform delete pod x",
    "terraform test -help",
    "terraform init -migrate-state=false",
    "echo 'terraform apply later' > notes.txt && cat notes.txt",
    '"$PYTHON" -c "import sys; print(sys.version)"',
    '$VIRTUAL_ENV/bin/python -c "import tfgate"',
    '${PYTHON:-python3} -c "import json"',
    "$EDITOR import.py",
    "$(go env GOPATH)/bin/golangci-lint run ./internal/import/...",
    "cd infra/terraform && kubectl apply -f a.yaml && kubectl apply -f b.yaml",
    "terraform fmt -check && npm run import && npm test",
    "cd terraform && make fmt && make apply",
    "env -u TF_CLI_ARGS terraform plan",
    "declare -p TF_CLI_ARGS",
    "printf '%s\\n' TF_CLI_ARGS",
    "grep -rn TF_CLI_ARGS= tfgate/",
    "cd infra/terraform && $EDITOR main.tf",
    "echo file | xargs rm",
    "git log --oneline | head",
    "cat x | python3 -m json.tool",
    "ssh host uptime",
    "cd terraform && kubectl apply -f k8s/",
    "cd infra/terraform && $EDITOR main.tf",
    '"$PYTHON" -m pytest tests/test_terraform.py',
    "python3 -c \"import json; d=json.load(open('terraform.tfstate'))\"",
    "grep -rn TF_CLI_ARGS= tfgate/",
    'TF_CLI_ARGS="" terraform plan',
    "unset TF_CLI_ARGS",
    "make test && npm test && git push",
    "echo print(1) | python3",
    "TF_LOG=debug terraform plan",
    "echo terraform destroy",
    "echo Next, run terraform apply",
    "ls terraform apply",
    "tar czf terraform.tgz terraform apply",
    "git log --grep terraform -- apply",
    "helm upgrade terraform ./chart",
    'grep -r "terraform apply" docs/',
    'git commit -m "terraform apply fix"',
    "cat <<'EOF' > notes.md\nrun terraform apply later\nEOF",
    "echo $((1 << 3))",
    "terraform init -reconfigure",
    "terraform init -upgrade",
    "tfenv exec plan",
    "tfenv install 1.9.5",
    "terraform apply -help",
    "for ((i=0; i<3; i++)); do echo $i; done",
    "A=1; A=2; echo $A",
    "nohup terraform plan -out=p.bin &",
    "xargs -n1 terraform fmt",
    "docker run --rm hashicorp/terraform:1.9 plan",
    "tfgate guard -- terraform apply",
    "sudo -u tfgate tfgate plan",
    "python -m pytest -q",
    "echo 'hello' | bash -c 'cat'",
]


@pytest.mark.parametrize("command", EVASIONS, ids=range(len(EVASIONS)))
def test_evasions_are_blocked(command: str) -> None:
    decision = check_command(command)
    assert not decision.allowed, command
    assert decision.reason and decision.segment


@pytest.mark.parametrize("command", HARMLESS, ids=range(len(HARMLESS)))
def test_harmless_lines_pass(command: str) -> None:
    assert check_command(command).allowed, command


def test_pathological_lines_are_judged_with_bounded_work() -> None:
    import contextlib

    from tfgate.agents.analyzer import _Analyzer
    from tfgate.agents.lexer import ParseError
    from tfgate.agents.words import MAX_VALUE

    # A hook that times out lets the command run: work must stay linear in the line.
    wrappers = ": " + ("bash " * 2000 + "eval ") * 8 + "; terraform apply"
    analyzer = _Analyzer(wrappers)
    assert not analyzer.analyze(wrappers, 0).allowed
    assert analyzer.steps < 20  # once quadratic: every word re-scanned the rest of the line
    # Values that double on every assignment are capped instead of eating memory; the line is blocked.
    doubling = "if false; then A=x; " + "A=$A$A; " * 40 + "fi; terraform apply"
    analyzer = _Analyzer(doubling)
    with contextlib.suppress(ParseError):
        analyzer.analyze(doubling, 0)
    assert max(len(v) for v in analyzer.vars.values()) <= MAX_VALUE
    assert not check_command(doubling).allowed


def test_hook_input_with_a_repeated_key_is_refused() -> None:
    answer = hook('{"tool_name": "Bash", "tool_input": {"command": "terraform apply"}, '
                  '"tool_input": {"command": "ls"}}')  # fmt: skip
    assert answer.exit_code == 2 and "duplicate key" in answer.stderr


def test_print_config_with_a_command_judges_the_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfgate", "guard", "terraform", "apply", "--print-config"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stdout


def test_terraform_env_args_are_merged_like_terraform() -> None:
    from tfgate.plan.terraform import merged_cli_args

    env = {"TF_CLI_ARGS": "destroy -auto-approve"}
    assert merged_cli_args([], env) == ["destroy", "-auto-approve"]
    assert merged_cli_args(["plan"], {"TF_CLI_ARGS": "-lock=false"}) == ["plan", "-lock=false"]
    env = {"TF_CLI_ARGS_state_rm": "-lock=false", "TF_CLI_ARGS": "-no-color"}
    # Each is inserted right after the subcommand, the per-command one last (so it comes first).
    assert merged_cli_args(["state", "rm", "a.b"], env) == ["state", "rm", "-lock=false", "-no-color", "a.b"]
    assert merged_cli_args(["state"], {"TF_CLI_ARGS_state": "rm a.b"}) == ["state", "rm", "a.b"]
    # -chdir is set aside before the merge, as Terraform does; with no subcommand TF_CLI_ARGS_ applies.
    assert merged_cli_args(["-chdir=x"], {"TF_CLI_ARGS": "destroy"}) == ["-chdir=x", "destroy"]
    assert merged_cli_args([], {"TF_CLI_ARGS_": "apply"}) == ["apply"]
    assert merged_cli_args(["-chdir=x", "apply"], {"TF_CLI_ARGS_apply": "-auto-approve"}) == [
        "-chdir=x",
        "apply",
        "-auto-approve",
    ]
