"""CLI commands of approvals beyond `tfgate approve` (kept out of cli.py, which stays thin and small):
`tfgate shim approve`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tfgate.cli_common import AuditLogOpt, ChdirOpt, ManifestOpt, TerraformOpt, guarded


def shim_approve(
    args: Annotated[list[str], typer.Argument(help="The Terraform arguments to approve, after --.")],
    signer: Annotated[str, typer.Option("--signer", "-s", help="Your principal in allowed_signers.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="SSH private key, or its .pub (ssh-agent).")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required).")],
    ttl: Annotated[str, typer.Option("--ttl", help="How long it stays valid (at most max_ttl).")] = "4h",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Statement file or directory.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing statement file.")] = False,
    manifest: ManifestOpt = None,
    terraform: TerraformOpt = None,
    chdir: ChdirOpt = Path("."),
    audit_log: AuditLogOpt = None,
) -> None:
    """Sign an approval of one state-changing Terraform command (`tfgate shim approve -- state rm ADDR`),
    bound to this root, workspace and state; the shim runs it when TFGATE_APPROVALS names enough of them."""
    from tfgate.approvals.shim import ShimApproveOptions, run_shim_approve

    opts = ShimApproveOptions(
        args=tuple(args), signer=signer, key=key, reason=reason, workdir=chdir, ttl=ttl, output=output,
        manifest=manifest, terraform=terraform, yes=yes, force=force, audit_log=audit_log,
    )  # fmt: skip
    raise typer.Exit(
        guarded(
            lambda: run_shim_approve(
                opts,
                echo=lambda text: typer.echo(text, err=True),
                confirm=lambda text: typer.confirm(text, default=False, err=True),
                interactive=sys.stdin.isatty(),
            )
        )
    )
