"""The msgspec floor: the least a gate must do with a `show -json` plan, as fast as msgspec does it.

    python bench/floor.py PLAN.json

Decodes only address, type, mode, actions, action_reason, previous_address and the prior tags of every
change into typed structs (everything else skipped), then one pass counting destroys of protected
objects (data-bearing types or production tags); prints the count. No checks, no digest, no report.
"""

from __future__ import annotations

import sys

import msgspec

PROTECTED_TYPES = frozenset(
    {"aws_db_instance", "aws_s3_bucket", "aws_dynamodb_table", "google_sql_database_instance"}
)


class Prior(msgspec.Struct, gc=False):
    tags: dict[str, str] | None = None


class Change(msgspec.Struct, gc=False):
    actions: list[str]
    before: Prior | None = None


class ResourceChange(msgspec.Struct, gc=False):
    address: str
    change: Change
    type: str | None = None
    mode: str | None = None
    action_reason: str | None = None
    previous_address: str | None = None


class Plan(msgspec.Struct, gc=False):
    resource_changes: list[ResourceChange] = []


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        plan = msgspec.json.decode(f.read(), type=Plan)
    protected = 0
    for rc in plan.resource_changes:
        if "delete" in rc.change.actions or "forget" in rc.change.actions:
            tags = rc.change.before.tags if rc.change.before else None
            if rc.type in PROTECTED_TYPES or (tags and tags.get("Environment") == "production"):
                protected += 1
    print(protected)


if __name__ == "__main__":
    main()
