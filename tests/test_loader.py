"""Plan loading edge cases: every input tfgate cannot fully understand is a clear error (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfgate.errors import PlanError, TfgateError
from tfgate.model import ChangeClass
from tfgate.plan.loader import detect_format, load_plan


def rc(address: str, actions: list, **extra) -> dict:
    return {
        "address": address,
        "mode": "managed",
        "type": address.split(".")[-2],
        "name": address.split(".")[-1],
        "change": {
            "actions": actions,
            "before": {"id": "i-1", "name": "n", "password": "hunter2"},
            "after": None,
        },
        **extra,
    }


def plan_doc(*changes: dict, **top) -> dict:
    return {"format_version": "1.2", "terraform_version": "1.15.5", "resource_changes": list(changes), **top}


def write(tmp_path: Path, doc: dict | bytes, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "plan is empty"),
        (b"   \n", "plan is empty"),
        (b"hello", "not a Terraform plan"),
        (b'{"format_version": "1.2", "resource_changes": [', "malformed or truncated"),
        (b'{"resource_changes": []}', "no format_version"),
        (b'{"format_version": "2.0"}', "unsupported plan format_version 2.0"),
        (b'{"format_version": "1.2", "resource_changes": {}}', "not a Terraform JSON plan"),
        (b"PK\x03\x04garbage", "failed"),
        (b'{"format_version": "1"}', "malformed plan format_version '1'"),
        (b'{"format_version": "1.x.y"}', "malformed plan format_version"),
        (b"[" * 100_000 + b"]" * 100_000, "not a Terraform"),
        (b'{"format_version": "1.2", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
)
def test_unreadable_inputs(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(TfgateError) as err:
        load_plan(write(tmp_path, content))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="not found"):
        load_plan(tmp_path / "nope.json")


@pytest.mark.parametrize("actions", [["destroy"], ["delete", "delete"], [], ["Delete"], "delete", [1]])
def test_unknown_action_lists(tmp_path: Path, actions) -> None:
    with pytest.raises(PlanError, match=r"aws_s3_bucket\.b"):
        load_plan(write(tmp_path, plan_doc(rc("aws_s3_bucket.b", actions))))


@pytest.mark.parametrize(
    ("address", "extra", "message"),
    [
        ("aws_db_instance.main ", {}, "malformed resource address"),
        ("aws_db_instance.main\u200b", {}, "malformed resource address"),
        ('module.a["x].aws_db_instance.main', {}, "malformed resource address"),
        ("module.m.aws_db_instance", {}, "malformed resource address"),
        # Fields that repeat parts of the address must agree with it (a delete must not become a
        # data source's no-op, or slip past a type or module rule).
        ("aws_db_instance.main", {"mode": "data"}, "mode 'data' contradicts"),
        ("data.aws_ami.x", {"mode": "managed"}, "mode 'managed' contradicts"),
        ("aws_rds_cluster.x", {"type": "aws_s3_bucket"}, "type 'aws_s3_bucket' contradicts"),
        ("aws_rds_cluster.x", {"name": "y"}, "name 'y' contradicts"),
        (
            'module.a["x.y"].aws_s3_bucket.b',
            {"module_address": "module.zzz"},
            "module 'module.zzz' contradicts",
        ),
        ("aws_s3_bucket.b", {"module_address": "module.a"}, "module 'module.a' contradicts"),
        ("aws_s3_bucket.b", {"previous_address": "aws_s3_bucket. old"}, "malformed resource address"),
    ],
)
def test_addresses_must_be_well_formed_and_agree_with_their_fields(
    tmp_path: Path, address: str, extra: dict, message: str
) -> None:
    entry = rc(address, ["delete"])
    entry.update(type=entry["type"].split(".")[-1], name=entry["name"].split("[")[0])
    entry.update(extra)
    if "mode" in extra or address.startswith("data."):
        entry.setdefault("mode", "data")
        entry["type"], entry["name"] = address.split(".")[-2:]
    with pytest.raises(PlanError, match=message):
        load_plan(write(tmp_path, plan_doc(entry)))


def test_unicode_identifiers_and_odd_keys_are_addresses(tmp_path: Path) -> None:
    entries = [
        {**rc("aws_s3_bucket.bücket", ["delete"]), "type": "aws_s3_bucket", "name": "bücket"},
        {
            **rc('module.a["k]\\"."].module.b[0].aws_s3_bucket.c["x"]', ["delete"]),
            "type": "aws_s3_bucket",
            "name": "c",
            "module_address": 'module.a["k]\\"."].module.b[0]',
        },
    ]
    plan = load_plan(write(tmp_path, plan_doc(*entries)))
    assert [c.module_address for c in plan.changes] == [None, 'module.a["k]\\"."].module.b[0]']


def test_invalid_utf8_in_a_destroyed_objects_values(tmp_path: Path) -> None:
    data = json.dumps(plan_doc(rc("a.b", ["delete"]))).encode().replace(b'"i-1"', b'"\xff"')
    with pytest.raises(PlanError, match="not valid UTF-8"):
        load_plan(write(tmp_path, data))


def test_invalid_utf8_anywhere_is_refused_whatever_msgspec_skips(tmp_path: Path) -> None:
    """msgspec 0.23 stopped checking the UTF-8 of values it skips: tfgate checks the whole document."""
    doc = plan_doc(rc("a.b", ["no-op"]), configuration={"root_module": {"x": "CONFIG"}})
    for marker in (b'"CONFIG"', b'"i-1"'):
        data = json.dumps(doc).encode().replace(marker, b'"\xc3("')
        with pytest.raises(PlanError, match="not valid UTF-8"):
            load_plan(write(tmp_path, data))
    stream = _stream(_planned("a.b", "delete"), _summary(0, 0, 1)).replace(b"Plan to", b"Plan \xff to")
    with pytest.raises(PlanError, match="not valid UTF-8"):
        load_plan(write(tmp_path, stream))


def test_missing_actions(tmp_path: Path) -> None:
    doc = plan_doc({"address": "a.b", "mode": "managed", "type": "a", "name": "b", "change": {}})
    with pytest.raises(PlanError, match="actions missing"):
        load_plan(write(tmp_path, doc))


def test_duplicate_address_is_an_error_but_deposed_objects_are_not(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="duplicate"):
        load_plan(write(tmp_path, plan_doc(rc("a.b", ["delete"]), rc("a.b", ["update"]))))
    plan = load_plan(
        write(tmp_path, plan_doc(rc("a.b", ["delete", "create"]), rc("a.b", ["delete"], deposed="00ab")))
    )
    assert [(c.change_class, c.deposed) for c in plan.changes] == [
        (ChangeClass.REPLACE, None),
        (ChangeClass.DELETE, "00ab"),
    ]


def test_errored_and_incomplete_flags(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, plan_doc(rc("a.b", ["delete"]), errored=True, complete=False)))
    assert plan.info.errored and not plan.info.complete
    assert plan.changes[0].change_class is ChangeClass.DELETE  # still fully classified


def test_create_forget(tmp_path: Path) -> None:
    change = load_plan(write(tmp_path, plan_doc(rc("a.b", ["create", "forget"])))).changes[0]
    assert change.change_class is ChangeClass.FORGET and change.creates and not change.destroys


def test_sensitive_values_never_kept(tmp_path: Path) -> None:
    doc = plan_doc(rc("a.b", ["delete"]))
    doc["resource_changes"][0]["change"]["before_sensitive"] = {"name": True}
    change = load_plan(write(tmp_path, doc)).changes[0]
    assert change.prior_dict() == {"id": "i-1"}  # name is sensitive; password is not a key attribute
    doc["resource_changes"][0]["change"]["before_sensitive"] = True
    assert load_plan(write(tmp_path, doc)).changes[0].prior == ()


def test_utf16_and_bom(tmp_path: Path) -> None:
    text = json.dumps(plan_doc(rc("a.b", ["delete"])), indent=2).replace("\n", "\r\n")
    for data in (b"\xff\xfe" + text.encode("utf-16-le"), b"\xef\xbb\xbf" + text.encode()):
        assert load_plan(write(tmp_path, data)).changes[0].change_class is ChangeClass.DELETE


def test_digest_ignores_formatting_and_timestamp(tmp_path: Path) -> None:
    doc = plan_doc(rc("a.b", ["delete"]), timestamp="2026-01-01T00:00:00Z")
    compact = load_plan(
        write(tmp_path, json.dumps(doc, separators=(",", ":")).encode(), "a.json")
    ).info.digest
    pretty = load_plan(write(tmp_path, json.dumps(doc, indent=4).encode(), "b.json")).info.digest
    doc["timestamp"] = "2027-01-01T00:00:00Z"
    later = load_plan(write(tmp_path, doc, "c.json")).info.digest
    assert compact == pretty == later
    doc["resource_changes"][0]["change"]["before"]["name"] = "other"
    assert load_plan(write(tmp_path, doc, "d.json")).info.digest != compact


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    data = json.dumps(plan_doc(rc("a.b", ["delete"]))).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    plan = load_plan("-")
    assert plan.info.source == "-" and plan.changes[0].destroys


def _stream(*lines: dict) -> bytes:
    version = {
        "@level": "info",
        "@message": "Terraform 1.15.5",
        "type": "version",
        "terraform": "1.15.5",
        "ui": "1.2",
    }
    return b"\n".join(json.dumps(x).encode() for x in (version, *lines)) + b"\n"


def _planned(addr: str, action: str, **extra) -> dict:
    res = {
        "addr": addr,
        "module": "",
        "resource": addr,
        "implied_provider": "aws",
        "resource_type": addr.split(".")[0],
        "resource_name": addr.split(".")[1],
        "resource_key": None,
    }
    return {
        "@level": "info",
        "@message": f"{addr}: Plan to {action}",
        "type": "planned_change",
        "change": {"resource": res, "action": action, **extra},
    }


def _summary(add: int, change: int, remove: int, operation: str = "plan") -> dict:
    return {
        "@level": "info",
        "@message": "Plan",
        "type": "change_summary",
        "changes": {"add": add, "change": change, "remove": remove, "import": 0, "operation": operation},
    }


def test_stream_classification(tmp_path: Path) -> None:
    data = _stream(
        _planned("aws_db_instance.a", "delete", reason="delete_because_no_resource_config"),
        _planned("aws_db_instance.b", "replace", reason="requested"),
        _planned("aws_s3_bucket.c", "remove"),
        _planned("aws_s3_bucket.d", "move", previous_resource={"addr": "aws_s3_bucket.old"}),
        _summary(1, 0, 2),
    )
    plan = load_plan(write(tmp_path, data, "s.jsonl"))
    got = {c.address: (c.change_class, c.action_reason, c.previous_address) for c in plan.changes}
    assert got == {
        "aws_db_instance.a": (ChangeClass.DELETE, "delete_because_no_resource_config", None),
        "aws_db_instance.b": (ChangeClass.REPLACE, "replace_by_request", None),
        "aws_s3_bucket.c": (ChangeClass.FORGET, None, None),
        "aws_s3_bucket.d": (ChangeClass.NO_OP, None, "aws_s3_bucket.old"),
    }
    assert plan.info.input_format == "stream" and not plan.info.has_values
    assert detect_format(data) == "stream"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((_planned("a.b", "delete"),), "no change_summary"),
        ((_planned("a.b", "delete"), _summary(0, 0, 0)), "incomplete stream"),
        ((_planned("a.b", "obliterate"), _summary(0, 0, 1)), "unknown action"),
        ((_planned("a.b", "update"), _planned("a.b", "update"), _summary(0, 2, 0)), "duplicate"),
        ((_planned("a.b", "replace"), _planned("a.b", "update"), _summary(1, 1, 1)), "duplicate"),
        ((_summary(0, 0, 0, operation="apply"),), "not a plan"),
        ((_planned("a.b", "delete"), _summary(0, 0, 1), _summary(0, 0, 1)), "2 change_summary"),
        ((_planned("a.b", "delete"), {**_summary(0, 0, 1), "changes": None}), "without its `changes`"),
        ((_planned("a.b", "delete"), {**_summary(0, 0, 1), "changes": {}}), "change_summary.add"),
        (
            (
                _planned("a.b", "delete"),
                {**_summary(0, 0, 0), "changes": {"add": 0, "change": 0, "remove": True}},
            ),
            "remove is True",
        ),
        (
            (
                _planned("a.b", "delete"),
                {**_summary(0, 0, 0), "changes": {"add": 0, "change": 0, "remove": "1"}},
            ),
            "not a count",
        ),
        (
            (
                {
                    **_planned("a.b", "delete"),
                    "change": {
                        **_planned("a.b", "delete")["change"],
                        "resource": {
                            **_planned("a.b", "delete")["change"]["resource"],
                            "resource": "data.a.b",
                        },
                    },
                },
                _summary(0, 0, 1),
            ),
            "contradicts the address",
        ),
        (
            (
                {
                    **_planned("a.b", "delete"),
                    "change": {
                        **_planned("a.b", "delete")["change"],
                        "resource": {**_planned("a.b", "delete")["change"]["resource"], "module": "module.x"},
                    },
                },
                _summary(0, 0, 1),
            ),
            "contradicts the address",
        ),
        ((_planned("a.b ", "delete"), _summary(0, 0, 1)), "malformed resource address"),
    ],
)
def test_bad_streams(tmp_path: Path, lines: tuple, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        load_plan(write(tmp_path, _stream(*lines), "s.jsonl"))


def test_truncated_stream_line(tmp_path: Path) -> None:
    data = _stream(_planned("a.b", "delete"), _summary(0, 0, 1))[:-20]
    with pytest.raises(PlanError, match="malformed stream line"):
        load_plan(write(tmp_path, data, "s.jsonl"))


def test_forced_input_format(tmp_path: Path) -> None:
    path = write(tmp_path, plan_doc(rc("a.b", ["delete"])))
    with pytest.raises(PlanError):
        load_plan(path, input_format="stream")
    with pytest.raises(PlanError, match="unknown --input-format"):
        load_plan(path, input_format="xml")
    with pytest.raises(PlanError, match="no zip header"):
        load_plan(path, input_format="binary")


TAG_RULE = "version: 1\nprotect:\n  - name: prod\n    match: {tags: {Environment: production}}\n"


@pytest.mark.parametrize(
    ("change", "protected", "assumed"),
    [
        # One sensitive tag does not hide the others: Environment is still read and matched.
        (
            {
                "before": {"tags": {"Environment": "production", "Owner": "x"}},
                "before_sensitive": {"tags": {"Owner": True}},
            },
            True,
            False,
        ),
        (
            {
                "before": {"tags": {"Environment": "staging", "Owner": "x"}},
                "before_sensitive": {"tags": {"Owner": True}},
            },
            False,
            False,
        ),
        # The tag the rule reads is hidden, or the plan cannot show the tags at all: assumed to match.
        (
            {"before": {"tags": {"Environment": "x"}}, "before_sensitive": {"tags": {"Environment": True}}},
            True,
            True,
        ),
        ({"before": {"tags": {"Environment": "x"}}, "before_sensitive": {"tags": True}}, True, True),
        ({"before": {"tags": {"Environment": "x"}}, "before_sensitive": True}, True, True),
        ({"before": None}, True, True),
        ({"before": "not an object"}, True, True),
        ({"before": {"tags": [["Environment", "production"]]}}, True, True),
        ({"before": {"tags": {"Environment": ["production"]}}}, True, True),
        # Readable and absent: the rule does not match.
        ({"before": {"id": "x"}}, False, False),
    ],
)
def test_tags_the_plan_hides_are_assumed_to_match(
    tmp_path: Path, change: dict, protected: bool, assumed: bool
) -> None:
    from tfgate.policy.evaluate import evaluate
    from tfgate.policy.manifest import load_manifest

    entry = rc("aws_s3_bucket.logs", ["delete"])
    entry["change"] = {"actions": ["delete"], "after": None, **change}
    (tmp_path / "tfgate.yaml").write_text(TAG_RULE)
    result = evaluate(load_plan(write(tmp_path, plan_doc(entry))), load_manifest(tmp_path / "tfgate.yaml"))
    assert [v.address for v in result.violations] == (["aws_s3_bucket.logs"] if protected else [])
    assert any("assumed to match" in v.reason for v in result.violations) is assumed
    # Hidden values never reach the report.
    assert "Owner" not in repr(result.changes[0].prior)


def test_large_files_are_mapped_and_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans from 1 MiB on are memory-mapped instead of copied: same changes, same digest."""
    import tfgate.plan.loader as loader

    changes = [rc(f"aws_s3_bucket.b{i}", ["delete"] if i % 7 == 0 else ["no-op"]) for i in range(6000)]
    big = write(tmp_path, plan_doc(*changes), "big.json")
    assert big.stat().st_size >= loader._MAP_AT
    assert not isinstance(loader.read_source(big), bytes)  # mapped
    mapped = load_plan(big)
    assert sum(c.change_class is ChangeClass.DELETE for c in mapped.changes) == len(range(0, 6000, 7))
    # A UTF-16 plan that is mapped is re-encoded like a small one.
    text = json.dumps(plan_doc(*changes), indent=1)
    utf16 = write(tmp_path, b"\xff\xfe" + text.encode("utf-16-le"), "utf16.json")
    assert load_plan(utf16).info.digest == mapped.info.digest
    # The same file read into memory gives the same result.
    monkeypatch.setattr(loader, "_MAP_AT", 1 << 40)
    assert isinstance(loader.read_source(big), bytes)
    assert load_plan(big).info.digest == mapped.info.digest


def test_digest_does_not_depend_on_the_order_of_changes(tmp_path: Path) -> None:
    """Terraform writes changes sorted by address (hashed as they come); any other order hashes the same."""
    changes = [rc(f"aws_s3_bucket.b{i:02d}", ["delete"]) for i in range(30)]
    in_order = load_plan(write(tmp_path, plan_doc(*changes), "a.json")).info.digest
    shuffled = changes[::2] + changes[1::2]
    assert load_plan(write(tmp_path, plan_doc(*shuffled), "b.json")).info.digest == in_order
    assert load_plan(write(tmp_path, plan_doc(*changes[::-1]), "c.json")).info.digest == in_order
    changed = [*changes[:-1], rc("aws_s3_bucket.b29", ["update"])]
    assert load_plan(write(tmp_path, plan_doc(*changed), "d.json")).info.digest != in_order


@pytest.mark.parametrize(
    ("address", "rtype", "name"),
    [
        ("aws_s3_bucket.-x", "aws_s3_bucket", "-x"),
        ("aws_x.prod\ufe0f", "aws_x", "prod\ufe0f"),
        ("aws_x.prod\u034f", "aws_x", "prod\u034f"),
        ("aws_x.pro\u00b7d", "aws_x", "pro\u00b7d"),
        ("\u2118.x", "\u2118", "x"),
        ("aws_x.b[\u00b2]", "aws_x", "b"),
        ("aws_x.b[0]", "aws_x", "b"),
        ('module.m["k"].aws_x.b["q\\"x"]', "aws_x", "b"),
    ],
)
def test_fast_address_check_agrees_with_the_parser(address: str, rtype: str, name: str) -> None:
    """The fast path (type and name given beside the address) accepts exactly what the full parse accepts."""
    from tfgate.plan.address import parse_address, resolve_address

    def outcome(fn) -> bool:
        try:
            fn()
        except PlanError:
            return False
        return True

    module = address.rsplit(f".{rtype}.", 1)[0] if address.startswith("module.") else None
    fast = outcome(lambda: resolve_address(address, type=rtype, name=name, module=module))
    assert fast == outcome(lambda: parse_address(address))
