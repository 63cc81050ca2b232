"""Real Terraform (embedded 1.15): tfgate's classification equals what `terraform show -json` reports,
in all three plan forms, and the digest is the same for the binary and show-json forms of one plan."""

from __future__ import annotations

import pytest

from tfgate.model import ChangeClass
from tfgate.plan.loader import load_plan

from .conftest import TF

EXPECTED_CLASS = {
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("forget",): "forget",
    ("no-op",): "no_op",
    ("create",): "create",
    ("update",): "update",
}


def _forms(tf: TF, plan_args: tuple[str, ...] = ()):
    show = tf.show_json("plan.bin")
    (tf.dir / "plan.json").write_text(tf.run("show", "-json", "plan.bin").stdout)
    (tf.dir / "stream.jsonl").write_text(tf.run("plan", "-json", "-input=false", *plan_args).stdout)
    binary = load_plan(tf.dir / "plan.bin", cwd=tf.dir)
    shown = load_plan(tf.dir / "plan.json")
    stream = load_plan(tf.dir / "stream.jsonl")
    return show, binary, shown, stream


def _assert_matches_terraform(show: dict, plan) -> dict[str, str]:
    truth = {rc["address"]: EXPECTED_CLASS[tuple(rc["change"]["actions"])] for rc in show["resource_changes"]}
    ours = {c.address: c.change_class.value for c in plan.changes}
    assert ours == truth
    return ours


def _stream_classes(plan) -> dict[str, str]:
    return {c.address: c.change_class.value for c in plan.changes}


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("deleted_block", {"terraform_data.db": "delete", "terraform_data.web": "no_op"}),
        ("replace_triggers", {"terraform_data.db": "replace"}),
        ("replace_create_before_destroy", {"terraform_data.db": "replace"}),
        (
            "count_decrease",
            {
                "terraform_data.disk[0]": "no_op",
                "terraform_data.disk[1]": "delete",
                "terraform_data.disk[2]": "delete",
            },
        ),
        ("removed_forget", {"terraform_data.bucket": "forget", "terraform_data.web": "no_op"}),
        ("moved", {"terraform_data.new": "no_op"}),
        ("no_op", {"terraform_data.a": "no_op"}),
    ],
)
def test_scenario_classification(scenario, name: str, expect: dict[str, str]) -> None:
    tf, _ = scenario(name)
    show, binary, shown, stream = _forms(tf)
    assert _assert_matches_terraform(show, binary) == expect
    assert _assert_matches_terraform(show, shown) == expect
    assert binary.info.input_format == "binary" and shown.info.input_format == "show-json"
    assert binary.info.digest == shown.info.digest
    assert binary.info.file_sha256 and shown.info.file_sha256 is None
    assert binary.info.terraform_version == "1.15.5"
    # The stream omits no-ops; everything else classifies the same.
    assert _stream_classes(stream) == {a: c for a, c in expect.items() if c != "no_op"} | (
        {"terraform_data.new": "no_op"} if name == "moved" else {}
    )


def test_replace_order_and_reason(scenario) -> None:
    tf, _ = scenario("replace_triggers")
    delete_first = load_plan(tf.dir / "plan.bin", cwd=tf.dir).changes[0]
    assert delete_first.actions == ("delete", "create")
    assert delete_first.replace_order == "delete_first"
    assert delete_first.action_reason == "replace_because_cannot_update"
    stream = load_plan_stream(tf)
    assert stream.changes[0].change_class is ChangeClass.REPLACE
    assert stream.changes[0].action_reason == "replace_because_cannot_update"  # stream's "cannot_update"


def test_create_before_destroy_order(scenario) -> None:
    tf, _ = scenario("replace_create_before_destroy")
    change = load_plan(tf.dir / "plan.bin", cwd=tf.dir).changes[0]
    assert change.actions == ("create", "delete")
    assert change.replace_order == "create_first"
    assert change.destroys


def load_plan_stream(tf: TF):
    (tf.dir / "s.jsonl").write_text(tf.run("plan", "-json", "-input=false").stdout)
    return load_plan(tf.dir / "s.jsonl")


def test_for_each_key_removed_inside_module_instance(scenario) -> None:
    tf, _ = scenario("for_each_in_module")
    show, binary, _shown, stream = _forms(tf)
    ours = _assert_matches_terraform(show, binary)
    deleted = sorted(a for a, c in ours.items() if c == "delete")
    assert deleted == [
        'module.tenant["eu.west"].terraform_data.item["a.b"]',
        'module.tenant["eu.west"].terraform_data.item["c[\\"d\\"]"]',
    ]
    change = next(c for c in binary.changes if c.address == deleted[0])
    assert change.module_address == 'module.tenant["eu.west"]'
    assert change.action_reason == "delete_because_each_key"
    assert {c.address for c in stream.changes if c.destroys} == set(deleted)


def test_count_decrease_reason(scenario) -> None:
    tf, _ = scenario("count_decrease")
    plan = load_plan(tf.dir / "plan.bin", cwd=tf.dir)
    reasons = {c.address: c.action_reason for c in plan.changes if c.destroys}
    assert reasons == {
        "terraform_data.disk[1]": "delete_because_count_index",
        "terraform_data.disk[2]": "delete_because_count_index",
    }


def test_moved_block_records_previous_address(scenario) -> None:
    tf, _ = scenario("moved")
    _show, binary, _shown, stream = _forms(tf)
    change = binary.changes[0]
    assert change.previous_address == "terraform_data.old" and change.moved
    assert change.change_class is ChangeClass.NO_OP
    assert stream.changes[0].previous_address == "terraform_data.old"


def test_plan_destroy_has_no_marker_but_every_object_is_deleted(scenario) -> None:
    """`plan -destroy` of module instances with for_each keys: every object is a delete, exactly as
    `terraform show` says, with nothing in the plan marking it as a destroy plan."""
    tf, _ = scenario("for_each_in_module")
    tf.run("plan", "-destroy", "-out=destroy.bin", "-input=false")
    show = tf.show_json("destroy.bin")
    ours = _assert_matches_terraform(show, load_plan(tf.dir / "destroy.bin", cwd=tf.dir))
    assert len(ours) >= 3 and set(ours.values()) == {"delete"}
    assert not any("destroy" in key for key in show)  # no top-level marker


def test_digest_changes_when_a_change_changes(scenario) -> None:
    tf, _ = scenario("replace_triggers")
    first = load_plan(tf.dir / "plan.bin", cwd=tf.dir).info.digest
    again = tf.plan("again.bin")
    assert load_plan(again, cwd=tf.dir).info.digest == first  # timestamps excluded: re-plan, same digest
    tf.write('resource "terraform_data" "db" { triggers_replace = "v3" }\n')
    other = tf.plan("other.bin")
    assert load_plan(other, cwd=tf.dir).info.digest != first
