"""The guard protects tfgate's own ground, sees through exec-capable options of everyday tools and refuses opaque
text fed to a shell; everyday commands that look alike stay allowed. Tables of both, judged as agents type them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tfgate.agents.analyzer import check_command, check_write
from tfgate.agents.words import OPAQUE, TAMPER

# Command lines that change tfgate's ground (the list first). All block, with the tamper code.
TAMPERING: list[str] = [
    "mv tfgate.yaml /tmp/ && tfgate destroy",
    "sed -i d tfgate.yaml",
    "sed -i.bak '/protect/d' infra/tfgate.yml",
    "cat > tfgate.yaml <<'EOF'\nrules: []\nEOF",
    "echo 'me ssh-ed25519 AAAA' >> allowed_signers",
    "cat ~/.ssh/id_ed25519.pub | tee -a .tfgate/allowed_signers",
    "rm -rf .tfgate",
    "rm -rf ./.tfgate/",
    "cd .tfgate && rm ledger.json",
    "truncate -s 0 .tfgate/audit.jsonl",
    ": > .tfgate/audit.jsonl",
    "ln -sf /dev/null .tfgate/audit.jsonl",
    "cp /tmp/empty.yaml tfgate.yaml",
    "cp /tmp/x/tfgate.yaml infra/",
    "install -m 644 /tmp/e.yaml ./tfgate.json",
    "dd if=/dev/null of=tfgate.yaml",
    "python3 -c \"open('tfgate.yaml', 'w').write('rules: []')\"",
    "perl -pi -e 's/approvals: 2/approvals: 1/' tfgate.yaml",
    "python3 - <<'EOF'\nimport os; os.remove('tfgate.yaml')\nEOF",
    "node -e \"require('fs').unlinkSync('tfgate.yaml')\"",
    "echo rm tfgate.yaml | sh",
    "sh -c 'rm tfgate.yaml'",
    "find . -name tfgate.yaml | xargs rm",
    "docker run -v $PWD:/w img rm /w/tfgate.yaml",
    "mkdir -p .tfgate",
    "git stash -u",
    "awk '{print > \"tfgate.yaml\"}' /dev/null",
    "git apply <<'EOF'\n--- a/tfgate.yaml\n+++ b/tfgate.yaml\n@@ -1 +1 @@\n-a\n+b\nEOF",
    "cp -l tfgate.yaml /tmp/editable.yaml",
    "cp -s .tfgate/ledger.json /tmp/l.json",
    "find . -name 'tfgate.*' -delete",
    "find . -name tfgate.yaml -exec rm {} \\;",
    "git checkout HEAD~3 -- tfgate.yaml",
    "git rm --cached tfgate.yaml",
    "git clean -fdx",
    "chmod 000 tfgate.yaml",
    "vim tfgate.yaml",
    "rm -rf /etc/tfgate",
    "sudo rm /etc/tfgate/tfgate.yaml",
    "mv approvals/approval-abc-alice.json /tmp/",
    "cp forged.sig approval-abc-alice.json.sig",
    "yq -i '.rules = []' tfgate.yaml",
    "sort -o tfgate.yaml /dev/null",
    "rm TFGATE.YAML",
    "mv tfgate.{yaml,bak}",
    "rm tfgate.y?ml",
    "echo '{}' > .claude/settings.json",
    "rm .codex/hooks.json",
    "sed -i 's/tfgate-guard//' .gemini/settings.json",
    "rm -rf .clinerules/hooks",
    # tfgate run so that it judges or records something else
    "tfgate destroy --manifest empty.yaml",
    "tfgate apply --manifest=/tmp/empty.yaml plan.bin",
    "tfgate apply --terraform embedded plan.bin",
    "tfgate plan --terraform=/tmp/fake-terraform",
    "tfgate check plan.json --no-state-checks",
    "tfgate apply plan.bin --audit-log /dev/null",
    "TFGATE_AUDIT_LOG=/dev/null tfgate apply plan.bin",
    "export TFGATE_APPROVALS=/tmp/mine; tfgate apply plan.bin",
    "env TFGATE_TERRAFORM=/tmp/fake tfgate apply plan.bin",
    "PATH=/tmp/fake:$PATH tfgate apply plan.bin",
    "export PATH=/tmp/fake:$PATH; terraform plan",
    "PATH=.:$PATH terraform plan",
    "export PATH=/tmp/fake:$PATH",
    "export PATH=./bin:$PATH",
    "PATH=:$PATH",
    'export PATH="$(mktemp -d):$PATH"',
    "export PATH=/usr/local/bin:$PATH",  # this machine's second, real terraform, before any shim
    "echo 'export PATH=/tmp/x:$PATH' >> ~/.bashrc",  # runs in every later shell
    "echo 'export TFGATE_AUDIT_LOG=/dev/null' >> .envrc",
    "cat >> ~/.zshrc <<'EOF'\nexport PATH=./bin:$PATH\nEOF",
    "tfgate shim-exec --real /tmp/fake -- apply",
    "tfgate shim install --manifest empty.yaml ~/bin",
    "tfgate shim install /tmp/shim",
    "python -m tfgate.enforce.shim --real /tmp/fake -- destroy",
    "python3 -m tfgate.enforce.shim --real /usr/bin/true -- apply",
    "tfgate protect init",
    "python3 -m tfgate.approvals.shim --help",
    "sudo tfgate protect init --user tfgate",
]

# Exec-capable options of everyday tools, IFS tricks and opaque text fed to a shell. All block.
EXEC_AND_OPAQUE: list[tuple[str, str | None]] = [
    ("make --eval='x:;terraform destroy -auto-approve' x", None),
    ("make -E 'all:; terraform apply -auto-approve'", None),
    ("printf 'x:\\n\\tterraform apply -auto-approve\\n' | make -f - x", None),
    ("sed -n '1e terraform destroy -auto-approve' README.md", None),
    ("echo 'terraform apply -auto-approve' | sed e", None),
    ("echo x | sed 's/.*/terraform destroy -auto-approve/e'", None),
    ("tar -cf /dev/null x --checkpoint=1 --checkpoint-action=exec='terraform apply -auto-approve'", None),
    ("tar -xf a.tar --to-command='terraform destroy -auto-approve'", None),
    ("tar -cf x.tar -I 'terraform apply -auto-approve;gzip' x", None),
    ("vim -c '!terraform apply -auto-approve' -c q", None),
    ("nvim '+!terraform destroy -auto-approve' +q", None),
    ("less '+!terraform apply -auto-approve' README.md", None),
    ("ssh -o ProxyCommand='terraform apply -auto-approve' host", None),
    ("ssh -o 'LocalCommand terraform destroy' -o PermitLocalCommand=yes host", None),
    ("rsync -e 'sh -c \"terraform apply -auto-approve\"' a host:b", None),
    ("git -c core.pager='terraform apply -auto-approve' log", None),
    ("git -c alias.x='!terraform destroy -auto-approve' x", None),
    ("GIT_PAGER='terraform apply -auto-approve' git log", None),
    ("GIT_EXTERNAL_DIFF='terraform destroy -auto-approve' git diff", None),
    ("git config alias.up '!terraform apply -auto-approve'", None),
    ("git rebase -x 'terraform apply -auto-approve' HEAD~1", None),
    ("expect -c 'spawn terraform apply; expect yes; send yes\\r'", None),
    ("echo '* * * * * terraform destroy -auto-approve' | crontab -", None),
    ("(crontab -l; echo '@reboot terraform apply -auto-approve') | crontab -", None),
    ("echo 'terraform destroy -auto-approve' | at now + 1 minute", None),
    ("zip x.zip f -T -TT 'terraform apply -auto-approve'", None),
    ("sort --compress-program=terraform-apply big.txt", None),
    ("IFS=,; X=terraform,apply,-auto-approve; $X", None),
    ("IFS=_; C=terraform_destroy; $C", None),
    # opaque text fed to a shell: it blocks whatever it says (tfgate cannot read it)
    ("echo dGVycmFmb3JtIGFwcGx5 | base64 -d | sh", OPAQUE),
    ("echo dGVycmFmb3JtIGFwcGx5 | base64 --decode | bash", OPAQUE),
    ("echo 'evorppa-otua- ylppa mrofarret' | rev | sh", OPAQUE),
    ("echo 7465727261666f726d206170706c79 | xxd -r -p | bash", OPAQUE),
    ("openssl enc -d -aes-256-cbc -in x.enc -k k | sh", OPAQUE),
    ('eval "$(echo dGVycmFmb3JtIGFwcGx5 | base64 -d)"', OPAQUE),
    ('sh -c "$(echo dGVycmFmb3JtIGFwcGx5 | base64 -d)"', OPAQUE),
    ("bash <(echo dGVycmFmb3JtIGFwcGx5 | base64 -d)", OPAQUE),
    ("$(echo bXJvZmFycmV0 | base64 -d | rev) apply", OPAQUE),
    ("echo grenfsbez nccyl | tr a-z n-za-m | sh", OPAQUE),
    ("printf '\\x74erraform apply' | sh", OPAQUE),
    ("echo H4sI | base64 -d | gunzip | python3", OPAQUE),
    ("echo dGVy | base64 -d | xargs -0 sh -c", OPAQUE),
    ('python3 -c "$(echo aW1wb3J0IG9z | base64 -d)"', OPAQUE),
    ("echo dGVycmFmb3JtIGFwcGx5 | base64 -d > run.sh && sh run.sh", OPAQUE),
    ("printf 'Host x\\n  ProxyCommand terraform destroy -auto-approve\\n' > /tmp/c && ssh -F /tmp/c x", None),
    ("echo '* * * * * terraform apply -auto-approve' > /tmp/cron && crontab /tmp/cron", None),
]

# Everyday command lines that look alike. All pass.
EVERYDAY: list[str] = [
    'grep -rn "terraform destroy" docs/',
    "grep -n protect tfgate.yaml",
    "cat tfgate.yaml",
    "less .tfgate/audit.jsonl",
    "tail -n 20 .tfgate/audit.jsonl | jq .",
    "ls -la .tfgate/plans",
    "git diff tfgate.yaml",
    "git log -p -- tfgate.yaml",
    "git add tfgate.yaml && git commit -m 'protect the prod database in tfgate.yaml'",
    'git commit -m "fix: never run terraform destroy by hand"',
    "sed -n '1,20p' tfgate.yaml",
    "sed -n 's/terraform/tofu/p' README.md",
    "sed -i 's/terraform/tofu/g' README.md",
    "cp tfgate.yaml /tmp/tfgate-backup.yaml",
    "diff tfgate.yaml rules/example.yaml",
    "ssh-keygen -Y verify -f allowed_signers -I alice -n tfgate -s a.sig < a.json",
    "make test",
    "make -C infra fmt",
    "make -j4 build CC=clang",
    "tar czf backup.tgz src docs",
    "tar -tzf backup.tgz",
    "tar czf infra-backup.tgz infra --exclude .terraform",
    "rsync -av src/ backup/src/",
    "rsync -av -e ssh src/ host:/srv/src/",
    "ssh -o StrictHostKeyChecking=no host uptime",
    "git -c color.ui=always log --oneline",
    "git -c core.pager=cat log -3",
    "GIT_PAGER=cat git log -3",
    "vim -c 'set number' main.tf",
    "less +G build.log",
    "sort -u names.txt > sorted.txt",
    "zip -r site.zip public",
    "crontab -l",
    "echo aGVsbG8= | base64 -d",
    "base64 -d key.b64 > key.bin",
    "rev names.txt",
    'while IFS= read -r line; do echo "$line"; done < list.txt',
    'IFS=, read -r a b <<< "x,y"',
    'export PATH="$HOME/.local/bin:$PATH"',
    'export PATH="$PATH:/opt/tools/bin"',
    'export PATH="$GOPATH/bin:$PATH"',
    "export PATH=/usr/bin:$PATH",
    "tfgate plan",
    "tfgate apply .tfgate/plans/x/plan.bin",
    "tfgate check plan.json --format json",
    "tfgate approvals verify plan.bin --approvals approvals/",
    "rm -rf node_modules dist build",
    "rm -f plan.out *.log",
    "mv main.tf.bak main.tf",
    "mkdir -p modules/db && touch modules/db/main.tf",
    'find . -name "*.tmp" -delete',
    "curl -fsSL https://example.com/install.sh -o install.sh",
    "echo 'terraform apply later' > notes.txt",
    "python3 -c \"import yaml; print(yaml.safe_load(open('rules/example.yaml')))\"",
    "git stash",
    'eval "$(ssh-agent -s)"',
    "cat script.sh | bash",
    "echo hello | tr a-z A-Z",
    "find . -name tfgate.yaml | xargs grep rules",
    "git checkout main",
    "cp tfgate.yaml tfgate.yaml.bak",
    "terraform plan -out=.tfgate/plan.bin",
    "tfgate demo --terraform embedded",
    "sed -i s/a/b/ *.tf",
    "bash <<'EOF'\ncat tfgate.yaml\nEOF",
    "echo 'alias ll=\"ls -l\"' >> ~/.bashrc",
    "echo 'export PATH=\"$HOME/.local/bin:$PATH\"' >> ~/.profile",
    "git commit -F - <<'EOF'\nprotect the database in tfgate.yaml\nEOF",
    "cat > notes.md <<'EOF'\nwe never edit tfgate.yaml by hand\nEOF",
    "printf 'Host x\\n  User deploy\\n' > /tmp/c && ssh -F /tmp/c x uptime",
]


@pytest.mark.parametrize("command", TAMPERING, ids=range(len(TAMPERING)))
def test_tampering_is_blocked(command: str) -> None:
    d = check_command(command)
    assert not d.allowed, command
    assert d.code == TAMPER, d
    assert "ask a human" in d.reason.lower(), d.reason


@pytest.mark.parametrize(("command", "code"), EXEC_AND_OPAQUE, ids=range(len(EXEC_AND_OPAQUE)))
def test_exec_options_and_opaque_text_are_blocked(command: str, code: str | None) -> None:
    d = check_command(command)
    assert not d.allowed, command
    if code:
        assert d.code == code, d


@pytest.mark.parametrize("command", EVERYDAY, ids=range(len(EVERYDAY)))
def test_everyday_commands_pass(command: str) -> None:
    d = check_command(command)
    assert d.allowed, d


def test_refusals_never_recommend_a_way_around() -> None:
    for command in ("mv tfgate.yaml /tmp/ && tfgate destroy", "rm tfgate.yaml; terraform destroy",
                    "terraform destroy -auto-approve; rm -rf .tfgate", "terraform apply; cat tfgate.yaml"):  # fmt: skip
        d = check_command(command)
        assert not d.allowed
        assert "tfgate destroy" not in d.reason and "tfgate apply" not in d.reason, (command, d.reason)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "tfgate.yaml").write_text(
        "approvals:\n  allowed_signers: keys/signers.txt\naudit:\n  log: logs/a.jsonl\n"
    )
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "signers.txt").write_text("alice ssh-ed25519 AAAA\n")
    (tmp_path / "infra" / ".tfgate").mkdir(parents=True)
    (tmp_path / "infra" / "tfgate.yml").write_text("rules: []\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print(1)\n")
    return tmp_path


def test_the_working_directory_is_looked_at(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = str(workdir)
    blocked = [
        "rm -rf *",  # the glob reaches tfgate.yaml
        "rm -rf infra",  # a directory that holds a manifest and a ledger
        "mv infra /tmp/",
        "rm keys/signers.txt",  # named by the manifest, not by its name
        "echo x >> logs/a.jsonl",
        "cd keys && rm signers.txt",
        "tar xzf evil.tgz",  # would extract over tfgate.yaml
    ]
    (workdir / "evil").mkdir()
    for command in blocked:
        assert not check_command(command.replace("/tmp/evil", str(workdir / "evil")), cwd).allowed, command
    (workdir / "evil" / "tfgate.yml").write_text("rules: []\n")
    assert not check_command(f"cp -r {workdir / 'evil'}/. infra/", cwd).allowed
    (workdir / "infra" / "tfgate.json").write_text('{"audit": {"log": "../logs/b.jsonl"}}')
    (workdir / "flow").mkdir()
    (workdir / "flow" / "tfgate.yaml").write_text("approvals: {allowed_signers: /etc/keys/signers}\n")
    assert not check_command("rm ../logs/b.jsonl", str(workdir / "infra")).allowed  # a JSON manifest's log
    assert not check_command("cp me.pub /etc/keys/signers", str(workdir / "flow")).allowed  # flow-style YAML
    for command in ["rm -rf src", "rm src/*.py", "mv src lib", "tar xzf x.tgz -C /tmp/x", "cp -r src /tmp/x"]:
        assert check_command(command, cwd).allowed, command
    cache = workdir / "node_modules" / "left-pad"
    cache.mkdir(parents=True)
    (cache / "tfgate.yaml").write_text("not ours\n")  # caches are not walked: `rm -rf node_modules` passes
    assert check_command("rm -rf node_modules .terraform", cwd).allowed
    link = workdir / "innocent.yaml"
    link.symlink_to(workdir / "tfgate.yaml")
    assert not check_command("sed -i d innocent.yaml", cwd).allowed  # a symlink to the manifest


def test_git_clean_of_an_untracked_manifest(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "tfgate.yaml").write_text("rules: []\n")
    (tmp_path / "build.log").write_text("x\n")
    assert not check_command("git clean -fd", str(tmp_path)).allowed  # it would remove the manifest
    subprocess.run(["git", "-C", str(tmp_path), "add", "tfgate.yaml"], check=True)
    assert check_command("git clean -fd", str(tmp_path)).allowed  # tracked: git clean leaves it


def test_the_shim_directory_and_tfgate_itself_are_ground(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    pinned = tmp_path / "etc" / "pinned.yaml"
    (shim / "terraform").write_text(
        "#!/bin/sh\n# tfgate-shim: generated by `tfgate shim install`; do not edit.\n"
        f"exec /usr/bin/python3 -m tfgate.enforce.shim --real /opt/tf/terraform --name terraform --manifest {pinned} "
        '-- "$@"\n'
    )
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TFGATE_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    assert not check_command(f"rm -rf {shim}", str(tmp_path)).allowed
    assert not check_command("rm shim/terraform", str(tmp_path)).allowed
    assert not check_command(f"echo > {tmp_path}/audit.jsonl", str(tmp_path)).allowed
    assert check_command("ls shim && cat shim/terraform", str(tmp_path)).allowed
    assert not check_command(f"echo 'rules: []' > {pinned}", str(tmp_path)).allowed  # the manifest it pins
    assert not check_command("cp /tmp/fake /opt/tf/terraform", str(tmp_path)).allowed  # the binary it runs
    assert not check_command("export PATH=/usr/bin:/bin", str(tmp_path)).allowed  # drops the shim
    assert check_command(f"export PATH={shim}:/usr/bin:/bin", str(tmp_path)).allowed


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/repo/tfgate.yaml", False),
        ("/repo/infra/tfgate.json", False),
        ("/repo/.tfgate/ledger.json", False),
        ("/home/u/.ssh/allowed_signers", False),
        ("/etc/tfgate/tfgate.yaml", False),
        ("/repo/.claude/settings.json", False),
        ("/repo/.github/hooks/tfgate.json", False),
        ("/repo/main.tf", True),
        ("/repo/README.md", True),
        ("/repo/tfgate/approvals/judge.py", True),
    ],
)
def test_file_tools_writing_the_ground(path: str, allowed: bool) -> None:
    startup = check_write("/home/u/.bashrc", "/repo", "alias ll='ls -l'\nexport PATH=/tmp/evil:$PATH\n")
    assert not startup.allowed and ".bashrc" in startup.reason
    assert check_write("/home/u/.bashrc", "/repo", "alias ll='ls -l'\n").allowed
    d = check_write(path, "/repo")
    assert d.allowed is allowed, d
    if not allowed:
        assert d.code == TAMPER and "ask a human" in d.reason
