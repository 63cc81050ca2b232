"""`tfgate protect init|policy|status|remove`: protected mode's setup commands (thin: tfgate.enforce.protect decides)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

DirArg = Annotated[Path, typer.Argument(help="The Terraform root directory.")]


def make_protect_app(guarded: Callable[[Callable[[], int]], int]) -> typer.Typer:
    """The `tfgate protect` sub-app; GUARDED is the CLI's fail-closed runner."""
    protect_app = typer.Typer(
        no_args_is_help=True,
        help="Protected mode: a dedicated user owns a root's state and policy; the agent applies through sudo.",
    )

    def _run(fn: Callable[[], int]) -> None:
        raise typer.Exit(guarded(fn))

    _define(protect_app, _run)
    return protect_app


def _define(protect_app: typer.Typer, _run: Callable[[Callable[[], int]], None]) -> None:
    @protect_app.command("init")
    def init(
        directory: DirArg,
        agent_user: Annotated[
            str, typer.Option("--agent-user", help="The agent's Unix user (keeps editing .tf files).")
        ],
        user: Annotated[
            str, typer.Option("--user", help="The privileged system user (created if missing).")
        ] = "tfgate",
        terraform: Annotated[
            str | None,
            typer.Option("--terraform", help="Terraform binary to pin (default: as tfgate finds it)."),
        ] = None,
        workspace: Annotated[
            list[str] | None,
            typer.Option(
                "--workspace", help="Also pin this workspace (repeatable; default is always pinned)."
            ),
        ] = None,
        env_file: Annotated[
            Path | None,
            typer.Option(
                "--env-file", help="Apply credentials (NAME=VALUE lines) only the privileged side gets."
            ),
        ] = None,
        provider_mirror: Annotated[
            Path | None,
            typer.Option(
                "--provider-mirror",
                help="Install providers only from this root-owned filesystem mirror (air-gapped hosts).",
            ),
        ] = None,
        libexec: Annotated[Path, typer.Option("--libexec", hidden=True)] = Path("/usr/local/libexec/tfgate"),
    ) -> None:
        """Protect DIRECTORY (root only; idempotent; prints what it changed)."""
        from tfgate.enforce.protect import init as run

        _run(lambda: run(directory, agent_user, user=user, terraform=terraform, workspaces=tuple(workspace or ()),
                         env_file=env_file, provider_mirror=provider_mirror, libexec=libexec))  # fmt: skip

    @protect_app.command("policy")
    def policy(
        directory: DirArg,
        manifest: Annotated[
            Path | None,
            typer.Option("--manifest", help="The policy to pin (default: DIRECTORY's tfgate.yaml)."),
        ] = None,
        allowed_signers: Annotated[
            Path | None,
            typer.Option(
                "--allowed-signers", help="allowed_signers to pin (default: the one the policy names)."
            ),
        ] = None,
        yes: Annotated[
            bool, typer.Option("--yes", help="Pin without asking (after reading the diff).")
        ] = False,
    ) -> None:
        """Review and re-pin DIRECTORY's policy (root only): shows the diff, asks, records it in the audit log."""
        from tfgate.enforce.repin import repin

        _run(lambda: repin(directory, manifest=manifest, allowed_signers=allowed_signers, yes=yes))

    @protect_app.command("status")
    def status(directory: DirArg) -> None:
        """Check what protects DIRECTORY: exit 0 all in place, 1 a problem, 2 an error."""
        from tfgate.enforce.protect import status as run

        _run(lambda: run(directory))

    @protect_app.command("remove")
    def remove(directory: DirArg) -> None:
        """Unprotect DIRECTORY: state back in place, sudoers drop-in and pin removed (root only)."""
        from tfgate.enforce.protect import remove as run

        _run(lambda: run(directory))
