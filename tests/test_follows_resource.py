"""Protection follows the resource, not its address (issue 12), with real Terraform (embedded 1.15) in all
three plan forms: the saved plan, `terraform show -json` and the `plan -json` stream."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfgate.errors import PlanError
from tfgate.model import Verdict
from tfgate.pipeline import CheckOptions, run_check
from tfgate.plan.loader import load_plan

from .conftest import TF

FORMS = ("plan.bin", "plan.json", "stream.jsonl")
DB = 'resource "terraform_data" "db" {\n  input = "x"\n}\n'
WEB = 'resource "terraform_data" "web" {\n  input = "y"\n}\n'
MOD = 'resource "terraform_data" "ledger" {\n  input = "x"\n}\n'


def manifest(*rules: str) -> str:
    return "version: 1\nprotect:\n" + "".join(rules)


def rule(name: str, match: str, extra: str = "") -> str:
    return f"  - name: {name}\n    match: {match}\n{extra}"


def save_forms(tf: TF, *plan_args: str) -> None:
    """plan.bin (saved), plan.json (show -json of it) and stream.jsonl (plan -json) of the same plan."""
    tf.run("plan", "-out=plan.bin", "-input=false", *plan_args)
    (tf.dir / "plan.json").write_text(tf.run("show", "-json", "plan.bin").stdout)
    (tf.dir / "stream.jsonl").write_text(tf.run("plan", "-json", "-input=false", *plan_args).stdout)


def build(tf: TF, v1: str, v2: str, *plan_args: str, mod: str | None = None) -> TF:
    if mod is not None:
        (tf.dir / "mod").mkdir(exist_ok=True)
        (tf.dir / "mod" / "main.tf").write_text(mod)
    tf.write(v1)
    tf.run("init", "-input=false")
    tf.apply()
    tf.write(v2)
    save_forms(tf, *plan_args)
    return tf


def check(workdir: Path, form: str, text: str | None = None, **kw):
    """The check pipeline in-process (the binary form still runs real `terraform show -json`)."""
    if text is not None:
        (workdir / "tfgate.yaml").write_text(text)
    return run_check(CheckOptions(plan=str(workdir / form), workdir=workdir, **kw))


def blocked(result) -> list[tuple[str, str | None, str, str]]:
    return [(v.address, v.previous_address, v.rule, v.change_class.value) for v in result.blocked_violations]


def codes(result) -> list[str]:
    return [f.code for f in result.findings if f.severity.value != "info"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path):
    """Factory of real-Terraform working directories, one per name, built once per module."""
    made: dict[str, TF] = {}

    def make(name: str, *args, **kw) -> TF:
        if name not in made:
            root = tmp_path_factory.mktemp(name)
            made[name] = build(TF(root, terraform_bin), *args, **kw)
        return made[name]

    return make


# --- 1. a rule matches the change's address or its previous address --------------------------------------

MOVED = {
    "no_move_target": (
        DB + WEB,
        WEB + "moved {\n  from = terraform_data.db\n  to   = terraform_data.gone\n}\n",
        (),
        None,
        rule("db", "{address: terraform_data.db}"),
        ("terraform_data.gone", "terraform_data.db", "db", "delete"),
    ),
    "count_zero": (
        DB,
        'resource "terraform_data" "db" {\n  count = 0\n  input = "x"\n}\n',
        (),
        None,
        rule("db", "{address: terraform_data.db}"),
        ("terraform_data.db[0]", "terraform_data.db", "db", "delete"),
    ),
    "rename_then_replace": (
        DB,
        'resource "terraform_data" "new" {\n  input = "x"\n}\n'
        "moved {\n  from = terraform_data.db\n  to   = terraform_data.new\n}\n",
        ("-replace=terraform_data.new",),
        None,
        rule("db", "{address: terraform_data.db}"),
        ("terraform_data.new", "terraform_data.db", "db", "replace"),
    ),
    "module_moved_away": (
        'module "payments" {\n  source = "./mod"\n}\n',
        "moved {\n  from = module.payments\n  to   = module.old\n}\n",
        (),
        MOD,
        rule("payments", "{module: ['module.payments*']}"),
        ("module.old.terraform_data.ledger", "module.payments.terraform_data.ledger", "payments", "delete"),
    ),
}


@pytest.mark.parametrize("name", sorted(MOVED))
@pytest.mark.parametrize("form", FORMS)
def test_a_rule_matches_the_previous_address(work, name: str, form: str) -> None:
    v1, v2, args, mod, rules, expect = MOVED[name]
    tf = work(name, v1, v2, *args, mod=mod)
    result = check(tf.dir, form, manifest(rules))
    assert result.verdict is Verdict.BLOCK
    assert blocked(result) == [expect]


def test_reports_show_both_addresses(work) -> None:
    from tfgate.render import render

    v1, v2, args, mod, rules, _ = MOVED["no_move_target"]
    tf = work("no_move_target", v1, v2, *args, mod=mod)
    result = check(tf.dir, "plan.bin", manifest(rules))
    both = "terraform_data.gone (moved from terraform_data.db)"
    assert both in render(result, "text")
    assert both.replace("_", "\\_").replace(".", ".") in render(result, "markdown")
    assert both in render(result, "html")
    doc = json.loads(render(result, "json"))
    assert doc["violations"][0]["previous_address"] == "terraform_data.db"
    import jsonschema

    schema = json.loads((Path(__file__).parent.parent / "tfgate/schemas/result.schema.json").read_text())
    jsonschema.validate(doc, schema)


# --- 3. stream parity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "provider", ["terraform", "terraform.io/builtin/terraform", "builtin/terraform", "*/terraform"]
)
@pytest.mark.parametrize("form", FORMS)
def test_provider_rules_match_short_and_full_names_in_every_form(work, provider: str, form: str) -> None:
    tf = work("deleted", DB + WEB, WEB)
    result = check(tf.dir, form, manifest(rule("p", json.dumps({"provider": provider}))))
    assert blocked(result) == [("terraform_data.db", None, "p", "delete")]


@pytest.mark.parametrize("form", FORMS)
def test_a_provider_rule_for_another_provider_does_not_match(work, form: str) -> None:
    tf = work("deleted", DB + WEB, WEB)
    result = check(tf.dir, form, manifest(rule("p", "{provider: registry.terraform.io/hashicorp/aws}")))
    assert result.verdict is Verdict.ALLOW and not result.violations


@pytest.mark.parametrize("form", FORMS)
def test_protected_create_on_a_missing_state_blocks_in_every_form(
    tmp_path: Path, terraform_bin: Path, form: str
) -> None:
    """The incident: no state here, the plan re-creates the protected database. The stream carries no prior
    state, so the working directory's (absent) one is the evidence."""
    tf = TF(tmp_path, terraform_bin)
    tf.write(DB)
    tf.run("init", "-input=false")
    save_forms(tf)
    result = check(tf.dir, form, manifest(rule("db", "{address: terraform_data.db}")))
    assert result.verdict is Verdict.BLOCK and "missing_state" in codes(result)
    # A human who says the workspace is new lets the first creation through, in every form.
    result = check(tf.dir, form, new_workspace=True)
    assert result.verdict is Verdict.ALLOW and codes(result) == ["new_workspace"]


@pytest.mark.parametrize("form", FORMS)
def test_targeted_plan_is_incomplete_in_every_form(work, form: str) -> None:
    tf = work(
        "targeted",
        DB + WEB,
        DB.replace('"x"', '"x2"') + WEB.replace('"y"', '"y2"'),
        "-target=terraform_data.db",
    )
    result = check(tf.dir, form, manifest(rule("db", "{address: terraform_data.db}")))
    assert result.verdict is Verdict.BLOCK and "plan_incomplete" in codes(result)
    assert result.plan.targeted and not result.plan.complete
    finding = next(f for f in result.findings if f.code == "plan_incomplete")
    assert "-target" in finding.message and "tfgate approve" in finding.message


@pytest.fixture(scope="module")
def tainted_and_deposed(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> TF:
    """A tainted object with a deposed one beside it (create_before_destroy): Terraform replaces the first and
    deletes the second at the same address."""
    tf = TF(tmp_path_factory.mktemp("deposed"), terraform_bin)
    tf.write(
        'resource "terraform_data" "db" {\n  input = "x"\n  lifecycle {\n    create_before_destroy = true\n  }\n}\n'
    )
    tf.run("init", "-input=false")
    tf.apply()
    state = tf.state()
    inst = state["resources"][0]["instances"][0]
    deposed = json.loads(json.dumps(inst))
    deposed["deposed"] = "abcd1234"
    deposed["attributes"]["id"] = "deposed-object-id"
    inst["status"] = "tainted"
    state["resources"][0]["instances"].append(deposed)
    state["serial"] += 1
    (tf.dir / "terraform.tfstate").write_text(json.dumps(state))
    save_forms(tf)
    return tf


@pytest.mark.parametrize("form", FORMS)
def test_a_deposed_object_is_not_a_duplicate_in_any_form(tainted_and_deposed: TF, form: str) -> None:
    result = check(tainted_and_deposed.dir, form, manifest(rule("db", "{address: terraform_data.db}")))
    deposed = "stream-1" if form == "stream.jsonl" else "abcd1234"
    assert sorted((v.address, v.change_class.value, v.deposed) for v in result.blocked_violations) == [
        ("terraform_data.db", "delete", deposed),
        ("terraform_data.db", "replace", None),
    ]


def test_an_apply_log_is_not_a_plan(tmp_path: Path, terraform_bin: Path) -> None:
    tf = TF(tmp_path, terraform_bin)
    tf.write(
        'resource "terraform_data" "db" {\n  provisioner "local-exec" {\n    command = "false"\n  }\n}\n'
    )
    tf.run("init", "-input=false")
    proc = tf.run("apply", "-json", "-auto-approve", "-input=false", check=False)
    assert proc.returncode != 0
    (tf.dir / "apply.jsonl").write_text(proc.stdout)
    with pytest.raises(PlanError, match=r"apply log .* not a plan"):
        load_plan(tf.dir / "apply.jsonl")
    cli = subprocess.run([sys.executable, "-m", "tfgate", "check", "apply.jsonl"], cwd=tf.dir,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cli.returncode == 2 and "not a plan" in cli.stderr


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> TF:
    """A fresh directory (no state ever saved) whose plan only imports an object."""
    tf = TF(tmp_path_factory.mktemp("import"), terraform_bin)
    tf.write('import {\n  to = terraform_data.imp\n  id = "abc"\n}\nresource "terraform_data" "imp" {}\n')
    tf.run("init", "-input=false")
    save_forms(tf)
    return tf


def test_the_stream_import_count_is_checked(imported: TF, tmp_path: Path) -> None:
    lines = (imported.dir / "stream.jsonl").read_text().splitlines()
    assert load_plan(imported.dir / "stream.jsonl").changes[0].importing
    edited = [line.replace('"import":1', '"import":0') for line in lines]
    assert edited != lines
    (tmp_path / "s.jsonl").write_text("\n".join(edited) + "\n")
    with pytest.raises(PlanError, match="import=0 but the stream lists 1"):
        load_plan(tmp_path / "s.jsonl")


# --- 5. no false missing_state; backup lineage --------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_never_saved_state_with_only_an_import_is_not_a_missing_state(imported: TF, form: str) -> None:
    result = check(imported.dir, form)
    assert result.verdict is Verdict.ALLOW and "missing_state" not in codes(result)


@pytest.mark.parametrize("form", FORMS)
def test_never_saved_state_with_only_a_data_source_is_not_a_missing_state(
    tmp_path: Path, terraform_bin: Path, form: str
) -> None:
    tf = TF(tmp_path, terraform_bin)
    other = {"version": 4, "serial": 1, "lineage": "x", "outputs": {"a": {"value": 1, "type": "number"}},
             "resources": []}  # fmt: skip
    (tf.dir / "other.tfstate").write_text(json.dumps(other))
    tf.write(
        'data "terraform_remote_state" "x" {\n  backend = "local"\n  config = { path = "other.tfstate" }\n}\n'
    )
    tf.run("init", "-input=false")
    save_forms(tf)
    for new_workspace in (False, True):
        result = check(tf.dir, form, new_workspace=new_workspace)
        assert result.verdict is Verdict.ALLOW and "missing_state" not in codes(result)


def test_backup_of_another_lineage_is_a_lineage_mismatch(tmp_path: Path, terraform_bin: Path) -> None:
    """No ledger yet: Terraform's own backup is the evidence that another state was put in place."""
    prod = TF(tmp_path / "prod", terraform_bin)
    other = TF(tmp_path / "other", terraform_bin)
    for tf in (prod, other):
        tf.dir.mkdir()
        tf.write(DB)
        tf.run("init", "-input=false")
        tf.apply()
    prod.write(DB.replace('"x"', '"x2"'))
    prod.apply()  # writes terraform.tfstate.backup (same lineage)
    shutil.copy(other.dir / "terraform.tfstate", prod.dir / "terraform.tfstate")
    save_forms(prod)
    for form in FORMS:
        result = check(prod.dir, form, manifest(rule("db", "{address: terraform_data.db}")))
        assert result.verdict is Verdict.BLOCK and "lineage_mismatch" in codes(result), form
        finding = next(f for f in result.findings if f.code == "lineage_mismatch")
        ev = finding.evidence_dict()
        assert ev["backup_lineage"] != ev["current_lineage"]


# --- 6. coverage ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_a_rule_that_matches_nothing_is_a_warning_naming_it(work, form: str) -> None:
    tf = work("update", DB, DB.replace('"x"', '"x2"'))
    result = check(
        tf.dir,
        form,
        manifest(rule("typo", "{address: terraform_data.DB}"), rule("db", "{type: terraform_data}")),
    )
    assert result.verdict is Verdict.ALLOW
    warned = [f for f in result.findings if f.code == "rule_matches_nothing"]
    assert [f.evidence_dict()["rule"] for f in warned] == ["typo"] and "'typo'" in warned[0].message


def test_an_empty_protect_list_is_a_warning(work) -> None:
    tf = work("update", DB, DB.replace('"x"', '"x2"'))
    result = check(tf.dir, "plan.json", "version: 1\nprotect: []\n")
    assert result.verdict is Verdict.ALLOW and "no_rules" in codes(result)


def test_state_check_on_a_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tfgate", "state", "check", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "nope" in proc.stderr


# --- 2. protection by identity ------------------------------------------------------------------------------

RENAMED = 'resource "terraform_data" "renamed" {\n  input = "x"\n}\n'
PROTECT_DB = manifest(rule("db", "{address: terraform_data.db}", "    approvals: 1\n"))


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory, terraform_bin: Path) -> TF:
    """The protected database, known to the ledger from an allowed check, then renamed by a `moved` block
    (applied: a no-op), then removed from the configuration: the plan deletes `terraform_data.renamed`,
    an address no rule names, with no `previous_address`."""
    tf = TF(tmp_path_factory.mktemp("renamed"), terraform_bin)
    tf.write(DB + WEB)
    tf.run("init", "-input=false")
    tf.apply()
    (tf.dir / "tfgate.yaml").write_text(PROTECT_DB)
    save_forms(tf)
    allowed = run_check(
        CheckOptions(plan=str(tf.dir / "plan.bin"), workdir=tf.dir, terraform=str(terraform_bin))
    )
    assert allowed.verdict is Verdict.ALLOW
    ledger = json.loads((tf.dir / ".tfgate" / "ledger.json").read_text())
    known = ledger["workspaces"]["default"]["protected"]
    db_id = tf.state()["resources"][0]["instances"][0]["attributes"]["id"]
    assert known == {
        f"terraform_data id={db_id}": {"rule": "db", "address": "terraform_data.db", "actions": ["delete", "replace"],
                                       "approvals": 1, "approvers": []}
    }  # fmt: skip
    tf.write(RENAMED + WEB + "moved {\n  from = terraform_data.db\n  to   = terraform_data.renamed\n}\n")
    tf.apply()
    tf.write(WEB)
    save_forms(tf)
    return tf


@pytest.mark.parametrize("form", FORMS)
def test_a_renamed_protected_object_is_still_protected_by_its_identity(renamed: TF, form: str) -> None:
    result = check(renamed.dir, form, PROTECT_DB)
    assert blocked(result) == [("terraform_data.renamed", None, "db", "delete")]
    [v] = result.violations
    assert "ledger knows this object" in v.reason and "as terraform_data.db" in v.reason
    assert "protection_removed" not in codes(result)


@pytest.mark.parametrize(
    "text",
    [None, "version: 1\nprotect:\n  - name: other\n    match: {type: aws_instance}\n"],
    ids=["gone", "removed"],
)
@pytest.mark.parametrize("form", FORMS)
def test_removing_the_rule_or_the_manifest_does_not_shed_protection(renamed: TF, form: str, text) -> None:
    saved = (renamed.dir / "tfgate.yaml").read_text()
    try:
        if text is None:
            (renamed.dir / "tfgate.yaml").unlink()
        result = check(renamed.dir, form, text)
    finally:
        (renamed.dir / "tfgate.yaml").write_text(saved)
    assert result.verdict is Verdict.BLOCK
    assert blocked(result) == [("terraform_data.renamed", None, "db", "delete")]
    assert "protection_removed" in codes(result)
    finding = next(f for f in result.findings if f.code == "protection_removed")
    assert finding.severity.value == "block" and finding.evidence_dict()["rule"] == "db"


@pytest.mark.parametrize("form", FORMS)
def test_a_rule_may_match_on_the_prior_id(renamed: TF, form: str) -> None:
    db_id = next(r for r in renamed.state()["resources"] if r["name"] == "renamed")["instances"][0][
        "attributes"
    ]["id"]
    text = manifest(rule("by-id", json.dumps({"id": [db_id[:8] + "*"]})))
    ledger = renamed.dir / ".tfgate" / "ledger.json"
    saved = ledger.read_bytes()
    ledger.unlink()  # the manifest alone, no ledger
    try:
        result = check(renamed.dir, form, text)
    finally:
        ledger.write_bytes(saved)
        (renamed.dir / "tfgate.yaml").write_text(PROTECT_DB)
    assert blocked(result) == [("terraform_data.renamed", None, "by-id", "delete")]


# --- 4. -target plans: blocked in every form, approvable as a whole -------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("needs OpenSSH ssh-keygen")
    key = tmp_path_factory.mktemp("key") / "id_alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def approve(workdir: Path, plan: str, key: Path, out: Path):
    from typer.testing import CliRunner

    from tfgate.cli import app

    args = ["approve", str(workdir / plan), "-C", str(workdir), "--signer", "alice@example.com", "--key", str(key),
            "--reason", "hotfix of one resource (CHG-9)", "--yes", "--output", str(out)]  # fmt: skip
    return CliRunner().invoke(app, args, catch_exceptions=False)


def with_signers(workdir: Path, key: Path, rules: str) -> str:
    pub = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    (workdir / "allowed_signers").write_text(f'alice@example.com namespaces="tfgate" {pub}\n')
    return rules + "approvals: {allowed_signers: allowed_signers}\n"


@pytest.mark.parametrize("form", FORMS)
def test_a_targeted_plan_goes_through_with_a_signed_approval_of_that_plan(
    work, signer: Path, tmp_path: Path, form: str
) -> None:
    tf = work(
        "targeted",
        DB + WEB,
        DB.replace('"x"', '"x2"') + WEB.replace('"y"', '"y2"'),
        "-target=terraform_data.db",
    )
    (tf.dir / "tfgate.yaml").write_text(
        with_signers(tf.dir, signer, manifest(rule("db", "{type: terraform_data}")))
    )
    res = approve(tf.dir, form, signer, tmp_path / "alice.json")
    assert res.exit_code == 0, res.output
    stmt = json.loads((tmp_path / "alice.json").read_text())
    assert stmt["changes"] == [{"address": "(plan)", "class": "plan_incomplete"}]
    result = check(tf.dir, form, approvals=(tmp_path / "alice.json",))
    assert result.verdict is Verdict.ALLOW, result.reasons
    finding = next(f for f in result.findings if f.code == "plan_incomplete")
    assert finding.severity.value == "warn" and "approved by alice@example.com" in finding.message
    # The approval is of that plan only: another targeted plan (another target) is still blocked.
    other = TF(tmp_path / "other", tf.exe)
    shutil.copytree(tf.dir, other.dir, ignore=shutil.ignore_patterns(".tfgate"))
    save_forms(other, "-target=terraform_data.web")
    result = check(other.dir, form, approvals=(tmp_path / "alice.json",))
    assert result.verdict is Verdict.BLOCK and "plan_incomplete" in codes(result)


@pytest.mark.parametrize("form", FORMS)
def test_protection_removed_is_approvable(renamed: TF, signer: Path, tmp_path: Path, form: str) -> None:
    text = with_signers(
        renamed.dir, signer, "version: 1\nprotect:\n  - name: other\n    match: {type: aws_instance}\n"
    )
    try:
        (renamed.dir / "tfgate.yaml").write_text(text)
        res = approve(renamed.dir, form, signer, tmp_path / "alice.json")
        assert res.exit_code == 0, res.output
        result = check(renamed.dir, form, approvals=(tmp_path / "alice.json",))
    finally:
        (renamed.dir / "tfgate.yaml").write_text(PROTECT_DB)
        (renamed.dir / ".tfgate" / "ledger.json").exists()
    assert result.verdict is Verdict.ALLOW, result.reasons
    [v] = result.violations
    assert v.approved and v.rule == "db"
    finding = next(f for f in result.findings if f.code == "protection_removed")
    assert finding.severity.value == "warn"


def test_terraform_resource_identity_is_an_identity_key(tmp_path: Path) -> None:
    """Terraform 1.12+ resource identity (state `identity`, plan `before_identity`): an object the ledger knows
    by it stays protected even when it has no id or arn. (terraform_data has no identity schema: hand-written.)"""
    from tfgate.model import Protection
    from tfgate.policy.evaluate import assess
    from tfgate.policy.manifest import parse_manifest
    from tfgate.state.objects import state_objects
    from tfgate.state.tfstate import parse_state

    ident = {"region": "eu-west-1", "name": "orders"}
    state = {"version": 4, "lineage": "l", "serial": 2, "resources": [
        {"mode": "managed", "type": "aws_db_instance", "name": "db", "provider": 'provider["registry.terraform.io/hashicorp/aws"]',
         "instances": [{"schema_version": 0, "attributes": {"name": "orders"}, "identity": ident}]}]}  # fmt: skip
    [obj] = state_objects(parse_state(json.dumps(state).encode(), "s"))
    assert obj.keys == ('aws_db_instance identity={"name":"orders","region":"eu-west-1"}',)
    change = {"address": "aws_db_instance.renamed", "mode": "managed", "type": "aws_db_instance", "name": "renamed",
              "change": {"actions": ["delete"], "before": {"name": "orders"}, "after": None,
                         "before_identity": {"region": "eu-west-1", "name": "orders"}}}  # fmt: skip
    doc = {"format_version": "1.2", "terraform_version": "1.15.5", "resource_changes": [change]}
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    plan = load_plan(tmp_path / "plan.json")
    known = {
        obj.keys[0]: {"rule": "db", "address": "aws_db_instance.db", "actions": ["delete"], "approvals": 2,
                      "approvers": ["dba@example.com"]}
    }  # fmt: skip
    empty = parse_manifest(b"version: 1\nprotect: []\n", tmp_path / "tfgate.yaml")
    _, [v] = assess(plan, empty, Protection(known=known))
    assert (v.address, v.rule, v.approvals_required) == ("aws_db_instance.renamed", "db", 2)
    assert "protection_removed" in v.reason and v.approvers == ("dba@example.com",)


def test_the_stream_carries_the_destroyed_objects_id_from_its_refresh(renamed: TF) -> None:
    """Without any state to read, the stream's own refresh messages name a destroyed object's id: identity
    protection and `id` rules work from the stream alone."""
    state_id = next(r for r in renamed.state()["resources"] if r["name"] == "renamed")["instances"][0]
    [change] = [c for c in load_plan(renamed.dir / "stream.jsonl").changes if c.destroys]
    assert change.prior_dict() == {"id": state_id["attributes"]["id"]}
