"""Evidence from an S3 state backend through boto3: the state object, its version history, bucket
versioning and locking. Credentials and region come the standard boto3 way; `endpoints.s3` / `endpoint`
and `use_path_style` / `force_path_style` from the backend configuration are honoured (S3-compatible stores)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfgate.errors import TfgateError
from tfgate.state.tfstate import StateInfo, parse_state

MAX_VERSIONS = 20


@dataclass(frozen=True)
class S3Evidence:
    bucket: str
    key: str
    current: StateInfo | None
    current_version: str | None
    #: Earlier versions, newest first: (version id, last modified ISO time, state or None for a delete marker).
    history: tuple[tuple[str, str, StateInfo | None], ...]
    versioning: str | None
    locking: str | None  # "use_lockfile", "dynamodb_table:NAME" or None


def state_key(config: dict[str, Any], workspace: str) -> str:
    key = str(config.get("key", "terraform.tfstate"))
    if workspace == "default":
        return key
    return f"{config.get('workspace_key_prefix', 'env:')}/{workspace}/{key}"


def client(config: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    endpoints = config.get("endpoints") or {}
    endpoint = (endpoints.get("s3") if isinstance(endpoints, dict) else None) or config.get("endpoint")
    path_style = bool(config.get("use_path_style") or config.get("force_path_style"))
    session = boto3.Session(profile_name=config.get("profile")) if config.get("profile") else boto3.Session()
    return session.client(
        "s3",
        region_name=config.get("region"),
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path" if path_style else "auto"}, retries={"max_attempts": 3}),
    )


def gather(config: dict[str, Any], workspace: str, s3: Any = None) -> S3Evidence:
    """Read the evidence; access problems are errors (exit 2): tfgate cannot vouch for a state it cannot see."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = str(config.get("bucket", ""))
    if not bucket:
        raise TfgateError("s3 backend without a bucket (partial configuration?): run terraform init first")
    key = state_key(config, workspace)
    s3 = s3 or client(config)
    where = f"s3://{bucket}/{key}"
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        current, current_version = None, None
        try:
            obj = s3.get_object(Bucket=bucket, Key=key)
            current = parse_state(obj["Body"].read(), where)
            current_version = obj.get("VersionId")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
        history: list[tuple[str, str, StateInfo | None]] = []
        if versioning in ("Enabled", "Suspended"):
            listing = s3.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=MAX_VERSIONS + 1)
            entries = [(v, False) for v in listing.get("Versions", []) if v["Key"] == key]
            entries += [(m, True) for m in listing.get("DeleteMarkers", []) if m["Key"] == key]
            entries.sort(key=lambda e: e[0]["LastModified"], reverse=True)
            for item, is_marker in entries[:MAX_VERSIONS]:
                vid = item.get("VersionId") or "null"
                if vid == current_version:
                    continue
                state = None
                if not is_marker:
                    body = s3.get_object(Bucket=bucket, Key=key, VersionId=vid)["Body"].read()
                    state = parse_state(body, f"{where}?versionId={vid}")
                history.append((vid, item["LastModified"].isoformat(), state))
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise TfgateError(
            f"{where}: {err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
        ) from None
    except BotoCoreError as exc:
        raise TfgateError(f"{where}: {exc}") from None
    locking = None
    if config.get("use_lockfile"):
        locking = "use_lockfile"
    elif config.get("dynamodb_table"):
        locking = f"dynamodb_table:{config['dynamodb_table']}"
    return S3Evidence(bucket, key, current, current_version, tuple(history), versioning, locking)


def read_current(config: dict[str, Any], workspace: str) -> tuple[bytes | None, str]:
    """The current state object's bytes (None when there is none) and its s3:// address."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = str(config.get("bucket", "")), state_key(config, workspace)
    where = f"s3://{bucket}/{key}"
    try:
        return client(config).get_object(Bucket=bucket, Key=key)["Body"].read(), where
    except ClientError as exc:
        err = exc.response.get("Error", {})
        if err.get("Code") in ("NoSuchKey", "404"):
            return None, where
        raise TfgateError(
            f"{where}: {err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
        ) from None
    except BotoCoreError as exc:
        raise TfgateError(f"{where}: {exc}") from None


def ledger_key(evidence: S3Evidence) -> str:
    return f"{evidence.key}.tfgate-ledger.json"


def read_ledger_object(config: dict[str, Any], evidence: S3Evidence) -> bytes | None:
    """The ledger object next to the state, or None when there is none yet."""
    from botocore.exceptions import ClientError

    try:
        return client(config).get_object(Bucket=evidence.bucket, Key=ledger_key(evidence))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise TfgateError(f"s3://{evidence.bucket}/{ledger_key(evidence)}: {exc}") from None


def write_ledger_object(config: dict[str, Any], evidence: S3Evidence, data: bytes) -> None:
    client(config).put_object(Bucket=evidence.bucket, Key=ledger_key(evidence), Body=data)
