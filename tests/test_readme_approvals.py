"""The README as a newcomer follows it: the quick start's clone, and the approvals walkthrough run line by line
as written, with real ssh-keygen and real Terraform (the embedded 1.15 as `terraform` on PATH)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, TF, build_scenario

README = (REPO / "README.md").read_text()
MANIFEST = """version: 1
protect:
  - name: prod-db
    match: {address: ["terraform_data.db"]}
approvals: {allowed_signers: allowed_signers}
"""


def _block(after: str) -> str:
    return re.search(r"```sh\n(.+?)\n```", README.split(after, 1)[1], re.DOTALL).group(1)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen")
def test_the_readme_approvals_walkthrough_runs_as_written(tmp_path: Path, terraform_bin: Path) -> None:
    script = _block("Step by step, from a blocked plan to its apply")
    work = tmp_path / "root"
    work.mkdir()
    tf = TF(work, terraform_bin)
    build_scenario(tf, "deleted_block")  # applied; main.tf now deletes terraform_data.db
    (work / "plan.bin").unlink()  # the walkthrough makes its own plan
    (work / "tfgate.yaml").write_text(MANIFEST)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), PATH=f"{terraform_bin.parent}:{os.environ['PATH']}")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "blocked (exit 1)" in proc.stdout and "The way out:" in proc.stdout
    assert "tfgate: ALLOWED" in proc.stdout
    assert len(list((work / "approvals").glob("approval-*.json.sig"))) == 1
    assert [r["name"] for r in tf.state()["resources"]] == ["web"]  # the approved destroy was applied


def test_the_quick_start_clone_works_and_says_what_it_needs(tmp_path: Path) -> None:
    command = re.findall(r"```sh\n(.+?)\n```", README.split("## Quick start", 1)[1].split("\n## ", 1)[0])[0]
    clone = command.split(" && python3 ", 1)[0]  # up to the install: clone and cd
    assert clone.startswith("git clone ") and "<" not in command
    env = dict(os.environ, TFGATE_GIT_URL=str(REPO))
    proc = subprocess.run(["bash", "-ec", clone + " && test -f pyproject.toml && test -f .ci/run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    env.pop("TFGATE_GIT_URL")
    proc = subprocess.run(
        ["bash", "-c", clone], cwd=tmp_path / "tfgate", env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "set TFGATE_GIT_URL" in proc.stderr
