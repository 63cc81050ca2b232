"""CLI commands of approvals beyond `tfgate approve` and of the audit log's anchors (kept out of cli.py, which
stays thin and small): `tfgate shim approve`, `tfgate audit verify`, `tfgate audit checkpoint`."""

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


def audit_verify(
    log: Annotated[Path | None, typer.Argument(help="Audit log (default: the configured log).")] = None,
    head: Annotated[
        str | None, typer.Option("--head", help="A head hash recorded earlier that must still be in the log.")
    ] = None,
    anchor: Annotated[
        list[Path] | None,
        typer.Option("--anchor", help="An anchor file whose head must be in the log (repeatable)."),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint", help="A signed checkpoint (namespace tfgate-audit) to verify (repeatable)."
        ),
    ] = None,
    manifest: ManifestOpt = None,
    chdir: ChdirOpt = Path("."),
) -> None:
    """Verify the hash chain and the anchored heads (the ledger's, --anchor, --checkpoint): exit 0 when intact,
    1 naming every edited, deleted, inserted or reordered line, a cut-off tail or a rebuilt chain (or when the
    log is empty), 2 when the log, an anchor or the ledger cannot be read."""
    from tfgate.checkpoint import main_verify

    raise typer.Exit(
        guarded(
            lambda: main_verify(
                log,
                head_hash=head,
                manifest=manifest,
                workdir=chdir,
                anchors=anchor or (),
                checkpoints=checkpoint or (),
            )
        )
    )


def audit_checkpoint(
    log: Annotated[Path | None, typer.Argument(help="Audit log (default: the configured log).")] = None,
    key: Annotated[Path, typer.Option("--key", "-k", help="SSH private key, or its .pub (ssh-agent).")] = ...,  # type: ignore[assignment]
    signer: Annotated[str, typer.Option("--signer", "-s", help="Your principal in allowed_signers.")] = ...,  # type: ignore[assignment]
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Checkpoint file or directory.")
    ] = None,
    manifest: ManifestOpt = None,
    chdir: ChdirOpt = Path("."),
) -> None:
    """Sign the audit log's current head with an SSH key (namespace tfgate-audit): `tfgate audit verify
    --checkpoint FILE` later proves the log still holds it."""
    from tfgate.audit import resolve_log
    from tfgate.checkpoint import make_checkpoint
    from tfgate.policy.manifest import load_manifest

    def body() -> int:
        m = load_manifest(manifest, cwd=chdir)
        path = resolve_log(log, manifest_log=m.audit_log, cwd=chdir)
        out = make_checkpoint(path, signer=signer, key=key, output=output, manifest=m)
        typer.echo(
            f"wrote {out} and {out.name}.sig: verify with tfgate audit verify --checkpoint {out}", err=True
        )
        return 0

    raise typer.Exit(guarded(body))
