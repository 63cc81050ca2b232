"""Generate `terraform show -json` plans shaped like a big monorepo (issue 16).

    python bench/gen_monorepo.py --sizes 10000,100000 [--depth 2] [--noop-share 0.5] [--value-bytes 850]

The shape, every part a parameter: half the changes are no-ops that still carry their full ``before`` and
``after`` (equal), a third sit in nested module instances such as ``module.svc["team-7.3"].module.stack[2]``
(thousands of distinct instances, ``--depth`` levels deep, for_each keys with dots, slashes, brackets and
quotes), a third in one-level module instances, the rest at the root; tags on every object; about 1.9 KB
per change at the default ``--value-bytes``; every address unique; JSON text (IAM-policy-like) inside
some values. A few percent of the changes are
destroys and replaces of data-bearing types; some no-ops were moved (``previous_address``) or imported.
Written compactly and sorted by address, as Terraform writes it. Deterministic (seeded).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TYPES = [
    ("aws_instance", "registry.terraform.io/hashicorp/aws"),
    ("aws_s3_bucket", "registry.terraform.io/hashicorp/aws"),
    ("aws_db_instance", "registry.terraform.io/hashicorp/aws"),
    ("aws_security_group", "registry.terraform.io/hashicorp/aws"),
    ("aws_iam_role", "registry.terraform.io/hashicorp/aws"),
    ("aws_iam_role_policy_attachment", "registry.terraform.io/hashicorp/aws"),
    ("aws_route53_record", "registry.terraform.io/hashicorp/aws"),
    ("aws_dynamodb_table", "registry.terraform.io/hashicorp/aws"),
    ("aws_lambda_function", "registry.terraform.io/hashicorp/aws"),
    ("aws_cloudwatch_log_group", "registry.terraform.io/hashicorp/aws"),
    ("google_storage_bucket", "registry.terraform.io/hashicorp/google"),
    ("google_sql_database_instance", "registry.terraform.io/hashicorp/google"),
    ("azurerm_storage_account", "registry.terraform.io/hashicorp/azurerm"),
]
#: for_each key shapes: dots, slashes, brackets, quotes, plain.
KEY_SHAPES = {
    "mixed": (
        "team-{a}.{b}",
        "svc/{a}/v{b}",
        "arr[{a}]",
        'say "{a}"',
        "plain{a}-{b}",
        "eu-west-{b}.{a}",
        "path/to/{a}.json",
    ),
    "plain": ("k{a}-{b}",),
}
ENVS = ("production", "staging", "dev", "sandbox")


@dataclass(frozen=True)
class Shape:
    """What a generated monorepo plan looks like."""

    depth: int = 2  # module levels of the nested third (1 = one level)
    noop_share: float = 0.5
    nested_share: float = 1 / 3
    value_bytes: int = 850  # roughly the size of one object's attributes
    keys: str = "mixed"


def _key(shape: Shape, a: int) -> str:
    """A for_each key, the same for the same number."""
    shapes = KEY_SHAPES[shape.keys]
    return shapes[a % len(shapes)].format(a=a, b=a * 31 % 10)


def _module(shape: Shape, i: int) -> str | None:
    """The module instance of change i: nested (thousands of instances), one level, or the root."""
    r = (i * 7919) % 1000 / 1000
    if r < shape.nested_share:
        inst = i // 8  # about 8 resources per nested instance
        parts = [f"module.svc[{json.dumps(_key(shape, inst % 997))}]"]
        for level in range(1, shape.depth):
            parts.append(f"module.stack{level if level > 1 else ''}[{(inst // 997 + level) % 5}]")
        return ".".join(parts)
    if r < shape.nested_share + (1 - shape.nested_share) / 2:
        return f"module.app[{json.dumps(_key(shape, i % 61))}]"
    return None


def _attrs(rng: random.Random, i: int, rtype: str, env: str, size: int) -> dict[str, Any]:
    """One object's attributes, about `size` bytes as compact JSON, tags included."""
    attrs: dict[str, Any] = {
        "id": f"{rtype[:3]}-{i:08x}",
        "arn": f"arn:aws:service:eu-west-1:123456789012:{rtype}/{i}",
        "name": f"{rtype}-{i}",
        "tags": {
            "Environment": env,
            "Team": ("core", "data", "web", "platform")[i % 4],
            "CostCenter": str(1000 + i % 97),
            "Owner": f"owner-{i % 13}@example.com",
        },
        "tags_all": {"Environment": env, "ManagedBy": "terraform", "Repo": "monorepo"},
        "deletion_protection": env == "production",
        "timeouts": None,
    }
    if i % 5 == 0:  # JSON text inside a value, as IAM policies are (`": ` and `", "` inside a string)
        attrs["policy"] = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:List*"]}],
            }
        )
    base = len(json.dumps(attrs, separators=(",", ":")))
    blocks = max(0, (size - base) // 140)
    attrs["rule"] = [
        {
            "from_port": 1000 + b,
            "protocol": "tcp",
            "cidr_blocks": [f"10.{b}.0.0/16"],
            "description": f"rule {b} of {rtype} {i % 17}",
            "enabled": b % 2 == 0,
        }
        for b in range(blocks)
    ]
    pad = size - len(json.dumps(attrs, separators=(",", ":"))) - 16
    if pad > 0:
        attrs["user_data"] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(pad))
    return attrs


def _actions(rng: random.Random, shape: Shape) -> tuple[list[str], str | None]:
    r = rng.random()
    if r < shape.noop_share:
        return ["no-op"], None
    r = (r - shape.noop_share) / (1 - shape.noop_share)  # spread the rest
    if r < 0.04:
        return ["delete"], "delete_because_no_resource_config"
    if r < 0.07:
        return ["delete", "create"], "replace_because_cannot_update"
    if r < 0.08:
        return ["create", "delete"], "replace_by_triggers"
    if r < 0.09:
        return ["forget"], "delete_because_no_resource_config"
    if r < 0.50:
        return ["create"], None
    return ["update"], None


def generate(n: int, shape: Shape = Shape(), seed: int = 16) -> dict[str, Any]:
    """The show-json document of n changes of this shape."""
    rng = random.Random(seed)
    changes: list[dict[str, Any]] = []
    for i in range(n):
        rtype, provider = TYPES[i % len(TYPES)]
        module = _module(shape, i)
        name = f"r{i % 40}"
        index: Any = i if i % 2 else _key(shape, i)  # the key makes the address unique
        local = f"{rtype}.{name}[{json.dumps(index)}]"
        address = f"{module}.{local}" if module else local
        env = ENVS[i % len(ENVS)]
        actions, reason = _actions(rng, shape)
        before = None if actions == ["create"] else _attrs(rng, i, rtype, env, shape.value_bytes)
        after: dict[str, Any] | None
        if actions in (["delete"], ["forget"]):
            after = None
        elif before is None:
            after = _attrs(rng, i, rtype, env, shape.value_bytes)
        else:
            after = dict(before)
            if actions != ["no-op"]:
                after["tags"] = {**before["tags"], "Version": str(i)}
        rc: dict[str, Any] = {
            "address": address,
            "mode": "managed",
            "type": rtype,
            "name": name,
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
        if module:
            rc["module_address"] = module
        if reason:
            rc["action_reason"] = reason
        if actions == ["no-op"] and i % 97 == 0:
            rc["previous_address"] = f"{module}.{rtype}.old_{i}" if module else f"{rtype}.old_{i}"
        if actions == ["no-op"] and i % 89 == 0:
            rc["change"]["importing"] = {"id": f"import-{i}"}
        changes.append(rc)
    changes.sort(key=lambda rc: rc["address"])
    return {
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
        "timestamp": "2026-12-01T21:00:00Z",
        "applyable": True,
        "complete": True,
        "errored": False,
    }


def write(n: int, out: Path, shape: Shape = Shape(), seed: int = 16) -> Path:
    """Write ``monorepo-N.json`` (compact, as Terraform writes it) and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"monorepo-{n}.json"
    path.write_text(json.dumps(generate(n, shape, seed), separators=(",", ":")))
    return path


def shape_args(ap: argparse.ArgumentParser) -> None:
    d = Shape()
    ap.add_argument("--depth", type=int, default=d.depth, help="module levels of the nested share")
    ap.add_argument("--noop-share", type=float, default=d.noop_share)
    ap.add_argument("--nested-share", type=float, default=d.nested_share)
    ap.add_argument("--value-bytes", type=int, default=d.value_bytes, help="bytes of one object's values")
    ap.add_argument("--keys", choices=sorted(KEY_SHAPES), default=d.keys, help="for_each key shapes")


def shape_of(args: argparse.Namespace) -> Shape:
    return Shape(args.depth, args.noop_share, args.nested_share, args.value_bytes, args.keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--seed", type=int, default=16)
    shape_args(ap)
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        path = write(n, args.out, shape_of(args), args.seed)
        size = path.stat().st_size
        print(f"{n:>7} changes: {path} ({size / 1e6:.1f} MB, {size / n:.0f} bytes per change)")


if __name__ == "__main__":
    main()
