"""The audit log's head anchored where the log alone cannot be edited: the ledger after each gated apply (real
Terraform), anchor files, and checkpoints signed with real ssh-keygen keys. Truncation and a rebuilt chain,
which the chain cannot show on its own, fail `tfgate audit verify`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate import audit
from tfgate.anchor import head, write_anchor

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen")


def tfgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfgate", *args], cwd=cwd, capture_output=True, text=True)


def _cut(log: Path, keep: int) -> None:
    log.write_bytes(b"".join(line + b"\n" for line in log.read_bytes().splitlines()[:keep]))


def _rebuild(log: Path, events: int) -> None:
    """What someone who can write the log does: a fresh, internally consistent chain."""
    log.unlink()
    for _ in range(events):
        audit.record_event("check", command="terraform plan", log=log, verdict="allow")


@pytest.fixture
def applied(tf, _audit_log_env: Path):
    """A real gated apply (tfgate apply PLAN) in a working directory: the ledger anchors the audit head."""
    tf.write('resource "terraform_data" "a" {\n  input = "1"\n}\n')
    tf.run("init", "-input=false")
    (tf.dir / "tfgate.yaml").write_text("version: 1\nprotect: []\n")
    plan = tf.plan()
    proc = tfgate("apply", str(plan), cwd=tf.dir)
    assert proc.returncode == 0, proc.stderr
    return tf, _audit_log_env


def test_the_ledger_anchors_the_head_after_a_gated_apply(applied) -> None:
    tf, log = applied
    ledger = json.loads((tf.dir / ".tfgate" / "ledger.json").read_text())
    anchored = ledger["audit"][str(log.resolve())]
    now = head(log)
    assert now is not None and (anchored["seq"], anchored["head"]) == (now.seq, now.hash)
    assert ledger["workspaces"]["default"]["lineage"] == tf.state()["lineage"]  # the ledger's own entry stays
    ok = tfgate("audit", "verify", cwd=tf.dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout and "anchored heads present: the ledger" in ok.stdout
    # Later entries are fine: the anchored head is still in the log.
    audit.record_event("check", command="x", log=log, verdict="allow")
    assert tfgate("audit", "verify", cwd=tf.dir).returncode == 0


def test_a_cut_off_tail_is_detected(applied) -> None:
    tf, log = applied
    lines = log.read_bytes().splitlines()
    _cut(log, len(lines) - 1)  # drop the "apply applied" line: the chain alone still verifies
    assert audit.verify(log).ok
    bad = tfgate("audit", "verify", cwd=tf.dir)
    assert bad.returncode == 1 and "its tail was cut off" in bad.stdout and "TAMPERED" in bad.stdout


def test_a_rebuilt_chain_is_detected(applied) -> None:
    tf, log = applied
    n = len(log.read_bytes().splitlines())
    _rebuild(log, n + 2)  # as long as or longer than the real one, every line consistent
    assert audit.verify(log).ok
    bad = tfgate("audit", "verify", cwd=tf.dir)
    assert bad.returncode == 1 and "another line: the chain was rebuilt or rewritten" in bad.stdout


def test_anchor_files_for_a_copy_the_log_writer_cannot_reach(tmp_path: Path, _audit_log_env: Path) -> None:
    log = _audit_log_env
    for _ in range(3):
        audit.record_event("check", command="c", log=log, verdict="allow")
    now = head(log)
    assert now is not None and now.seq == 3
    anchor = tmp_path / "privileged" / "audit-anchor.json"
    write_anchor(anchor, now)
    assert tfgate("audit", "verify", "--anchor", str(anchor), cwd=tmp_path).returncode == 0
    _cut(log, 2)
    bad = tfgate("audit", "verify", "--anchor", str(anchor), cwd=tmp_path)
    assert bad.returncode == 1 and f"anchor {anchor} anchors the head seq 3" in bad.stdout
    anchor.write_text("{}")
    assert tfgate("audit", "verify", "--anchor", str(anchor), cwd=tmp_path).returncode == 2


def test_signed_checkpoints(tmp_path: Path, _audit_log_env: Path) -> None:
    log = _audit_log_env
    for _ in range(4):
        audit.record_event("check", command="c", log=log, verdict="allow")
    keys = {}
    for who in ("alice", "mallory"):
        keys[who] = tmp_path / f"id_{who}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys[who])], check=True)
    pub = " ".join(Path(f"{keys['alice']}.pub").read_text().split()[:2])
    (tmp_path / "allowed_signers").write_text(
        f'alice@example.com namespaces="tfgate,tfgate-shim,tfgate-audit" {pub}\n'
    )
    (tmp_path / "tfgate.yaml").write_text("version: 1\napprovals: {allowed_signers: allowed_signers}\n")

    def checkpoint(who: str, out: str):
        return tfgate("audit", "checkpoint", "--key", str(keys[who]), "--signer", "alice@example.com", "-o",
                      str(tmp_path / out), cwd=tmp_path)  # fmt: skip

    made = checkpoint("alice", "cp.json")
    assert made.returncode == 0, made.stderr
    doc = json.loads((tmp_path / "cp.json").read_text())
    assert doc["seq"] == 4 and doc["tfgate"] == "audit-checkpoint"
    # mallory's key is not listed: refused before anything is written
    refused = checkpoint("mallory", "m.json")
    assert (
        refused.returncode == 2 and not (tmp_path / "m.json").exists() and "could not count" in refused.stderr
    )
    assert 'namespaces="tfgate-audit"' in refused.stderr  # the fix it names is one that works
    verify = ["audit", "verify", "--checkpoint", str(tmp_path / "cp.json")]
    ok = tfgate(*verify, cwd=tmp_path)
    assert ok.returncode == 0 and "anchored heads present: checkpoint" in ok.stdout, ok.stdout + ok.stderr
    # A rebuilt log of the same length does not hold the signed head.
    _rebuild(log, 4)
    bad = tfgate(*verify, cwd=tmp_path)
    assert bad.returncode == 1 and "rebuilt or rewritten" in bad.stdout
    # An edited checkpoint (pointing at the new head) no longer verifies.
    forged = dict(doc, head=head(log).hash)  # type: ignore[union-attr]
    (tmp_path / "cp.json").write_text(json.dumps(forged, indent=2) + "\n")
    bad = tfgate(*verify, cwd=tmp_path)
    assert bad.returncode == 1 and "bad signature" in bad.stdout
    # A key restricted to other namespaces cannot sign checkpoints.
    (tmp_path / "allowed_signers").write_text(f'alice@example.com namespaces="tfgate" {pub}\n')
    refused = checkpoint("alice", "x.json")
    assert refused.returncode == 2 and "for namespace 'tfgate-audit'" in refused.stderr
    # ... and the line it says to add lists tfgate-audit (not the approvers' "tfgate,tfgate-shim")
    assert 'add a line alice@example.com namespaces="tfgate-audit"' in refused.stderr, refused.stderr
