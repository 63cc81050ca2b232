"""The manifest: validation errors that name the problem, glob semantics, rule matching."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tfgate.errors import ManifestError
from tfgate.model import Change, ChangeClass
from tfgate.policy.manifest import glob_to_regex, json_schema, load_manifest

from .conftest import REPO


def change(address: str, cls: ChangeClass = ChangeClass.DELETE, **kw) -> Change:
    from tfgate.plan.address import parse_address

    parsed = parse_address(address)
    return Change(
        address=address,
        mode="managed",
        type=kw.pop("type", parsed.type),
        name=parsed.name,
        module_address=parsed.module,
        index=None,
        provider=kw.pop("provider", None),
        actions=("delete",),
        change_class=cls,
        **kw,
    )


def write(tmp_path: Path, text: str, name: str = "tfgate.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_schema_file_is_generated_from_the_structs() -> None:
    shipped = json.loads((REPO / "rules" / "manifest.schema.json").read_text())
    assert shipped == json_schema(), (
        "regenerate rules/manifest.schema.json from tfgate.policy.manifest.json_schema()"
    )


def test_example_manifest_is_valid_under_schema_and_loader() -> None:
    import yaml

    example = REPO / "rules" / "example.yaml"
    jsonschema.validate(yaml.safe_load(example.read_text()), json_schema())
    manifest = load_manifest(example)
    assert [r.name for r in manifest.rules] == [
        "prod-databases",
        "state-and-backups",
        "dns",
        "payments-everything",
    ]
    assert manifest.rules[0].approvals == 2
    assert manifest.allowed_signers == REPO / "rules" / "allowed_signers"
    assert manifest.max_plan_age is not None and manifest.max_plan_age.total_seconds() == 86400


def test_default_manifest_found_in_working_dir(tmp_path: Path) -> None:
    assert load_manifest(None, cwd=tmp_path).rules == ()
    write(tmp_path, "version: 1\nprotect:\n  - name: r\n    match: {type: aws_db_instance}\n")
    assert [r.name for r in load_manifest(None, cwd=tmp_path).rules] == ["r"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\n", "$.version"),
        ("protect: []\n", "version"),
        ("version: 1\nprotect:\n  - name: r\n    match: {}\n", "give at least one of"),
        ("version: 1\nprotect:\n  - name: r\n    match: {adress: x}\n", "adress"),
        (
            "version: 1\nprotect:\n  - name: r\n    match: {type: x}\n    approvals: zero\n",
            "$.protect[0].approvals",
        ),
        (
            "version: 1\nprotect:\n  - name: r\n    match: {type: x}\n    actions: [destroy]\n",
            "$.protect[0].actions[0]",
        ),
        (
            "version: 1\nprotect:\n  - name: r\n    match: {type: x}\n  - name: r\n    match: {type: y}\n",
            "duplicate rule",
        ),
        (
            "version: 1\nprotect:\n  - name: r\n    match: {type: x}\n    approvals: 2\n    approvers: [a@x]\n",
            "never be met",
        ),
        ("version: 1\nstate: {max_plan_age: soon}\n", "invalid duration"),
        (
            "version: 1\nprotect:\n  - name: r\n    match: {catalog: [no-such-class]}\n",
            "unknown catalog class",
        ),
        ("version: 1\nprotect: [\n", "not valid YAML"),
        ("- just a list\n", "a manifest is a mapping"),
        # A key given twice: YAML would silently keep the last one (here: no rules at all).
        (
            "version: 1\nprotect:\n  - name: r\n    match: {type: x}\nprotect: []\n",
            "duplicate key 'protect'",
        ),
        (
            "version: 1\nprotect:\n  - name: r\n    match: {address: a.b, address: c.d}\n",
            "duplicate key 'address'",
        ),
        # Patterns that can never match would protect nothing, silently.
        ("version: 1\nprotect:\n  - name: r\n    match: {address: []}\n", "$.protect[0].match.address"),
        ("version: 1\nprotect:\n  - name: r\n    match: {address: ''}\n", "$.protect[0].match.address"),
        ("version: 1\nprotect:\n  - name: r\n    match: {type: [x, '']}\n", "$.protect[0].match.type"),
        ("version: 1\nprotect:\n  - name: r\n    match: {tags: {Env: []}}\n", "$.protect[0].match.tags"),
        ("version: 1\nprotect:\n  - name: r\n    match: {tags: {}}\n", "$.protect[0].match.tags"),
    ],
)
def test_invalid_manifests_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path / "nope.yaml")


def test_json_manifest_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"version": 1, "protect": [{"name": "j", "match": {"type": "x"}}], "protect": []}',
        "m.json",
    )
    with pytest.raises(ManifestError, match="duplicate key 'protect'"):
        load_manifest(path)


def test_json_manifest(tmp_path: Path) -> None:
    path = write(
        tmp_path, json.dumps({"version": 1, "protect": [{"name": "j", "match": {"type": "x"}}]}), "m.json"
    )
    assert load_manifest(path).rules[0].actions == ("delete", "replace")


@pytest.mark.parametrize(
    ("pattern", "address", "matches"),
    [
        ("module.db.*", "module.db.aws_db_instance.main", True),
        ("module.db.*", "module.dbx.aws_db_instance.main", False),
        ('module.a["x.y"].aws_s3_bucket.b[0]', 'module.a["x.y"].aws_s3_bucket.b[0]', True),
        ('module.a["x.y"].aws_s3_bucket.b[0]', 'module.a["xzy"].aws_s3_bucket.b[0]', False),
        ("aws_s3_bucket.b[?]", "aws_s3_bucket.b[0]", True),
        ("aws_s3_bucket.b[?]", "aws_s3_bucket.b[10]", False),
        ('*["prod"]*', 'module.x["prod"].aws_db_instance.y', True),
        ("aws_db_instance.main", "aws_db_instance.main2", False),
        ("*", 'module.a["q\\"uote"].x.y', True),
    ],
)
def test_address_globs(pattern: str, address: str, matches: bool) -> None:
    import re

    assert bool(re.fullmatch(glob_to_regex(pattern), address, re.DOTALL)) is matches


def test_rule_matching_all_keys_must_hold(tmp_path: Path) -> None:
    manifest = load_manifest(
        write(
            tmp_path,
            "version: 1\nprotect:\n  - name: r\n    match:\n      type: [aws_db_instance]\n"
            "      module: ['module.pay*']\n      tags: {Environment: [prod*, production]}\n",
        )
    )
    rule = manifest.rules[0]
    tagged = {"prior": (("tags", {"Environment": "production"}),)}
    assert rule.applies_to(change('module.payments["eu"].aws_db_instance.main', **tagged))
    assert not rule.applies_to(change("module.web.aws_db_instance.main", **tagged))
    assert not rule.applies_to(change("module.payments.aws_db_instance.main"))  # no tags
    assert not rule.applies_to(
        change("module.payments.aws_db_instance.main", prior=(("tags", {"Environment": "dev"}),))
    )
    assert rule.applies_to(
        change("module.payments.aws_db_instance.main", prior=(("tags_all", {"Environment": "prod-eu"}),))
    )
    # Unknown tags (plan -json stream) count as matching: fail closed.
    assert rule.applies_to(change("module.payments.aws_db_instance.main"), tags_known=False)
    # Class filter: a create is never protected.
    assert not rule.applies_to(change("module.payments.aws_db_instance.main", ChangeClass.CREATE, **tagged))


def test_rule_actions_filter(tmp_path: Path) -> None:
    manifest = load_manifest(
        write(
            tmp_path, "version: 1\nprotect:\n  - name: r\n    match: {address: '*'}\n    actions: [forget]\n"
        )
    )
    assert manifest.protecting(change("x.y", ChangeClass.FORGET))
    assert not manifest.protecting(change("x.y", ChangeClass.DELETE))


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nprotect:\n  - &db\n    name: a\n    match: {type: aws_db_instance}\n    approvals: 2\n"
        "    approvers: [x@y, z@y]\n  - <<: *db\n    name: b\n    match: {type: aws_rds_cluster}\n",
    )
    rules = load_manifest(path).rules
    assert [(r.name, r.approvals) for r in rules] == [("a", 2), ("b", 2)]


def test_the_rule_index_finds_every_rule_trying_each_would(tmp_path: Path) -> None:
    """Manifest.protecting/rules_for try only the rules the index files a change under (literal starts of
    address, type and module globs, catalog classes): on random rules and changes, moved ones included,
    they give exactly the rules (in manifest order) that trying every rule gives."""
    import random

    from tfgate.policy.catalog import load_catalog

    rnd = random.Random(16)
    catalog = load_catalog()
    types = ["aws_db_instance", "aws_s3_bucket", "aws_instance", "google_sql_database_instance"]
    modules = ["", 'module.a["x.y"]', "module.a[0].module.b[1]", 'module.region["eu"]']
    globs = {
        "address": [
            "*",
            'module.a["x.y"].*',
            "aws_*",
            "module.a[0].*",
            "*.aws_s3_bucket.*",
            "aws_db_instance.d?",
        ],
        "type": ["aws_db_instance", "aws_*", "*bucket", "google_sql_database_instance"],
        "module": ["module.a*", 'module.region["eu"]', "*b[1]"],
        "catalog": ["database", "object-storage", "data-bearing"],
        "tags": [{"env": "prod"}, {"env": "p*"}],
    }
    rules = []
    for i in range(40):
        keys = rnd.sample(sorted(globs), rnd.randint(1, 3))
        match = {
            k: (rnd.choice(globs[k]) if k == "tags" else rnd.sample(globs[k], rnd.randint(1, 2)))
            for k in keys
        }
        rules.append({"name": f"r{i}", "match": match, "actions": ["delete", "replace", "forget"]})
    manifest = load_manifest(write(tmp_path, json.dumps({"version": 1, "protect": rules}), "tfgate.json"))

    def place() -> tuple[str, str, str]:
        t, m = rnd.choice(types), rnd.choice(modules)
        return (f"{m}." if m else "") + f"{t}.d{rnd.randint(0, 3)}", t, m

    for _ in range(2000):
        address, t, _ = place()
        entry = catalog.lookup(t)
        kw = {"catalog_classes": entry.classes, "catalog_kind": entry.kind} if entry else {}
        if rnd.random() < 0.3:
            kw["previous_address"] = place()[0]
        cls = rnd.choice([ChangeClass.DELETE, ChangeClass.REPLACE])
        c = change(address, cls, prior=(("tags", {"env": rnd.choice(["prod", "dev"])}),), **kw)
        assert manifest.protecting(c) == tuple(r for r in manifest.rules if r.applies_to(c))
        assert manifest.rules_for(c) == tuple(r for r in manifest.rules if r.matches(c))
