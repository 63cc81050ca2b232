"""What identity protection and the coverage check cost on a large state (issue 12), in-process:

    python bench/state_objects.py [--objects 20000] [--runs 5]

Times (median of --runs): parsing the state, decoding its objects' identities (tfgate.state.objects), the
coverage check of a two-rule manifest (one rule matching nothing: the full scan), and the ledger's protected
entries (a tag rule matching every object). `tfgate check` pays the first three when the manifest has rules
and the state is non-empty; an allowed run pays the last when it writes the ledger.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfgate.model import PlanInfo
from tfgate.plan.common import LoadedPlan
from tfgate.policy.catalog import load_catalog
from tfgate.policy.manifest import parse_manifest
from tfgate.state.objects import coverage, protected_entries, state_objects
from tfgate.state.tfstate import parse_state

MANIFEST = b"""version: 1
protect:
  - name: nothing
    match: {type: aws_db_instance}
  - name: prod
    match: {tags: {Env: prod}}
"""


def state_bytes(n: int) -> bytes:
    provider = 'provider["registry.terraform.io/hashicorp/aws"]'
    resources = [
        {"mode": "managed", "type": "aws_instance", "name": f"r{i}", "provider": provider,
         "instances": [{"schema_version": 1, "sensitive_attributes": [],
                        "attributes": {"id": str(uuid.uuid4()), "arn": f"arn:aws:ec2:eu-west-1:1:instance/{i}",
                                       "ami": "ami-" + "0" * 200, "tags": {"Env": "prod"}}}]}
        for i in range(n)
    ]  # fmt: skip
    return json.dumps({"version": 4, "lineage": "l", "serial": 3, "resources": resources}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = state_bytes(args.objects)
    manifest = parse_manifest(MANIFEST, Path("bench.yaml"))
    plan = LoadedPlan(PlanInfo("bench", "show-json", "1.2", "1.15.5", "sha256:0"), (), False)
    catalog = load_catalog()
    times: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        times.setdefault(name, []).append(time.perf_counter() - start)
        return out

    for _ in range(args.runs):
        state = timed("parse_state", lambda: parse_state(data, "bench"))
        objects = timed("state_objects", lambda: tuple(state_objects(state)))  # noqa: B023
        timed("coverage", lambda: coverage(manifest, objects, plan))  # noqa: B023
        timed("protected_entries", lambda: protected_entries(objects, manifest, catalog, {}, False))  # noqa: B023
    print(f"{args.objects} objects, median of {args.runs} runs (seconds)")
    for name, values in times.items():
        print(f"  {name:<18} {statistics.median(values):.3f}")


if __name__ == "__main__":
    main()
