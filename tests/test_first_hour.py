"""A newcomer's first hour: `tfgate init`, the way out at the end of every blocked report (and that it works
as printed), -C DIR everywhere, bad paths never an internal error, the shim running TF_CLI_ARGS commands as
the gated command. Real Terraform (embedded 1.15, and /usr/local/bin/terraform 1.11 where present), real
ssh-keygen."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfgate.cli import app

from .conftest import TF, build_scenario
from .test_state import moto_server, s3  # noqa: F401 - fixtures (moto_server on 127.0.0.1)

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen")

MANIFEST = """version: 1
protect:
  - name: prod-db
    match: {address: ["terraform_data.db"]}
    approvals: 1
    approvers: ["*@example.com"]
approvals: {allowed_signers: allowed_signers}
"""


def tfgate(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfgate", *args], cwd=cwd, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, env=env, timeout=300,
    )  # fmt: skip


def keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True
    )
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


@dataclass
class World:
    dir: Path
    key: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> World:
    """A blocked plan (plan.bin destroys the protected terraform_data.db) with an approver's key listed."""
    base = tmp_path_factory.mktemp("first-hour")
    work = base / "infra"
    work.mkdir()
    build_scenario(TF(work, terraform_bin), "deleted_block")
    (work / "tfgate.yaml").write_text(MANIFEST)
    key = base / "alice"
    (work / "allowed_signers").write_text(f'alice@example.com namespaces="tfgate" {keygen(key, "alice")}\n')
    return World(work, key)


# --- tfgate init -----------------------------------------------------------------------------------------

STATE = {
    "version": 4, "terraform_version": "1.15.5", "serial": 7, "lineage": "0b5d9c2e-1111-2222-3333-444455556666",
    "outputs": {},
    "resources": [
        {"mode": "managed", "type": "aws_db_instance", "name": "orders", "provider": "p", "instances": []},
        {"module": "module.storage", "mode": "managed", "type": "aws_s3_bucket", "name": "logs", "each": "list",
         "provider": "p", "instances": []},
        {"mode": "managed", "type": "terraform_data", "name": "web", "provider": "p", "instances": []},
        {"mode": "data", "type": "aws_s3_bucket", "name": "existing", "provider": "p", "instances": []},
    ],
}  # fmt: skip


def test_init_protects_the_data_bearing_resources_the_state_holds(tmp_path: Path) -> None:
    from tfgate.approvals import allowed_signers
    from tfgate.approvals.shim import NAMESPACE as SHIM_NAMESPACE
    from tfgate.approvals.statement import NAMESPACE
    from tfgate.model import Change, ChangeClass
    from tfgate.policy.manifest import load_manifest

    root = tmp_path / "root"
    root.mkdir()
    (root / "terraform.tfstate").write_text(json.dumps(STATE))
    proc = tfgate("init", str(root), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for step in ("tfgate guard install --agent", "tfgate shim install", "tfgate protect init", "action.yml",
                 "tfgate plan -C"):  # fmt: skip
        assert step in proc.stdout, step
    manifest = load_manifest(root / "tfgate.yaml")
    assert manifest.allowed_signers == root / "allowed_signers" and (root / "approvals").is_dir()
    text = (root / "tfgate.yaml").read_text()
    assert '"aws_db_instance.orders"' in text and '"module.storage.aws_s3_bucket.logs[*]"' in text
    assert "terraform_data.web" not in text and "existing" not in text  # not data-bearing; a data source

    def rules(address: str, rtype: str, module: str | None = None) -> list[str]:
        change = Change(address=address, mode="managed", type=rtype, name="x", module_address=module, index=None,
                        provider=None, actions=("delete",), change_class=ChangeClass.DELETE)  # fmt: skip
        return [r.name for r in manifest.protecting(change)]

    assert rules("aws_db_instance.orders", "aws_db_instance") == ["data-in-state"]
    assert rules("module.storage.aws_s3_bucket.logs[1]", "aws_s3_bucket", "module.storage") == [
        "data-in-state"
    ]
    assert rules("aws_db_instance.other", "aws_db_instance") == []  # listed by address, for the user to edit
    # The example line, uncommented, is a valid line allowing both namespaces tfgate verifies.
    example = next(
        line[2:] for line in (root / "allowed_signers").read_text().splitlines() if line.startswith("# alice")
    )
    (tmp_path / "signers").write_text(example + "\n")
    entry = allowed_signers.load(tmp_path / "signers").entries[0]
    assert entry.allows_namespace(NAMESPACE) and entry.allows_namespace(SHIM_NAMESPACE)
    assert allowed_signers.load(root / "allowed_signers").entries == ()  # nothing is trusted until you add it

    # Never overwrites: exit 2 naming what exists, nothing written.
    before = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
    proc = tfgate("init", "-C", str(root), cwd=tmp_path)
    assert proc.returncode == 2 and "tfgate.yaml" in proc.stderr and "allowed_signers" in proc.stderr
    assert {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()} == before
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "allowed_signers").write_text("# mine\n")
    proc = tfgate("init", "half", cwd=tmp_path)
    assert proc.returncode == 2 and "allowed_signers" in proc.stderr
    assert not (tmp_path / "half" / "tfgate.yaml").exists()


def test_init_without_state_writes_a_template_that_protects_the_catalog(tmp_path: Path) -> None:
    from tfgate.model import Change, ChangeClass
    from tfgate.policy.manifest import load_manifest

    proc = tfgate("init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = load_manifest(tmp_path / "tfgate.yaml")
    db = Change(address="aws_db_instance.x", mode="managed", type="aws_db_instance", name="x", module_address=None,
                index=None, provider=None, actions=("delete",), change_class=ChangeClass.DELETE,
                catalog_classes=("database", "data-bearing"))  # fmt: skip
    assert [r.name for r in manifest.protecting(db)] == ["data-bearing"]
    assert "No state yet" in (tmp_path / "tfgate.yaml").read_text()
    assert tfgate("init", str(tmp_path / "nope"), cwd=tmp_path).returncode == 2


# --- the way out -----------------------------------------------------------------------------------------


def test_every_blocked_report_ends_with_the_way_out(world: World, tmp_path: Path) -> None:
    proc = tfgate("check", "-C", str(world.dir), "plan.bin", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    way = json.loads(proc.stdout)["way_out"]
    assert way["needed"] == [{"rule": "prod-db", "still_needed": 1, "approvers": ["*@example.com"],
                              "addresses": ["terraform_data.db"]}]  # fmt: skip
    assert way["approvals_dir"] == "approvals/"
    assert way["approve"] == (
        f"tfgate approve -C {world.dir} plan.bin --signer SIGNER --key KEY --reason REASON --output approvals/"
    )
    assert way["then"] == f"tfgate check -C {world.dir} plan.bin --approvals approvals/"
    for fmt in ("text", "markdown", "html"):
        out = tfgate("check", "-C", str(world.dir), "plan.bin", "--format", fmt, cwd=tmp_path).stdout
        tail = out[out.rindex("The way out") :]
        assert "--signer SIGNER --key KEY" in tail and "--approvals approvals/" in tail, fmt
        assert "approvals go in" in tail.lower(), fmt
    # The PR comment is the Markdown report: the same way out at its end.
    from tfgate.pipeline import CheckOptions, run_check
    from tfgate.render import render

    result = run_check(CheckOptions(plan=str(world.dir / "plan.bin"), workdir=world.dir))
    comment = render(result, "markdown")
    assert comment.index("### The way out") > comment.index("### Blocked")
    assert result.way_out is not None and result.way_out.then in comment


def test_the_printed_approve_command_works_as_written(world: World, tmp_path: Path) -> None:
    """The way out, run from another directory exactly as printed (placeholders filled in): exit 0 after."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    way = json.loads(tfgate("check", "-C", str(world.dir), "plan.bin", "-f", "json", cwd=elsewhere).stdout)[
        "way_out"
    ]
    filled = {"SIGNER": "alice@example.com", "KEY": str(world.key), "REASON": "retire orders (CHG-42)"}
    argv = [filled.get(w, w) for w in shlex.split(way["approve"])] + ["--yes"]
    proc = tfgate(*argv[1:], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    written = list((world.dir / "approvals").glob("approval-*.json"))
    assert len(written) == 1 and Path(f"{written[0]}.sig").is_file()  # inside DIR/approvals/, not elsewhere
    assert tfgate(*shlex.split(way["then"])[1:], cwd=elsewhere).returncode == 0
    # --output onto a directory with --force writes inside it; a directory where the file would go is a
    # clear error, never an internal one.
    proc = tfgate(*argv[1:], "--force", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    (world.dir / "blocker").mkdir()
    proc = tfgate(*argv[1:-3], "--output", "blocker", "--force", "--yes", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr  # an existing directory: the statement goes inside it
    (world.dir / "approvals" / "x.json").mkdir()
    proc = tfgate(*argv[1:-3], "--output", "approvals/x.json", "--force", "--yes", cwd=elsewhere)
    assert proc.returncode == 0 and (world.dir / "approvals" / "x.json").is_dir()  # inside x.json/, as asked
    shutil.rmtree(world.dir / "approvals" / "x.json")
    shutil.rmtree(world.dir / "blocker")


def test_the_way_out_after_a_gated_plan_names_only_options_its_commands_take(
    world: World, terraform_bin: Path
) -> None:
    """`tfgate plan`'s way out ends with `tfgate apply PLANFILE ...`: apply takes no --input-format (the gate
    checks a saved binary plan), so printing one made the command as printed an argument error."""
    import typer

    from tfgate.enforce.gated import GateOptions, check

    result = check(GateOptions(workdir=world.dir, terraform=str(terraform_bin)), world.dir / "plan.bin")
    way = result.way_out
    assert way is not None and way.approve and way.then.startswith("tfgate apply ")
    root = typer.main.get_command(app)
    for line in (way.approve, way.then):
        words = shlex.split(line)
        command = root.commands[words[1]]
        options = {o for param in command.params for o in getattr(param, "opts", [])}
        assert [w for w in words[2:] if w.startswith("-") and w not in options] == [], line


def test_check_resolves_paths_against_C(world: World, tmp_path: Path) -> None:
    """`check -C DIR plan` reads DIR/plan, DIR's manifest, and writes --report-md relative to DIR."""
    proc = tfgate("check", "-C", str(world.dir), "plan.bin", "--report-md", "r.md", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert (world.dir / "r.md").is_file() and not (tmp_path / "r.md").exists()
    (world.dir / "r.md").unlink()


# --- bad paths: exit 2 naming them, never an internal error ------------------------------------------------

BAD = [
    ("check", "plan.bin", "-C", "{missing}"),
    ("check", "{missing}"),
    ("check", "{dir}"),
    ("check", "{file}", "--manifest", "{dir}"),
    ("check", "{file}", "--approvals", "{missing}"),
    ("check", "plan.bin", "-C", "{file}"),
    ("plan", "{missing}"),
    ("plan", "-C", "{missing}"),
    ("plan", "-C", "{dir}", "{dir}"),
    ("apply", "{missing}"),
    ("apply", "{dir}"),
    ("apply", "-C", "{missing}"),
    ("destroy", "-C", "{missing}"),
    (
        "approve",
        "{file}",
        "--signer",
        "a@example.com",
        "--key",
        "{missing}",
        "--reason",
        "r",
        "-C",
        "{missing}",
    ),
    ("approve", "{missing}", "--signer", "a@example.com", "--key", "{dir}", "--reason", "r"),
    ("approvals", "verify", "{dir}", "--plan", "{dir}"),
    ("approvals", "verify", "{missing}", "--plan", "{file}"),
    ("approvals", "verify", "{file}", "--plan", "{missing}", "-C", "{missing}"),
    ("state", "check", "{missing}"),
    ("state", "check", "-C", "{missing}"),
    ("state", "check", "{file}"),
    ("state", "check", "--manifest", "{dir}"),
    ("comment", "plan.bin", "-C", "{missing}"),
    ("comment", "{missing}", "--repo", "o/r", "--pr", "1", "--sha", "a" * 40),
    ("init", "{missing}"),
    ("init", "{file}"),
    ("demo", "--keep", "{file}"),
    ("shim", "install", "{file}"),
    ("audit", "verify", "{missing}"),
    ("audit", "verify", "{dir}"),
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_paths_are_input_errors_naming_them(args: tuple[str, ...], tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("not a plan")
    (tmp_path / "dir").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_TOKEN", "x")
    paths = {
        "missing": str(tmp_path / "nonexistent"),
        "dir": str(tmp_path / "dir"),
        "file": str(tmp_path / "file"),
    }
    argv = [a.format(**paths) for a in args]
    result = CliRunner().invoke(app, argv)
    out = result.output
    assert result.exit_code == 2, (argv, out)
    assert "internal error" not in out and "Traceback" not in out, out
    named = [p for k, p in paths.items() if "{" + k + "}" in " ".join(args)]
    assert any(p in out or Path(p).name in out for p in named), (argv, out)


# --- the shim and the gated commands ------------------------------------------------------------------------


@pytest.fixture
def prod(tf: TF) -> TF:
    tf.write('resource "terraform_data" "db" {\n  input = "orders"\n}\nresource "terraform_data" "web" {}\n')
    tf.run("init", "-input=false")
    tf.apply()
    return tf


def test_shim_runs_a_tf_cli_args_destroy_as_the_gated_destroy(
    prod: TF, tmp_path: Path, terraform_bin
) -> None:
    shims = tmp_path / "shims"
    proc = tfgate("shim", "install", str(shims), "--terraform", str(terraform_bin), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (prod.dir / "tfgate.yaml").write_text(
        MANIFEST.replace("approvals: {allowed_signers: allowed_signers}\n", "")
    )
    env = dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}", TF_CLI_ARGS="destroy -auto-approve")
    env.pop("TFGATE_TERRAFORM")
    run = subprocess.run(
        ["terraform"], cwd=prod.dir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert run.returncode == 1, run.stderr  # the gated destroy, blocked: not a Terraform usage error
    assert "tfgate: BLOCKED" in run.stdout and "Usage" not in run.stderr
    assert "blocked: nothing applied; the plan is " in run.stderr and "its reports beside it" in run.stderr
    plan = Path(run.stderr.split("the plan is ", 1)[1].split(",", 1)[0])
    assert plan.is_file() and (plan.parent / "report.html").is_file()
    assert len(prod.state()["resources"]) == 2
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    run = subprocess.run(
        ["terraform"], cwd=prod.dir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert run.returncode == 0, run.stderr
    assert prod.state()["resources"] == []  # the destroy ran, through the gate


def test_apply_passes_plan_and_apply_flags_to_both(prod: TF, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "logging-terraform"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{prod.exe}" "$@"\n')
    wrapper.chmod(0o755)
    (prod.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    prod.write(
        'resource "terraform_data" "db" {\n  input = "orders-v2"\n}\nresource "terraform_data" "web" {}\n'
    )
    proc = tfgate("apply", "--terraform", str(wrapper), "--auto-approve", "--", "-parallelism=2",
                  "-lock-timeout=30s", "-no-color", "-refresh=false", cwd=prod.dir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    plan = next(c for c in calls if c.startswith("plan "))
    apply = next(c for c in calls if c.startswith("apply "))
    for flag in ("-parallelism=2", "-lock-timeout=30s", "-no-color"):
        assert flag in plan.split() and flag in apply.split(), (flag, calls)
    assert "-refresh=false" in plan.split() and "-refresh=false" not in apply.split()  # plan-only
    # A value flag without = could swallow the plan file: refused before anything runs.
    proc = tfgate(
        "apply", "--terraform", str(wrapper), "--auto-approve", "--", "-lock-timeout", "30s", cwd=prod.dir
    )
    assert proc.returncode == 2 and "-lock-timeout=VALUE" in proc.stderr


# --- the demo ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/usr/local/bin/terraform").is_file(), reason="needs a second Terraform")
def test_demo_ends_with_the_approved_apply_and_its_kept_commands_work(tmp_path: Path) -> None:
    """With Terraform 1.11 first on PATH, the demo (embedded 1.15) and the commands it prints still work."""
    env = dict(os.environ, PATH=f"/usr/local/bin:{os.environ['PATH']}")
    env.pop("TFGATE_TERRAFORM")
    keep = tmp_path / "kept"
    proc = tfgate("demo", "--keep", str(keep), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "tfgate: BLOCKED" in proc.stdout and "tfgate: ALLOWED" in proc.stdout
    assert "Apply complete!" in proc.stdout + proc.stderr and "signs an approval" in proc.stderr
    commands = [
        line.strip().split("  #")[0].strip() for line in proc.stdout.split("Replay it:\n", 1)[1].splitlines()
    ]
    assert commands[0].startswith("cd ") and all("--terraform embedded" in c for c in commands[1:])
    codes = []
    for command in commands[1:]:
        run = subprocess.run(
            command, shell=True, cwd=commands[0][3:], env=env, capture_output=True, text=True
        )
        codes.append(run.returncode)
        assert "created by Terraform" not in run.stderr, run.stderr
    assert codes == [1, 0, 0, 0], codes


def test_demo_needs_nothing_but_python(tmp_path: Path) -> None:
    """A fresh machine may have no OpenSSH: the demo still tells its whole story (the throwaway key signs
    in-process), with the embedded Terraform and a PATH holding only Python."""
    bare = tmp_path / "bin"
    bare.mkdir()
    env = dict(os.environ, PATH=str(bare))
    env.pop("TFGATE_TERRAFORM", None)
    assert shutil.which("ssh-keygen", path=env["PATH"]) is None
    proc = tfgate("demo", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "tfgate: BLOCKED" in proc.stdout and "tfgate: ALLOWED" in proc.stdout
    assert "signs with its throwaway key in-process" in proc.stderr


def test_help_reads_well(tmp_path: Path) -> None:
    """Usage lines without {PLAN}, no command description broken mid-sentence, the demo right about its
    Terraform, --key marked required unless --statement-only."""
    import typer

    from tfgate.cli_common import tidy_help

    command = typer.main.get_command(app)
    tidy_help(command)
    stack = [command]
    while stack:
        group = stack.pop()
        for sub in getattr(group, "commands", {}).values():
            stack.append(sub)
            assert "\n" not in (sub.help or "").replace("\n\n", ""), sub.name
            for param in sub.params:
                if param.param_type_name == "argument":
                    assert "{" not in param.make_metavar(None, usage=True), (sub.name, param.name)
    env = dict(os.environ, COLUMNS="200")
    out = tfgate("check", "--help", cwd=tmp_path, env=env).stdout
    assert "Usage: tfgate check [OPTIONS] PLAN..." in out or "Usage: tfgate check [OPTIONS] PLAN" in out
    assert "Required unless --statement-only" in tfgate("approve", "--help", cwd=tmp_path, env=env).stdout
    assert "embedded Terraform" in tfgate("demo", "--help", cwd=tmp_path, env=env).stdout


def test_init_reads_the_state_of_an_s3_backend(s3, tmp_path: Path) -> None:  # noqa: F811 - fixture from test_state
    client, bucket, url = s3
    client.put_object(Bucket=bucket, Key="prod/terraform.tfstate", Body=json.dumps(STATE).encode())
    (tmp_path / "backend.tf").write_text(
        f'terraform {{\n  backend "s3" {{\n    bucket = "{bucket}"\n    key = "prod/terraform.tfstate"\n'
        f'    region = "us-east-1"\n    endpoints = {{ s3 = "{url}" }}\n    use_path_style = true\n  }}\n}}\n'
    )
    result = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "tfgate.yaml").read_text()
    assert f"s3://{bucket}/prod/terraform.tfstate" in text and '"aws_db_instance.orders"' in text
