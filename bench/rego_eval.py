"""Evaluate bench/policy.rego on a plan with regopy (the Rego baseline of bench/run.py).

    python bench/rego_eval.py PLAN.json bench/manifest-50.yaml
Prints the number of denied addresses."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml
from regopy import Interpreter


def _escape(pattern: str) -> str:
    # Rego's glob treats [ { as class/alternative openers; tfgate's address globs treat them literally.
    # regopy's glob ignores backslash escapes, so each becomes a one-character class.
    return re.sub(r"([\[{])", r"[\1]", pattern)


def _rules(manifest: Path) -> list[dict]:
    rules = yaml.safe_load(manifest.read_text())["protect"]
    for rule in rules:
        m = rule["match"]
        for key in ("address", "type", "module"):
            if key in m:
                m[key] = [_escape(p) for p in ([m[key]] if isinstance(m[key], str) else m[key])]
        if "tags" in m:
            m["tags"] = {
                k: [_escape(p) for p in ([v] if isinstance(v, str) else v)] for k, v in m["tags"].items()
            }
    return rules


CHUNK = 2000  # regopy 1.5 fails ("<error>") on inputs of more than about 5,000 resource changes


def main() -> None:
    plan, manifest = Path(sys.argv[1]), Path(sys.argv[2])
    catalog = yaml.safe_load((Path(__file__).parent.parent / "rules" / "catalog.yaml").read_text())["types"]
    rego = Interpreter()
    rego.add_module("tfgate", (Path(__file__).parent / "policy.rego").read_text())
    # The rules go in with the input: regopy 1.5 keeps JSON escapes such as \" raw in strings given as
    # data, so patterns with quoted for_each keys would never match.
    rules = _rules(manifest)
    rego.add_data_json(json.dumps({"catalog": {t: [v["kind"], *v["classes"]] for t, v in catalog.items()}}))
    changes = json.loads(plan.read_bytes()).get("resource_changes", [])
    denied = 0
    for start in range(0, max(len(changes), 1), CHUNK):
        rego.set_input({"rules": rules, "resource_changes": changes[start : start + CHUNK]})
        text = str(rego.query("n := count(data.tfgate.deny)"))
        if not text.startswith("{"):
            raise SystemExit(f"rego failed: {text[:300]}")
        denied += json.loads(text)["bindings"]["n"]
    print(denied)


if __name__ == "__main__":
    main()
