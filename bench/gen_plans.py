"""Generate realistic synthetic Terraform plans for benchmarks, in both forms of one change set:
`terraform show -json` (format 1.2) and the `terraform plan -json` stream.

    python bench/gen_plans.py --sizes 1000,10000,100000 --out bench/out

Deterministic (seeded). Changes spread over nested module instances with for_each string keys (some with
dots, brackets and quotes) and count indexes; AWS/GCP/Azure types, data-bearing ones included; about 1-2 KB
of before/after per change; a few percent deletes and replaces (both orders), some forgets, moves and
imports; the rest creates, updates and no-ops.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

TYPES = [
    ("aws_instance", "registry.terraform.io/hashicorp/aws"),
    ("aws_s3_bucket", "registry.terraform.io/hashicorp/aws"),
    ("aws_db_instance", "registry.terraform.io/hashicorp/aws"),
    ("aws_security_group", "registry.terraform.io/hashicorp/aws"),
    ("aws_iam_role", "registry.terraform.io/hashicorp/aws"),
    ("aws_dynamodb_table", "registry.terraform.io/hashicorp/aws"),
    ("aws_lambda_function", "registry.terraform.io/hashicorp/aws"),
    ("google_storage_bucket", "registry.terraform.io/hashicorp/google"),
    ("google_compute_instance", "registry.terraform.io/hashicorp/google"),
    ("google_sql_database_instance", "registry.terraform.io/hashicorp/google"),
    ("azurerm_storage_account", "registry.terraform.io/hashicorp/azurerm"),
    ("azurerm_linux_virtual_machine", "registry.terraform.io/hashicorp/azurerm"),
    ("azurerm_mssql_database", "registry.terraform.io/hashicorp/azurerm"),
]
KEYS = ["eu-west-1", "us.east", 'key["q"]', "app[0]", "payments", "search", "a.b.c", "plain"]
ENVS = ["production", "staging", "dev"]


def _attrs(rng: random.Random, i: int, rtype: str, env: str) -> dict[str, Any]:
    """About 1.5 KB of attributes: ids, tags, nested blocks, a long string."""
    return {
        "id": f"{rtype[:3]}-{i:08x}",
        "arn": f"arn:aws:service:eu-west-1:123456789012:{rtype}/{i}",
        "name": f"{rtype}-{i}",
        "tags": {
            "Environment": env,
            "Team": rng.choice(["core", "data", "web"]),
            "CostCenter": str(1000 + i % 97),
            "Owner": f"owner-{i % 13}@example.com",
            "Service": f"svc-{i % 31}",
        },
        "tags_all": {"Environment": env, "ManagedBy": "terraform"},
        "deletion_protection": env == "production",
        "settings": [
            {
                "tier": "db-custom-2-7680",
                "disk_size": 100 + i % 50,
                "ip_configuration": [
                    {"ipv4_enabled": False, "private_network": f"projects/p/global/networks/n{i % 7}"}
                ],
                "backup_configuration": [{"enabled": True, "start_time": "03:00"}],
            }
        ],
        "ingress": [
            {
                "from_port": p,
                "to_port": p,
                "protocol": "tcp",
                "cidr_blocks": ["10.0.0.0/8"],
                "description": f"allow {p} from the internal network",
            }
            for p in (22, 5432)
        ],
        "user_data": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(120)),
        "timeouts": None,
    }


def _actions(rng: random.Random) -> tuple[list[str], str | None]:
    r = rng.random()
    if r < 0.02:
        return ["delete"], "delete_because_no_resource_config"
    if r < 0.035:
        return ["delete", "create"], "replace_because_cannot_update"
    if r < 0.04:
        return ["create", "delete"], "replace_by_triggers"
    if r < 0.045:
        return ["forget"], "delete_because_no_resource_config"
    if r < 0.35:
        return ["create"], None
    if r < 0.65:
        return ["update"], None
    return ["no-op"], None


def generate(n: int, seed: int = 42) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The show-json document and the stream messages for one synthetic change set of n changes."""
    rng = random.Random(seed)
    changes: list[dict[str, Any]] = []
    stream: list[dict[str, Any]] = [
        {
            "@level": "info",
            "@message": "Terraform 1.15.5",
            "@module": "terraform.ui",
            "terraform": "1.15.5",
            "type": "version",
            "ui": "1.2",
        }
    ]
    summary = {"add": 0, "change": 0, "remove": 0, "import": 0, "action_invocation": 0, "operation": "plan"}
    for i in range(n):
        rtype, provider = TYPES[i % len(TYPES)]
        outer = json.dumps(KEYS[i % len(KEYS)])
        module = f"module.region[{outer}].module.tier[{i % 4}]"
        if i % 3 == 0:
            index: Any = f"item.{i}"
            local = f"{rtype}.r{i % 50}[{json.dumps(index)}]"
        else:
            index = i
            local = f"{rtype}.r{i % 50}[{index}]"
        address = f"{module}.{local}"
        env = ENVS[i % len(ENVS)]
        actions, reason = _actions(rng)
        before = None if actions == ["create"] else _attrs(rng, i, rtype, env)
        after = (
            None
            if actions in (["delete"], ["forget"])
            else (before and dict(before)) or _attrs(rng, i, rtype, env)
        )
        if actions == ["update"] and after is not None:
            after["tags"] = {**after["tags"], "Version": str(i)}
        rc: dict[str, Any] = {
            "address": address,
            "module_address": module,
            "mode": "managed",
            "type": rtype,
            "name": f"r{i % 50}",
            "index": index,
            "provider_name": provider,
            "change": {
                "actions": actions,
                "before": before,
                "after": after,
                "after_unknown": {"id": True} if "create" in actions else {},
                "before_sensitive": {"user_data": True} if before else False,
                "after_sensitive": {"user_data": True} if after else False,
            },
        }
        if reason:
            rc["action_reason"] = reason
        moved = actions == ["no-op"] and i % 97 == 0
        importing = actions == ["no-op"] and i % 89 == 0
        if moved:
            rc["previous_address"] = f"{module}.{rtype}.old_{i}"
        if importing:
            rc["change"]["importing"] = {"id": f"import-{i}"}
        changes.append(rc)
        word = {"create": "create", "update": "update", "delete": "delete", "forget": "remove"}.get(
            actions[0] if len(actions) == 1 else "", "replace" if len(actions) == 2 else ""
        )
        if actions == ["no-op"]:
            word = "move" if moved else ("import" if importing else "")
        if not word:
            continue
        res = {
            "addr": address,
            "module": module,
            "resource": local,
            "implied_provider": provider.rsplit("/", 1)[1],
            "resource_type": rtype,
            "resource_name": f"r{i % 50}",
            "resource_key": index,
        }
        change: dict[str, Any] = {"resource": res, "action": word}
        if reason:
            change["reason"] = {
                "replace_by_triggers": "replace_triggered_by",
                "replace_because_cannot_update": "cannot_update",
            }.get(reason, reason)
        if moved:
            change["previous_resource"] = {**res, "addr": rc["previous_address"]}
        if importing:
            change["importing"] = {"id": f"import-{i}"}
        stream.append(
            {
                "@level": "info",
                "@message": f"{address}: Plan to {word}",
                "@module": "terraform.ui",
                "@timestamp": "2026-11-24T21:00:00.000000Z",
                "change": change,
                "type": "planned_change",
            }
        )
        summary["add"] += word in ("create", "replace")
        summary["change"] += word == "update"
        summary["remove"] += word in ("delete", "replace")
        summary["import"] += importing
    stream.append(
        {
            "@level": "info",
            "@message": "Plan: ...",
            "@module": "terraform.ui",
            "changes": summary,
            "type": "change_summary",
        }
    )
    # `terraform show -json` lists resource changes sorted by address (then deposed key); the stream
    # reports them in the order the graph walk plans them.
    changes.sort(key=lambda rc: (rc["address"], rc.get("deposed") or ""))
    doc = {
        "format_version": "1.2",
        "terraform_version": "1.15.5",
        "planned_values": {"root_module": {}},
        "resource_changes": changes,
        "prior_state": {
            "format_version": "1.0",
            "terraform_version": "1.15.5",
            "values": {"root_module": {"resources": [{"address": "aws_s3_bucket.state"}]}},
        },
        "configuration": {"root_module": {}},
        "timestamp": "2026-11-24T21:00:00Z",
        "applyable": True,
        "complete": True,
        "errored": False,
    }
    return doc, stream


def write(n: int, out: Path, seed: int = 42) -> tuple[Path, Path]:
    doc, stream = generate(n, seed)
    out.mkdir(parents=True, exist_ok=True)
    show = out / f"plan-{n}.json"
    show.write_text(json.dumps(doc, separators=(",", ":")))
    lines = out / f"plan-{n}.jsonl"
    lines.write_text("".join(json.dumps(m, separators=(",", ":")) + "\n" for m in stream))
    return show, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        show, lines = write(n, args.out, args.seed)
        print(
            f"{n:>7} changes: {show} ({show.stat().st_size / 1e6:.1f} MB), {lines} ({lines.stat().st_size / 1e6:.1f} MB)"
        )


if __name__ == "__main__":
    main()
