"""S3 evidence gathering against in-process moto: history, delete markers, versioning, locking, errors."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tfgate.errors import TfgateError
from tfgate.state.s3 import gather, state_key


def _state(serial: int, lineage: str = "L1", resources: int = 1) -> bytes:
    return json.dumps(
        {
            "version": 4,
            "serial": serial,
            "lineage": lineage,
            "resources": [{"mode": "managed", "type": "x", "name": "y", "instances": []}] * resources,
        }
    ).encode()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="tfstate-bucket")
        yield client


CONFIG = {
    "bucket": "tfstate-bucket",
    "key": "prod/terraform.tfstate",
    "region": "us-east-1",
    "use_lockfile": True,
}


def test_history_newest_first_with_delete_marker(s3) -> None:
    s3.put_bucket_versioning(Bucket="tfstate-bucket", VersioningConfiguration={"Status": "Enabled"})
    for serial in (1, 2, 3):
        s3.put_object(Bucket="tfstate-bucket", Key="prod/terraform.tfstate", Body=_state(serial))
    s3.delete_object(Bucket="tfstate-bucket", Key="prod/terraform.tfstate")
    ev = gather(CONFIG, "default", s3)
    assert ev.current is None and ev.versioning == "Enabled" and ev.locking == "use_lockfile"
    serials = [st.serial if st else None for _, _, st in ev.history]
    assert [x for x in serials if x is not None] == [3, 2, 1]  # newest first
    assert serials.count(None) == 1  # the delete marker is part of the history


def test_current_version_excluded_from_history(s3) -> None:
    s3.put_bucket_versioning(Bucket="tfstate-bucket", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="tfstate-bucket", Key="prod/terraform.tfstate", Body=_state(5))
    s3.put_object(
        Bucket="tfstate-bucket", Key="prod/terraform.tfstate", Body=_state(2)
    )  # an old copy put back
    ev = gather(CONFIG, "default", s3)
    assert ev.current.serial == 2
    assert [st.serial for _, _, st in ev.history] == [5]


def test_unversioned_unlocked_bucket(s3) -> None:
    s3.put_object(Bucket="tfstate-bucket", Key="prod/terraform.tfstate", Body=_state(1))
    ev = gather({**CONFIG, "use_lockfile": False}, "default", s3)
    assert ev.versioning is None and ev.locking is None and ev.history == ()
    assert gather({**CONFIG, "use_lockfile": False, "dynamodb_table": "locks"}, "default", s3).locking == (
        "dynamodb_table:locks"
    )


def test_workspace_keys() -> None:
    assert state_key(CONFIG, "default") == "prod/terraform.tfstate"
    assert state_key(CONFIG, "staging") == "env:/staging/prod/terraform.tfstate"
    assert (
        state_key({**CONFIG, "workspace_key_prefix": "ws"}, "staging") == "ws/staging/prod/terraform.tfstate"
    )


def test_missing_bucket_and_unreadable_state_are_errors(s3) -> None:
    with pytest.raises(TfgateError, match="NoSuchBucket"):
        gather({**CONFIG, "bucket": "nope"}, "default", s3)
    s3.put_object(Bucket="tfstate-bucket", Key="prod/terraform.tfstate", Body=b"{not json")
    with pytest.raises(TfgateError, match="not a readable Terraform state"):
        gather(CONFIG, "default", s3)
