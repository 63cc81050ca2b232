"""`tfgate demo`: the incident, replayed offline on a bundled example, with the gate in the way."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfgate.errors import TerraformError
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


def run_demo(*, keep: Path | None = None, terraform: str | None = None, fmt: str | None = None) -> int:
    """Build production state, plan a change that silently destroys the database, check it."""
    from tfgate.pipeline import CheckOptions, run_check
    from tfgate.plan.terraform import embedded_command, find_terraform
    from tfgate.render import emit

    # The embedded Terraform (tfgate[embedded]) by default: the demo is the same everywhere and offline.
    terraform = terraform or ("embedded" if embedded_command() else None)
    tf = find_terraform(terraform)
    src = data_path("fixtures/demo")
    tmp = None
    if keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="tfgate-demo-")
        root = Path(tmp.name)
    else:
        root = keep.resolve()
        root.mkdir(parents=True, exist_ok=True)
    try:
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
        _say("tfgate check change.tfplan --manifest tfgate.yaml")
        result = run_check(
            CheckOptions(
                plan=str(work / "change.tfplan"),
                terraform=terraform,
                manifest=work / "tfgate.yaml",
                workdir=work,
                state_checks=False,
            )
        )
        emit(result, fmt, {})
        if result.exit_code:
            _say(
                "blocked: the database would be destroyed without a signed approval (exit 1). "
                "`terraform apply` never ran; production is untouched."
            )
        return result.exit_code
    finally:
        if tmp is not None:
            tmp.cleanup()
