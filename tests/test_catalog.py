"""The built-in catalog and safety-net detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfgate.errors import TfgateError
from tfgate.policy.catalog import Catalog, load_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.mark.parametrize(
    ("rtype", "kind"),
    [
        ("aws_db_instance", "database"),
        ("aws_s3_bucket", "bucket"),
        ("aws_ebs_volume", "volume"),
        ("aws_efs_file_system", "file_system"),
        ("aws_kms_key", "key"),
        ("aws_route53_zone", "dns_zone"),
        ("aws_sqs_queue", "queue"),
        ("aws_elasticache_replication_group", "cache"),
        ("google_sql_database_instance", "database"),
        ("google_storage_bucket", "bucket"),
        ("google_compute_disk", "volume"),
        ("google_kms_crypto_key", "key"),
        ("azurerm_mssql_database", "database"),
        ("azurerm_storage_account", "bucket"),
        ("azurerm_key_vault", "key"),
        ("azurerm_dns_zone", "dns_zone"),
    ],
)
def test_lookup(catalog: Catalog, rtype: str, kind: str) -> None:
    entry = catalog.lookup(rtype)
    assert entry is not None and entry.kind == kind and "data-bearing" in entry.classes
    assert catalog.classes_for(rtype)[0] == kind


def test_unknown_type(catalog: Catalog) -> None:
    assert catalog.lookup("aws_instance") is None and catalog.classes_for("null_resource") == ()
    assert len(catalog.entries) >= 200
    assert {"data-bearing", "database", "bucket"} <= set(catalog.class_names)


def nets(catalog: Catalog, rtype: str, before: dict, after: dict) -> list[str]:
    return [
        n.attribute
        for n in catalog.safety_nets(rtype, json.dumps(before).encode(), json.dumps(after).encode())
    ]


@pytest.mark.parametrize(
    ("rtype", "before", "after", "expected"),
    [
        (
            "aws_db_instance",
            {"deletion_protection": True},
            {"deletion_protection": False},
            ["deletion_protection"],
        ),
        (
            "aws_db_instance",
            {"skip_final_snapshot": False},
            {"skip_final_snapshot": True},
            ["skip_final_snapshot"],
        ),
        (
            "aws_db_instance",
            {"backup_retention_period": 7},
            {"backup_retention_period": 0},
            ["backup_retention_period"],
        ),
        (
            "aws_db_instance",
            {"final_snapshot_identifier": "x"},
            {"final_snapshot_identifier": None},
            ["final_snapshot_identifier"],
        ),
        ("aws_s3_bucket", {"force_destroy": False}, {"force_destroy": True}, ["force_destroy"]),
        (
            "aws_dynamodb_table",
            {"deletion_protection_enabled": True},
            {"deletion_protection_enabled": False},
            ["deletion_protection_enabled"],
        ),
        (
            "aws_dynamodb_table",
            {"point_in_time_recovery": [{"enabled": True}]},
            {"point_in_time_recovery": [{"enabled": False}]},
            ["point_in_time_recovery.enabled"],
        ),
        (
            "aws_s3_bucket_versioning",
            {"versioning_configuration": [{"status": "Enabled"}]},
            {"versioning_configuration": [{"status": "Suspended"}]},
            ["versioning_configuration.status"],
        ),
        (
            "aws_lb",
            {"enable_deletion_protection": "true"},
            {"enable_deletion_protection": "false"},
            ["enable_deletion_protection"],
        ),
        (
            "aws_instance",
            {"disable_api_termination": True},
            {"disable_api_termination": False},
            ["disable_api_termination"],
        ),
        (
            "aws_kms_key",
            {"deletion_window_in_days": 30},
            {"deletion_window_in_days": 7},
            ["deletion_window_in_days"],
        ),
        (
            "azurerm_key_vault",
            {"purge_protection_enabled": True},
            {"purge_protection_enabled": False},
            ["purge_protection_enabled"],
        ),
        (
            "google_sql_database_instance",
            {"settings": [{"deletion_protection_enabled": True}]},
            {"settings": [{"deletion_protection_enabled": False}]},
            ["settings.deletion_protection_enabled"],
        ),
    ],
)
def test_safety_net_removed_and_not_on_reverse(catalog: Catalog, rtype, before, after, expected) -> None:
    assert nets(catalog, rtype, before, after) == expected
    assert nets(catalog, rtype, after, before) == []  # restoring the net is safe
    assert nets(catalog, rtype, before, before) == []  # unchanged


def test_no_false_positive_from_values_or_unknowns(catalog: Catalog) -> None:
    # The attribute name inside a string value is not a key.
    assert nets(catalog, "aws_db_instance", {"name": "deletion_protection"}, {"name": "force_destroy"}) == []
    # A name computed at apply (final-${timestamp()}) is not a removed final snapshot name.
    assert nets(catalog, "aws_db_instance", {"final_snapshot_identifier": "f-1"}, {}) == []
    # Scoped nets apply only to their types.
    assert nets(catalog, "aws_sqs_queue", {"retention_in_days": 30}, {"retention_in_days": 1}) == []
    assert catalog.safety_nets("aws_db_instance", b"null", b"{}") == ()


@pytest.mark.parametrize(
    ("rtype", "before", "after", "expected"),
    [
        # Unknown until apply (Terraform leaves the key out of `after`): the plan cannot show the net
        # stays, so it counts as removed (fail closed).
        ("aws_db_instance", {"deletion_protection": True}, {}, ["deletion_protection"]),
        ("aws_db_instance", {"backup_retention_period": 7}, {}, ["backup_retention_period"]),
        ("aws_s3_bucket", {"force_destroy": False}, {}, ["force_destroy"]),
        # The block that held the net is removed or emptied.
        (
            "aws_dynamodb_table",
            {"point_in_time_recovery": [{"enabled": True}]},
            {"point_in_time_recovery": []},
            ["point_in_time_recovery.enabled"],
        ),
        (
            "aws_dynamodb_table",
            {"point_in_time_recovery": [{"enabled": True}]},
            {"point_in_time_recovery": None},
            ["point_in_time_recovery.enabled"],
        ),
        (
            "aws_dynamodb_table",
            {"point_in_time_recovery": [{"enabled": True}]},
            {"point_in_time_recovery": [{}]},
            ["point_in_time_recovery.enabled"],
        ),
        # A nested attribute Terraform leaves out of `after` (known only after apply).
        (
            "aws_s3_bucket_versioning",
            {"versioning_configuration": [{"status": "Enabled"}]},
            {"versioning_configuration": [{"mfa_delete": ""}]},
            ["versioning_configuration.status"],
        ),
        # A number set to null.
        (
            "aws_db_instance",
            {"backup_retention_period": 7},
            {"backup_retention_period": None},
            ["backup_retention_period"],
        ),
        (
            "aws_kms_key",
            {"deletion_window_in_days": 30},
            {"deletion_window_in_days": None},
            ["deletion_window_in_days"],
        ),
        # Nets that were off stay off: nothing removed.
        ("aws_db_instance", {"deletion_protection": False}, {}, []),
        (
            "aws_dynamodb_table",
            {"point_in_time_recovery": [{"enabled": False}]},
            {"point_in_time_recovery": []},
            [],
        ),
        ("aws_dynamodb_table", {"point_in_time_recovery": []}, {"point_in_time_recovery": None}, []),
    ],
)
def test_unknown_or_removed_nets_fail_closed(catalog: Catalog, rtype, before, after, expected) -> None:
    assert nets(catalog, rtype, before, after) == expected


def test_bad_catalogs_fail_closed(tmp_path: Path) -> None:
    for text, message in [
        ("types: [", "invalid catalog"),
        ("types: {x: {kind: db}}\n", "classes"),
        ("types: {}\nsafety_nets: [{attribute: a, unsafe: sometimes, description: d}]\n", "unknown kind"),
    ]:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(TfgateError, match=message):
            load_catalog(path)
            load_catalog.cache_clear()
        load_catalog.cache_clear()
