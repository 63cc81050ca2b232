"""The approval judge: statements signed with real `ssh-keygen`, judged against model violations."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tfgate.approvals.judge import judge
from tfgate.approvals.statement import ApprovedChange, Statement, violation_class
from tfgate.errors import TfgateError
from tfgate.model import ChangeClass, StateBinding, Violation
from tfgate.policy.evaluate import apply_counts
from tfgate.policy.manifest import Manifest, Rule

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH ssh-keygen")

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
NOW = datetime.now(timezone.utc).replace(microsecond=0)
PEOPLE = ("alice", "carol", "bob", "mallory")
LINEAGE = "5ef7fc1e-9aed-41cc-ca55-0556925b9695"
BINDING = StateBinding("s3://tfstate-prod/orders.tfstate", LINEAGE, 12, "plan")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("approval-keys")
    out = {}
    for who in PEOPLE:
        path = d / who
        kind = ["-t", "ecdsa", "-b", "256"] if who == "carol" else ["-t", "ed25519"]
        subprocess.run(
            ["ssh-keygen", "-q", *kind, "-N", "", "-f", str(path)], check=True, capture_output=True
        )
        out[who] = path
    return out


@pytest.fixture
def signers(keys, tmp_path: Path) -> Path:
    """alice and carol are platform approvers, bob is a listed signer but no approver; mallory is unlisted."""
    path = tmp_path / "allowed_signers"

    def pub(who: str) -> str:
        return " ".join(Path(f"{keys[who]}.pub").read_text().split()[:2])

    path.write_text(
        f'alice@example.com namespaces="tfgate,git" {pub("alice")}\n'
        f"carol@platform.example.com {pub('carol')}\n"
        f"bob@example.com {pub('bob')}\n"
    )
    return path


def manifest(signers: Path | None, approvals: int = 1) -> Manifest:
    rule = Rule(
        name="prod-db",
        actions=("delete", "replace"),
        approvals=approvals,
        approvers=("alice@example.com", "*@platform.example.com"),
    )
    return Manifest(path=Path("tfgate.yaml"), rules=(rule,), allowed_signers=signers)


def violation(address: str = "aws_db_instance.main", cls: ChangeClass = ChangeClass.DELETE, n: int = 1):
    return Violation(address=address, rule="prod-db", change_class=cls, reason="r", approvals_required=n)


def statement(signer: str = "alice@example.com", **kw) -> Statement:
    base = {
        "plan_digest": DIGEST,
        "workspace": "prod",
        "changes": (ApprovedChange("aws_db_instance.main", "delete"),),
        "signer": signer,
        "issued_at": NOW - timedelta(minutes=1),
        "expires_at": NOW + timedelta(hours=4),
        "reason": "retire the old database",
        "root": BINDING.root,
        "state": (LINEAGE, 12),
    }
    base.update(kw)
    return Statement(**base)


def write(
    path: Path, stmt: Statement, key: Path | None, namespace: str = "tfgate", data: bytes | None = None
) -> Path:
    path.write_bytes(data if data is not None else stmt.to_json())
    if key is not None:
        subprocess.run(
            ["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(key), str(path)],
            check=True,
            capture_output=True,
        )
    return path


def run(
    paths, violations, signers: Path | None, *, approvals: int = 1, workspace: str = "prod", binding=BINDING
):
    """What the judge counted, applied as evaluation applies it: (judged violations, outcomes)."""
    counted = judge(
        [Path(p) for p in paths],
        tuple(violations),
        manifest(signers, approvals),
        digest=DIGEST,
        workspace=workspace,
        now=NOW,
        binding=binding,
    )
    return apply_counts(tuple(violations), counted), counted.outcomes


def test_one_valid_approval_approves(keys, signers, tmp_path: Path) -> None:
    f = write(tmp_path / "a.json", statement(), keys["alice"])
    judged, outcomes = run([f], [violation()], signers)
    assert judged[0].approved and judged[0].approved_by == ("alice@example.com",)
    assert [(o.counted, o.signer, o.addresses) for o in outcomes] == [
        (True, "alice@example.com", ("aws_db_instance.main",))
    ]
    assert outcomes[0].reason.startswith("counted for aws_db_instance.main")


def test_statement_round_trip_and_schema() -> None:
    s = statement(changes=(ApprovedChange("a.b", "delete", "0011"), ApprovedChange("c.d", "safety_net")))
    doc = json.loads(s.to_json())
    assert doc["root"] == BINDING.root and doc["state"] == {"lineage": LINEAGE, "serial": 12}
    assert json.loads(statement(state=None).to_json())["state"] is None
    assert doc["tfgate_approval"] == 2 and doc["changes"][0] == {
        "address": "a.b",
        "class": "delete",
        "deposed": "0011",
    }
    assert doc["issued_at"].endswith("Z") and Statement.parse(s.to_json()) == s


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("edited", "bad signature"),
        ("unlisted key", "unknown signer"),
        ("claims another principal", "unknown signer"),
        ("git namespace", "wrong namespace"),
        ("other plan", "other plan"),
        ("other workspace", "other workspace"),
        ("expired", "expired"),
        ("issued in the future", "not yet valid"),
        ("not an approver", "signer not an approver"),
        ("other address", "address not covered"),
        ("other class", "address not covered"),
        ("unsigned", "unsigned"),
        ("not json", "unreadable"),
        ("unknown field", "unreadable"),
        ("duplicate key", "unreadable"),
        ("garbage signature", "bad signature"),
        ("other root", "other root"),
        ("other lineage", "other state"),
        ("older serial", "other state"),
        ("no state approved", "other state"),
        ("format version 1", "unreadable"),
        ("no state field", "unreadable"),
        ("bad state", "unreadable"),
        ("too long-lived", "too long-lived"),
    ],
)
def test_each_attack_is_refused_with_its_reason(
    keys, signers, tmp_path: Path, attack: str, reason: str
) -> None:
    f = tmp_path / "s.json"
    good = statement()
    if attack == "edited":
        write(f, good, keys["alice"])
        f.write_bytes(f.read_bytes().replace(b"retire the old database", b"retire the new database"))
    elif attack == "unlisted key":
        write(f, good, keys["mallory"])
    elif attack == "claims another principal":
        write(f, statement(signer="carol@platform.example.com"), keys["alice"])
    elif attack == "git namespace":
        write(f, good, keys["alice"], namespace="git")
    elif attack == "other plan":
        write(f, statement(plan_digest=OTHER_DIGEST), keys["alice"])
    elif attack == "other workspace":
        write(f, statement(workspace="staging"), keys["alice"])
    elif attack == "expired":
        write(
            f,
            statement(issued_at=NOW - timedelta(hours=5), expires_at=NOW - timedelta(hours=1)),
            keys["alice"],
        )
    elif attack == "issued in the future":
        write(
            f,
            statement(issued_at=NOW + timedelta(hours=1), expires_at=NOW + timedelta(hours=5)),
            keys["alice"],
        )
    elif attack == "not an approver":
        write(f, statement(signer="bob@example.com"), keys["bob"])
    elif attack == "other address":
        write(f, statement(changes=(ApprovedChange("aws_db_instance.other", "delete"),)), keys["alice"])
    elif attack == "other class":
        write(f, statement(changes=(ApprovedChange("aws_db_instance.main", "forget"),)), keys["alice"])
    elif attack == "unsigned":
        write(f, good, None)
    elif attack == "not json":
        write(f, good, keys["alice"], data=b"{not json")
    elif attack == "unknown field":
        doc = json.loads(good.to_json())
        doc["also_approves"] = "*"
        write(f, good, keys["alice"], data=json.dumps(doc).encode())
    elif attack == "duplicate key":
        text = (
            good.to_json().decode().replace('"workspace": "prod",', '"workspace": "prod", "workspace": "x",')
        )
        write(f, good, keys["alice"], data=text.encode())
    elif attack == "garbage signature":
        write(f, good, None)
        (tmp_path / "s.json.sig").write_text(
            "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"
        )
    elif attack == "too long-lived":
        write(f, statement(expires_at=NOW + timedelta(hours=30)), keys["alice"])
    elif attack == "other root":
        write(f, statement(root="s3://tfstate-staging/orders.tfstate"), keys["alice"])
    elif attack == "other lineage":
        write(f, statement(state=("0000-other", 12)), keys["alice"])
    elif attack == "older serial":
        write(f, statement(state=(LINEAGE, 11)), keys["alice"])
    elif attack == "no state approved":
        write(f, statement(state=None), keys["alice"])
    elif attack in ("format version 1", "no state field", "bad state"):
        doc = json.loads(good.to_json())
        if attack == "format version 1":
            doc["tfgate_approval"] = 1
            del doc["root"], doc["state"]
        elif attack == "no state field":
            del doc["state"]
        else:
            doc["state"] = {"lineage": LINEAGE, "serial": "12"}
        write(f, good, keys["alice"], data=json.dumps(doc).encode())
    judged, outcomes = run([f], [violation()], signers)
    assert not judged[0].approved and judged[0].approved_by == ()
    assert len(outcomes) == 1 and not outcomes[0].counted
    assert outcomes[0].reason.startswith(reason + ":"), outcomes[0].reason
    if attack == "format version 1":
        assert (
            "format version 1 (tfgate_approval: 1) is refused: it is bound to no root" in outcomes[0].reason
        )
    if attack == "older serial":
        assert "the state changed since it was approved" in outcomes[0].reason
    if attack == "other lineage":
        assert "another lineage" in outcomes[0].reason


def test_an_unknown_binding_refuses_every_statement_with_its_reason(keys, signers, tmp_path: Path) -> None:
    f = write(tmp_path / "a.json", statement(), keys["alice"])
    unknown = StateBinding("gcs://b/p", None, None, "state", "tfgate cannot read the gcs backend's state")
    judged, outcomes = run([f], [violation()], signers, binding=unknown)
    assert not judged[0].approved
    assert outcomes[0].reason == "state unknown: tfgate cannot read the gcs backend's state"


def test_two_approvals_need_two_distinct_principals(keys, signers, tmp_path: Path) -> None:
    a1 = write(tmp_path / "a1.json", statement(), keys["alice"])
    a2 = write(tmp_path / "a2.json", statement(reason="second time"), keys["alice"])
    judged, outcomes = run([a1, a2], [violation(n=2)], signers, approvals=2)
    assert not judged[0].approved
    by_source = {Path(o.source).name: o for o in outcomes}
    assert by_source["a1.json"].counted
    assert not by_source["a2.json"].counted and by_source["a2.json"].reason.startswith("same signer twice:")
    c = write(tmp_path / "c.json", statement(signer="carol@platform.example.com"), keys["carol"])
    judged, outcomes = run([a1, a2, c], [violation(n=2)], signers, approvals=2)
    assert judged[0].approved and set(judged[0].approved_by) == {
        "alice@example.com",
        "carol@platform.example.com",
    }
    assert [o.counted for o in outcomes] == [True, False, True]


def test_one_key_listed_under_two_principals_counts_once(keys, tmp_path: Path) -> None:
    pub = " ".join(Path(f"{keys['alice']}.pub").read_text().split()[:2])
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"alice@example.com,x@platform.example.com {pub}\n")
    a = write(tmp_path / "a.json", statement(), keys["alice"])
    x = write(tmp_path / "x.json", statement(signer="x@platform.example.com"), keys["alice"])
    judged, outcomes = run([a, x], [violation(n=2)], signers, approvals=2)
    assert not judged[0].approved
    assert outcomes[1].reason.startswith("same signer twice:")


def test_directory_partial_coverage_and_unsigned_files(keys, signers, tmp_path: Path) -> None:
    d = tmp_path / "approvals"
    d.mkdir()
    changes = (
        ApprovedChange("aws_db_instance.main", "delete"),
        ApprovedChange("aws_s3_bucket.logs", "delete"),
    )
    write(d / "alice.json", statement(changes=changes), keys["alice"])
    write(d / "stray.json", statement(), None)
    (d / "README.txt").write_text("not a statement")
    v_db, v_other = violation(), violation("aws_s3_bucket.other")
    judged, outcomes = run([d], [v_db, v_other], signers)
    assert [j.approved for j in judged] == [True, False]
    assert {Path(o.source).name: o.counted for o in outcomes} == {"alice.json": True, "stray.json": False}
    assert outcomes[1].reason.startswith("unsigned:")


def test_dangling_symlink_and_directory_in_approvals_dir_are_unreadable(
    keys, signers, tmp_path: Path
) -> None:
    d = tmp_path / "approvals"
    d.mkdir()
    write(d / "alice.json", statement(), keys["alice"])
    (d / "dangling.json").symlink_to(tmp_path / "gone.json")
    (d / "dir.json").mkdir()
    judged, outcomes = run([d], [violation()], signers)
    assert judged[0].approved
    by_name = {Path(o.source).name: o for o in outcomes}
    assert set(by_name) == {"alice.json", "dangling.json", "dir.json"}
    assert by_name["alice.json"].counted
    for name in ("dangling.json", "dir.json"):
        assert not by_name[name].counted and by_name[name].reason.startswith("unreadable:")
    assert "No such file" in by_name["dangling.json"].reason
    assert "directory" in by_name["dir.json"].reason


def test_deposed_and_safety_net_classes_must_match(keys, signers, tmp_path: Path) -> None:
    v_dep = Violation("aws_instance.x", "prod-db", ChangeClass.DELETE, "r", deposed="00aa")
    v_net = Violation("aws_db_instance.main", "prod-db", ChangeClass.UPDATE, "r")
    assert violation_class(v_net) == "safety_net"
    plain = write(
        tmp_path / "plain.json",
        statement(
            changes=(
                ApprovedChange("aws_instance.x", "delete"),
                ApprovedChange("aws_db_instance.main", "delete"),
            )
        ),
        keys["alice"],
    )
    judged, _ = run([plain], [v_dep, v_net], signers)
    assert [j.approved for j in judged] == [False, False]
    exact = write(
        tmp_path / "exact.json",
        statement(
            changes=(
                ApprovedChange("aws_instance.x", "delete", "00aa"),
                ApprovedChange("aws_db_instance.main", "safety_net"),
            )
        ),
        keys["alice"],
    )
    judged, _ = run([exact], [v_dep, v_net], signers)
    assert [j.approved for j in judged] == [True, True]


def test_configuration_errors_exit_2(keys, signers, tmp_path: Path) -> None:
    f = write(tmp_path / "a.json", statement(), keys["alice"])
    with pytest.raises(TfgateError, match="allowed_signers"):
        run([f], [violation()], None)
    with pytest.raises(TfgateError, match="not found"):
        run([f], [violation()], tmp_path / "missing_signers")
    with pytest.raises(TfgateError, match="approvals path not found"):
        run([tmp_path / "nope.json"], [violation()], signers)
    bad = tmp_path / "bad_signers"
    bad.write_text("alice@example.com frobnicate ssh-ed25519 AAAA\n")
    with pytest.raises(TfgateError, match="bad_signers:1"):
        run([f], [violation()], bad)


def test_signer_validity_window_is_checked(keys, tmp_path: Path) -> None:
    pub = " ".join(Path(f"{keys['alice']}.pub").read_text().split()[:2])
    signers = tmp_path / "allowed_signers"
    past = (NOW - timedelta(days=1)).strftime("%Y%m%d%H%M%SZ")
    signers.write_text(f'alice@example.com valid-before="{past}" {pub}\n')
    f = write(tmp_path / "a.json", statement(), keys["alice"])
    judged, outcomes = run([f], [violation()], signers)
    assert not judged[0].approved and outcomes[0].reason.startswith("outside the signer's validity:")


def _pub(keys, who: str) -> str:
    return " ".join(Path(f"{keys[who]}.pub").read_text().split()[:2])


def _two_rule_manifest(signers: Path) -> Manifest:
    rule = Rule(
        name="prod-db", actions=("delete",), approvals=2, approvers=("*@example.com", "*@corp.example.com")
    )
    return Manifest(path=Path("tfgate.yaml"), rules=(rule,), allowed_signers=signers)


def _judge_two(paths, signers: Path):
    counted = judge(
        [Path(p) for p in paths], (violation(n=2),), _two_rule_manifest(signers), digest=DIGEST,
        workspace="prod", now=NOW, binding=BINDING,
    )  # fmt: skip
    return apply_counts((violation(n=2),), counted), counted.outcomes


def test_one_human_with_two_keys_under_two_names_counts_once(keys, tmp_path: Path) -> None:
    """The issue's attack: two keys listed under `alice@example.com,alice@corp.example.com`, a 2-approval
    rule for both domains, alice signs once as each name with each key."""
    signers = tmp_path / "allowed_signers"
    signers.write_text(
        f"alice@example.com,alice@corp.example.com {_pub(keys, 'alice')}\n"
        f"alice@example.com,alice@corp.example.com {_pub(keys, 'mallory')}\n"
    )
    a = write(tmp_path / "a.json", statement(), keys["alice"])
    b = write(tmp_path / "b.json", statement(signer="alice@corp.example.com"), keys["mallory"])
    judged, outcomes = _judge_two([a, b], signers)
    assert not judged[0].approved and judged[0].counted_by == ("alice@example.com",)
    assert outcomes[1].reason.startswith("same signer twice: alice@corp.example.com")
    assert "same person as alice@example.com" in outcomes[1].reason and "line(s) 1, 2" in outcomes[1].reason


@pytest.mark.parametrize(
    ("lines", "second_name", "second_key"),
    [
        # one key, two names on one line
        (["alice@example.com,alice@corp.example.com {alice}"], "alice@corp.example.com", "alice"),
        # two keys, lines sharing one principal
        (["alice@example.com {alice}", "alice@corp.example.com,alice@example.com {mallory}"],
         "alice@corp.example.com", "mallory"),
        # the same key on two lines with different names
        (["alice@example.com {alice}", "alice@corp.example.com {alice}"], "alice@corp.example.com", "alice"),
        # a wildcard line can sign as the other line's principal: one person (fail closed)
        (["alice@example.com,alice@corp.example.com {alice}", "*@corp.example.com {mallory}"],
         "x@corp.example.com", "mallory"),
        # transitive: lines 1 and 3 share nothing directly, both share a principal with line 2
        (["alice@example.com {alice}", "alice@example.com,a@corp.example.com {carol}",
          "a@corp.example.com {mallory}"], "a@corp.example.com", "mallory"),
    ],
)  # fmt: skip
def test_lines_sharing_a_principal_or_a_key_are_one_approver(
    keys, tmp_path: Path, lines, second_name, second_key
) -> None:
    signers = tmp_path / "allowed_signers"
    pubs = {w: _pub(keys, w) for w in PEOPLE}
    signers.write_text("".join(line.format(**pubs) + "\n" for line in lines))
    a = write(tmp_path / "a.json", statement(), keys["alice"])
    b = write(tmp_path / "b.json", statement(signer=second_name), keys[second_key])
    judged, outcomes = _judge_two([a, b], signers)
    assert not judged[0].approved
    assert [o.counted for o in outcomes] == [True, False] and "same person" in outcomes[1].reason


def test_two_people_still_count_twice(keys, tmp_path: Path) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text(
        f"alice@example.com {_pub(keys, 'alice')}\ncarol@corp.example.com {_pub(keys, 'carol')}\n"
    )
    a = write(tmp_path / "a.json", statement(), keys["alice"])
    c = write(tmp_path / "c.json", statement(signer="carol@corp.example.com"), keys["carol"])
    judged, _ = _judge_two([a, c], signers)
    assert judged[0].approved and judged[0].approved_by == ("alice@example.com", "carol@corp.example.com")


def test_max_ttl_from_the_manifest(keys, signers, tmp_path: Path) -> None:
    from tfgate.errors import ManifestError
    from tfgate.policy.manifest import parse_manifest

    m = parse_manifest(b"version: 1\napprovals: {allowed_signers: s, max_ttl: 2h}\n", tmp_path / "m.yaml")
    assert m.max_ttl == timedelta(hours=2)
    for bad in (b"0h", b"soon"):
        with pytest.raises(ManifestError, match="max_ttl"):
            parse_manifest(b"version: 1\napprovals: {max_ttl: " + bad + b"}\n", tmp_path / "m.yaml")
    f = write(tmp_path / "a.json", statement(), keys["alice"])  # valid 4 h 1 min
    counted = judge(
        [f], (violation(),), dataclasses.replace(manifest(signers), max_ttl=timedelta(hours=2)), digest=DIGEST,
        workspace="prod", now=NOW, binding=BINDING,
    )  # fmt: skip
    assert counted.outcomes[0].reason.startswith("too long-lived: valid for 4:01:00")
    assert "at most 2:00:00 (approvals: {max_ttl})" in counted.outcomes[0].reason


def test_a_removed_rule_keeps_the_approvers_the_ledger_recorded(keys, signers, tmp_path: Path) -> None:
    """protection_removed: the manifest no longer has the rule, so its approvers come from the ledger entry.
    A signer who was never an approver of it does not approve the destroy by removing the rule first."""
    import dataclasses

    removed = dataclasses.replace(violation(), rule="gone-db", approvers=("carol@platform.example.com",))
    by_bob = write(tmp_path / "bob.json", statement("bob@example.com"), keys["bob"])
    by_carol = write(tmp_path / "carol.json", statement("carol@platform.example.com"), keys["carol"])
    [judged], outcomes = run([by_bob], [removed], signers)
    assert not judged.approved and outcomes[0].reason.startswith("signer not an approver"), outcomes[0].reason
    [judged], _ = run([by_carol], [removed], signers)
    assert judged.approved and judged.approved_by == ("carol@platform.example.com",)
    # an entry recorded before approvers were (None): any listed signer, as the rule's approvers were unknown
    [judged], _ = run([by_bob], [dataclasses.replace(removed, approvers=None)], signers)
    assert judged.approved
