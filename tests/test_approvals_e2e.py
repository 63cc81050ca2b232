"""Signed approvals end to end: real Terraform plans, real ssh-keygen, the tfgate CLI.

A protected destroy is blocked (exit 1), becomes allowed (exit 0) with the right signed approval, and
stays blocked (exit 1, with the reason in the report) with each wrong one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfgate.approvals.statement import ApprovedChange, Statement
from tfgate.cli import app

from .conftest import TF, build_scenario

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen")

RULE = """version: 1
protect:
  - name: prod-db
    match: {{address: ['terraform_data.db']}}
    approvals: {n}
    approvers: ["alice@example.com", "*@platform.example.com"]
approvals: {{allowed_signers: allowed_signers}}
"""


@dataclass
class World:
    dir: Path
    keys: dict[str, Path]
    digest: str
    digest2: str
    root: str = ""
    state: tuple[str, int] | None = None


def _pub(key: Path) -> str:
    return " ".join(Path(f"{key}.pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> World:
    base = tmp_path_factory.mktemp("approvals-e2e")
    work = base / "work"
    work.mkdir()
    tf = TF(work, terraform_bin)
    build_scenario(tf, "deleted_block")  # plan.bin: terraform_data.db is destroyed (its block was deleted)
    (work / "plan.json").write_text(tf.run("show", "-json", "plan.bin").stdout)
    # The re-plan: one more destroy (web goes too).
    tf.write('resource "terraform_data" "other" { input = "x" }\n')
    tf.plan("plan2.bin")
    (work / "plan2.json").write_text(tf.run("show", "-json", "plan2.bin").stdout)
    keys = {}
    for who, kind in (("alice", "ed25519"), ("carol", "ecdsa"), ("bob", "rsa"), ("mallory", "ed25519")):
        keys[who] = base / f"id_{who}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(keys[who])], check=True, capture_output=True
        )
    (work / "allowed_signers").write_text(
        f"alice@example.com {_pub(keys['alice'])}\n"
        f'*@platform.example.com namespaces="tfgate" {_pub(keys["carol"])}\n'
        f"bob@example.com {_pub(keys['bob'])}\n"
    )
    (work / "tfgate.yaml").write_text(RULE.format(n=1))
    (work / "two.yaml").write_text(RULE.format(n=2))
    digests = []
    for p in ("plan.json", "plan2.json"):
        res = cli("check", str(work / p), "--format", "json", "-C", str(work), "--no-state-checks")
        assert res.exit_code == 1, res.output
        doc = json.loads(res.stdout)
        digests.append(doc["plan"]["digest"])
    tfstate = json.loads((work / "terraform.tfstate").read_text())
    state = (tfstate["lineage"], tfstate["serial"])
    return World(work, keys, digests[0], digests[1], f"local:{work.resolve()}", state)


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def w(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    monkeypatch.chdir(world.dir)
    return world


def approve(
    w: World, who: str, out: Path, *extra: str, plan: str = "plan.json", signer: str | None = None
) -> Path:
    res = cli(
        "approve", plan, "--signer", signer or f"{who}@example.com", "--key", str(w.keys[who]),
        "--reason", "retire orders-prod (CHG-42)", "--yes", "--output", str(out), *extra,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    approve.last = res  # type: ignore[attr-defined]
    return out


def check(*args: str, plan: str = "plan.json"):
    res = cli("check", plan, "--format", "json", "--no-state-checks", *args)
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def test_blocked_then_allowed_with_a_signed_approval(w: World, tmp_path: Path, _audit_log_env: Path) -> None:
    code, doc = check()
    assert code == 1 and doc["violations"][0]["approved"] is False
    approve(w, "alice", tmp_path / "alice.json")
    res = approve.last  # type: ignore[attr-defined]
    assert "terraform_data.db" in res.stderr and "Approve plan " + w.digest in res.stderr
    assert "verified: alice@example.com may sign" in res.stderr
    stmt = json.loads((tmp_path / "alice.json").read_text())
    assert stmt["plan_digest"] == w.digest and stmt["workspace"] == "default"
    assert stmt["changes"] == [{"address": "terraform_data.db", "class": "delete"}]
    # OpenSSH itself accepts the signature tfgate approve made.
    with open(tmp_path / "alice.json", "rb") as fh:
        ok = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", "allowed_signers", "-I", "alice@example.com", "-n", "tfgate",
             "-s", str(tmp_path / "alice.json.sig")],
            stdin=fh, capture_output=True, text=True,
        )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    code, doc = check("--approvals", str(tmp_path / "alice.json"))
    assert code == 0 and doc["verdict"] == "allow"
    assert doc["violations"][0]["approved"] and doc["violations"][0]["approved_by"] == ["alice@example.com"]
    assert doc["approvals"][0]["counted"] is True
    # The same approval holds for the saved binary plan (same digest) and the full check with state checks.
    res = cli("check", "plan.bin", "--approvals", str(tmp_path / "alice.json"))
    assert res.exit_code == 0, res.output
    # Private keys never appear in output or in the audit log.
    secret = [line for line in w.keys["alice"].read_text().splitlines() if "PRIVATE KEY" not in line]
    log = _audit_log_env.read_text()
    assert '"event":"approve"' in log.replace(" ", "") and "retire orders-prod" in log
    for text in (res.output, log):
        assert not any(line in text for line in secret)


def test_approving_from_a_ci_report_and_by_hand(w: World, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(cli("check", "plan.json", "--format", "json", "--no-state-checks").stdout)
    approve(w, "carol", tmp_path / "carol.json", plan=str(report), signer="carol@platform.example.com")
    # --statement-only, then signed by hand with ssh-keygen (as an engineer with a hardware key would)
    res = cli(
        "approve", str(report), "--signer", "alice@example.com", "--statement-only", "--reason", "ok",
        "--yes", "--output", str(tmp_path / "hand.json"),
    )  # fmt: skip
    assert res.exit_code == 0 and not (tmp_path / "hand.json.sig").exists()
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "tfgate", "-f", str(w.keys["alice"]), str(tmp_path / "hand.json")],
        check=True,
        capture_output=True,
    )
    code, doc = check("-m", "two.yaml", "-a", str(tmp_path / "carol.json"), "-a", str(tmp_path / "hand.json"))
    assert code == 0, doc["approvals"]
    assert sorted(doc["violations"][0]["approved_by"]) == ["alice@example.com", "carol@platform.example.com"]


def _signed(w: World, path: Path, key: str, namespace: str = "tfgate", **kw) -> Path:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    fields = {
        "plan_digest": w.digest,
        "workspace": "default",
        "changes": (ApprovedChange("terraform_data.db", "delete"),),
        "signer": "alice@example.com",
        "issued_at": now - timedelta(hours=5),
        "expires_at": now + timedelta(hours=1),
        "reason": "r",
        "root": w.root,
        "state": w.state,
    }
    fields.update(kw)
    path.write_bytes(Statement(**fields).to_json())
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(w.keys[key]), str(path)],
        check=True,
        capture_output=True,
    )
    return path


@pytest.mark.parametrize(
    "attack",
    ["edited", "unlisted key", "replay on re-plan", "expired", "git namespace", "same signer twice",
     "other workspace", "not an approver"],
)  # fmt: skip
def test_each_wrong_approval_keeps_the_destroy_blocked(w: World, tmp_path: Path, attack: str) -> None:
    args: list[str] = []
    plan = "plan.json"
    expected = attack
    if attack == "edited":
        f = approve(w, "alice", tmp_path / "a.json")
        f.write_text(f.read_text().replace("CHG-42", "CHG-43"))
        expected = "bad signature"
    elif attack == "unlisted key":
        f = _signed(w, tmp_path / "a.json", "mallory")
        expected = "unknown signer"
    elif attack == "replay on re-plan":
        f = approve(w, "alice", tmp_path / "a.json")
        plan = "plan2.json"
        expected = "other plan"
    elif attack == "expired":
        now = datetime.now(timezone.utc)
        f = _signed(w, tmp_path / "a.json", "alice", expires_at=now - timedelta(minutes=1))
    elif attack == "git namespace":
        f = _signed(w, tmp_path / "a.json", "alice", namespace="git")
        expected = "wrong namespace"
    elif attack == "same signer twice":
        approve(w, "alice", tmp_path / "a1.json")
        approve(w, "alice", tmp_path / "a2.json", "--ttl", "2h")
        f = tmp_path
        args = ["-m", "two.yaml"]
    elif attack == "other workspace":
        f = approve(w, "alice", tmp_path / "a.json", "--workspace", "prod")
    elif attack == "not an approver":
        f = _signed(w, tmp_path / "a.json", "bob", signer="bob@example.com")  # approve refuses to write it
        expected = "signer not an approver"
    code, doc = check("--approvals", str(f), *args, plan=plan)
    assert code == 1 and doc["verdict"] == "block"
    db = next(v for v in doc["violations"] if v["address"] == "terraform_data.db")
    assert db["approved"] is False
    reasons = [a["reason"] for a in doc["approvals"] if not a["counted"]]
    assert any(r.startswith(expected + ":") for r in reasons), reasons
    # `approvals verify` explains the same thing and exits 1.
    res = cli("approvals", "verify", str(f), "--plan", plan, *args)
    assert res.exit_code == 1 and expected + ":" in res.stdout and "BLOCKED" in res.stdout


def test_approvals_verify_explains_and_exits_0_when_allowed(w: World, tmp_path: Path) -> None:
    d = tmp_path / "approvals"
    d.mkdir()
    approve(w, "alice", d / "alice.json")
    (d / "junk.json").write_text("{")
    (d / "unsigned.json").write_bytes((d / "alice.json").read_bytes())
    res = cli("approvals", "verify", str(d), "--plan", "plan.json")
    assert res.exit_code == 0, res.output
    assert "COUNTS" in res.stdout and "unreadable:" in res.stdout and "unsigned:" in res.stdout
    assert "approved by alice@example.com" in res.stdout
    res = cli("approvals", "verify", str(d), "--plan", "plan.json", "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["allowed"] is True and [a["counted"] for a in doc["approvals"]] == [True, False, False]
    # The same directory on the re-plan: nothing counts.
    res = cli("approvals", "verify", str(d), "--plan", "plan2.json", "--format", "json")
    assert res.exit_code == 1 and json.loads(res.stdout)["allowed"] is False


def test_approve_refusals(w: World, tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    base = [
        "approve",
        "plan.json",
        "--signer",
        "alice@example.com",
        "--key",
        str(w.keys["alice"]),
        "--output",
        str(out),
    ]
    res = cli(*base, "--reason", "r")  # no terminal to confirm on, no --yes
    assert res.exit_code == 2 and "--yes" in res.stderr and not out.exists()
    res = cli(*base, "--yes")  # no reason and no terminal to ask on
    assert res.exit_code == 2 and "reason" in res.stderr and not out.exists()
    res = cli(*base, "--yes", "--reason", "r", "--ttl", "soon")
    assert res.exit_code == 2 and "--ttl" in res.stderr
    res = cli(*base, "--yes", "--reason", "r", "--only", "terraform_data.nothing*")
    assert res.exit_code == 2 and "--only" in res.stderr
    (tmp_path / "empty").mkdir()
    res = cli("check", "plan.json", "--approvals", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "approvals path not found" in res.stderr
    no_signers = tmp_path / "m.yaml"
    no_signers.write_text(RULE.format(n=1).replace("approvals: {allowed_signers: allowed_signers}\n", ""))
    res = cli("check", "plan.json", "-m", str(no_signers), "--approvals", str(tmp_path / "empty"))
    assert res.exit_code == 2 and "allowed_signers" in res.stderr


def test_signing_through_ssh_agent_with_a_public_key(
    w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("needs ssh-agent")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(w.keys["carol"])], check=True, capture_output=True)
        pub = tmp_path / "carol.pub"  # only the public half is given to tfgate
        shutil.copy(f"{w.keys['carol']}.pub", pub)
        pub_only = cli(
            "approve", "plan.json", "--signer", "ops@platform.example.com", "--key", str(pub), "--reason", "r",
            "--yes", "--output", str(tmp_path / "agent.json"),
        )  # fmt: skip
        assert pub_only.exit_code == 0, pub_only.output
        code, doc = check("--approvals", str(tmp_path / "agent.json"))
        assert code == 0 and doc["violations"][0]["approved_by"] == ["ops@platform.example.com"]
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_interactive_confirmation_can_decline(w: World, tmp_path: Path) -> None:
    from tfgate.approvals.commands import ApproveOptions, run_approve
    from tfgate.approvals.target import PlanOptions

    shown: list[str] = []
    opts = ApproveOptions(
        plan=PlanOptions("plan.json"), signer="alice@example.com", key=w.keys["alice"],
        output=tmp_path / "a.json",
    )  # fmt: skip
    code = run_approve(
        opts, echo=shown.append, confirm=lambda _: False, prompt_reason=lambda: "asked", interactive=True
    )
    assert code == 1 and not (tmp_path / "a.json").exists()
    assert "reason:     asked" in shown[0] and "terraform_data.db" in shown[0]
    code = run_approve(
        opts, echo=shown.append, confirm=lambda _: True, prompt_reason=lambda: "asked", interactive=True
    )
    assert code == 0 and json.loads((tmp_path / "a.json").read_text())["reason"] == "asked"


def _report(tmp_path: Path, name: str, edit, *args: str) -> Path:
    """The JSON report `tfgate check` publishes, edited by EDIT (the report is unsigned: anyone can)."""
    doc = json.loads(cli("check", "plan.json", "--format", "json", "--no-state-checks", *args).stdout)
    edit(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _unprotect(doc: dict) -> None:
    doc["violations"] = []
    for c in doc["changes"]:
        c["protected_by"] = []


def test_a_tampered_report_cannot_lower_what_approvals_verify_requires(w: World, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    alice = approve(w, "alice", tmp_path / "alice.json")

    def zero(doc: dict) -> None:
        doc["violations"][0]["approvals_required"] = 0

    # Edits that leave the report contradicting itself are input errors.
    for name, edit, says in (
        ("zero.json", zero, "approvals_required"),
        ("dropped.json", lambda doc: doc.update(violations=[]), "does not hold together"),
    ):
        res = cli("approvals", "verify", str(empty), "--plan", str(_report(tmp_path, name, edit)))
        assert res.exit_code == 2, res.output
        assert name in res.stderr and says in res.stderr and len(res.stderr.splitlines()) == 1
    # A consistent edit (nothing protected any more) is re-derived from the manifest: still blocked.
    unprotected = _report(tmp_path, "unprotected.json", _unprotect)
    res = cli("approvals", "verify", str(empty), "--plan", str(unprotected))
    assert res.exit_code == 1 and "terraform_data.db [rule prod-db, needs 1]: BLOCKED" in res.stdout
    # Lowering 2 to 1 in a report made with two.yaml: the manifest still asks for two approvals.
    lowered = _report(
        tmp_path,
        "lowered.json",
        lambda doc: doc["violations"][0].update(approvals_required=1),
        "-m",
        "two.yaml",
    )
    res = cli("approvals", "verify", str(alice), "--plan", str(lowered), "-m", "two.yaml")
    assert res.exit_code == 1 and "needs 2]: BLOCKED (1 of 2: alice@example.com)" in res.stdout, res.output
    # The honest report with the right approval still passes.
    honest = _report(tmp_path, "honest.json", lambda doc: None)
    assert cli("approvals", "verify", str(alice), "--plan", str(honest)).exit_code == 0
    # A rule on the provider cannot be re-derived from a report, which does not carry it.
    by_provider = tmp_path / "provider.yaml"
    by_provider.write_text(RULE.format(n=1).replace("address: ['terraform_data.db']", "provider: ['*']"))
    by_provider.with_name("allowed_signers").write_text((w.dir / "allowed_signers").read_text())
    res = cli("approvals", "verify", str(alice), "--plan", str(honest), "-m", str(by_provider))
    assert res.exit_code == 0 and "terraform_data.db [rule prod-db, needs 1]: approved" in res.stdout, (
        res.output
    )
    # A report without the provider (hand-made, or from an older tfgate) cannot be judged by such a rule.
    no_provider = _report(
        tmp_path, "no-provider.json", lambda doc: [c.pop("provider") for c in doc["changes"]]
    )
    res = cli("approvals", "verify", str(alice), "--plan", str(no_provider), "-m", str(by_provider))
    assert res.exit_code == 2 and "provider" in res.stderr


def test_approving_from_a_tampered_report_shows_what_the_manifest_protects(w: World, tmp_path: Path) -> None:
    report = _report(tmp_path, "unprotected.json", _unprotect)
    approve(w, "alice", tmp_path / "a.json", "-m", "two.yaml", plan=str(report))
    shown = approve.last.stderr  # type: ignore[attr-defined]
    assert "terraform_data.db  [protected: prod-db, needs 2]" in shown
    stmt = json.loads((tmp_path / "a.json").read_text())
    assert stmt["plan_digest"] == w.digest
    assert {"address": "terraform_data.db", "class": "delete"} in stmt["changes"]


def test_reports_show_how_far_a_blocked_change_is_from_approved(w: World, tmp_path: Path) -> None:
    """One of two required approvals: every report says 1 of 2 and whose, not "none valid"."""
    f = approve(w, "alice", tmp_path / "a.json", "-m", "two.yaml")
    for fmt, expected in (
        ("markdown", "1 of 2 (alice@example.com)"),
        ("html", "1 of 2 (alice@example.com)"),
        ("text", "needs 2 signed approval(s), 1 of 2 (alice@example.com)"),
    ):
        res = cli("check", "plan.json", "--format", fmt, "--no-state-checks", "-m", "two.yaml", "-a", str(f))
        assert res.exit_code == 1, res.output
        assert expected in res.stdout, (fmt, res.stdout)
        assert "none valid" not in res.stdout


def test_an_approved_protected_destroy_is_applied_and_nothing_else(
    w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tfgate apply PLAN --approvals`: blocked (state untouched) without the approval, applied with it,
    and what is applied is exactly the saved plan."""
    work = tmp_path / "apply"
    shutil.copytree(w.dir, work, symlinks=True)  # the module's world stays as it is
    monkeypatch.chdir(work)

    def resources() -> list[str]:
        return sorted(r["name"] for r in json.loads((work / "terraform.tfstate").read_text())["resources"])

    before = resources()
    assert "db" in before
    res = cli("apply", "plan.bin")
    assert res.exit_code == 1 and resources() == before
    statement = approve(w, "alice", tmp_path / "a.json")
    res = cli("apply", "plan.bin", "--approvals", str(statement))
    assert res.exit_code == 0, res.output
    planned = json.loads((work / "plan.json").read_text())["resource_changes"]
    destroyed = {rc["name"] for rc in planned if rc["change"]["actions"] == ["delete"]}
    assert destroyed == {"db"}
    assert resources() == sorted(set(before) - destroyed)


def test_html_shows_what_an_approved_destroy_removes(w: World, tmp_path: Path) -> None:
    statement = approve(w, "alice", tmp_path / "a.json")
    res = cli("check", "plan.json", "--format", "html", "--no-state-checks", "-a", str(statement))
    assert res.exit_code == 0, res.output
    approved = res.stdout.split("<h2>Approved protected changes</h2>", 1)[1].split("</table>", 1)[0]
    assert "terraform_data.db" in approved and '<dl class="prior"><dt>id</dt>' in approved


def test_a_signer_counts_only_under_the_rules_they_approve_for(w: World, tmp_path: Path) -> None:
    """Two rules protect the same address; alice may approve only the first. The second stays blocked
    and no report says alice counted toward it."""
    (w.dir / "tworules.yaml").write_text(
        "version: 1\nprotect:\n"
        "  - name: owners\n    match: {address: ['terraform_data.db']}\n    approvers: ['alice@example.com']\n"
        "  - name: platform\n    match: {address: ['terraform_data.db']}\n"
        "    approvers: ['*@platform.example.com']\n"
        "approvals: {allowed_signers: allowed_signers}\n"
    )
    statement = approve(w, "alice", tmp_path / "a.json", "-m", "tworules.yaml")
    res = cli("check", "plan.json", "--format", "markdown", "--no-state-checks", "-m", "tworules.yaml",
              "-a", str(statement))  # fmt: skip
    assert res.exit_code == 1, res.output
    row = next(line for line in res.stdout.splitlines() if "| platform |" in line)
    assert "1 needed, none valid" in row and "alice" not in row


def test_approve_refuses_when_the_approval_could_never_count(w: World, tmp_path: Path) -> None:
    """Exit 2, nothing written, and the message says what to fix."""
    out = tmp_path / "x.json"

    def attempt(*args: str, who: str = "alice", signer: str = "alice@example.com"):
        res = cli(
            "approve", "plan.json", "--signer", signer, "--key", str(w.keys[who]), "--reason", "r", "--yes",
            "--output", str(out), *args,
        )  # fmt: skip
        assert res.exit_code == 2, res.output
        assert not out.exists() and not Path(f"{out}.sig").exists()
        return res.stderr

    bare = tmp_path / "bare.yaml"
    bare.write_text(RULE.format(n=1).replace("approvals: {allowed_signers: allowed_signers}\n", ""))
    err = attempt("-m", str(bare))
    assert "no usable `approvals:` section" in err and "approvals: {allowed_signers: allowed_signers}" in err
    gone = tmp_path / "gone.yaml"
    gone.write_text(RULE.format(n=1).replace("allowed_signers}", f"{tmp_path / 'nope'}}}"))
    assert "allowed signers file not found" in attempt("-m", str(gone))
    # mallory's key is listed nowhere; alice's key is not listed for another principal
    err = attempt(who="mallory")
    assert (
        "this approval could not count (unknown signer" in err
        and 'alice@example.com namespaces="tfgate' in err
    )
    err = attempt(signer="nobody@example.com")
    assert "nobody@example.com is not listed in" in err and "add a line nobody@example.com" in err
    # bob is listed, but approves for no rule protecting terraform_data.db
    err = attempt(who="bob", signer="bob@example.com")
    assert "not an approver of any rule protecting these changes (prod-db: alice@example.com" in err


def test_approve_checks_the_key_after_signing_when_its_public_half_is_unknown(
    w: World, tmp_path: Path
) -> None:
    """No KEY.pub beside the private key: the signature is checked after signing and undone if it cannot count."""
    lone = tmp_path / "lone"
    shutil.copy(w.keys["mallory"], lone)
    lone.chmod(0o600)
    out = tmp_path / "x.json"
    res = cli(
        "approve", "plan.json", "--signer", "alice@example.com", "--key", str(lone), "--reason", "r", "--yes",
        "--output", str(out),
    )  # fmt: skip
    assert res.exit_code == 2 and "could not count (unknown signer" in res.stderr
    assert not out.exists() and not Path(f"{out}.sig").exists()


def test_approving_from_a_report_uses_its_binding_and_refuses_one_without(w: World, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(cli("check", "plan.json", "--format", "json", "--no-state-checks").stdout)
    doc = json.loads(report.read_text())
    assert doc["binding"] == {
        "root": w.root, "lineage": w.state[0], "serial": w.state[1], "source": "state", "problem": None,
    }  # fmt: skip
    # A report edited to name another state: the statement says so, and `check` (reading the real state) refuses it.
    edited = dict(doc, binding=dict(doc["binding"], lineage="0000-forged"))
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    approve(w, "alice", tmp_path / "a.json", plan=str(tmp_path / "edited.json"))
    code, out = check("-a", str(tmp_path / "a.json"))
    assert code == 1 and out["approvals"][0]["reason"].startswith(
        "other state: approves state lineage 0000-forged"
    )
    del doc["binding"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    res = cli(
        "approve", str(tmp_path / "old.json"), "--signer", "alice@example.com", "--key", str(w.keys["alice"]),
        "--reason", "r", "--yes", "--output", str(tmp_path / "b.json"),
    )  # fmt: skip
    assert res.exit_code == 2 and "names no root and prior state (`binding`)" in res.stderr
    assert not (tmp_path / "b.json").exists()
