"""The benchmark's synthetic plans: both forms describe one change set, and tfgate reads them alike."""

from __future__ import annotations

import sys
from pathlib import Path

from tfgate.plan.loader import load_plan
from tfgate.policy.catalog import load_catalog
from tfgate.policy.manifest import load_manifest

from .conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from gen_plans import write


def test_show_json_and_stream_agree(tmp_path: Path) -> None:
    show, stream = write(400, tmp_path)
    a = load_plan(show, catalog=load_catalog())
    b = load_plan(stream, catalog=load_catalog())
    classes_a = {
        c.address: c.change_class
        for c in a.changes
        if c.change_class.value != "no_op" or c.moved or c.importing
    }
    classes_b = {c.address: c.change_class for c in b.changes}
    assert classes_a == classes_b
    kinds = {c.change_class.value for c in a.changes}
    assert {"create", "update", "delete", "replace", "forget", "no_op"} <= kinds
    assert any(c.replace_order == "create_first" for c in a.changes)
    assert any(c.moved for c in a.changes) and any(c.importing for c in a.changes)
    assert any('\\"' in c.address for c in a.changes)  # for_each keys with quotes
    assert 1000 < show.stat().st_size / 400 < 4000  # about 1-2 KB of before/after per change


def test_manifest_50_is_valid_and_fires() -> None:
    manifest = load_manifest(REPO / "bench" / "manifest-50.yaml")
    assert len(manifest.rules) == 50
    assert any(r.uses_tags for r in manifest.rules)


def test_deterministic(tmp_path: Path) -> None:
    a, _ = write(50, tmp_path / "a")
    b, _ = write(50, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_monorepo_shape(tmp_path: Path) -> None:
    """bench/gen_monorepo.py: the shape issue 16 measured (half no-ops with values, a third in nested module
    instances, keys with dots, slashes, brackets and quotes, tags everywhere, ~1.9 KB per change)."""
    from gen_monorepo import write as write_monorepo

    n = 3000
    path = write_monorepo(n, tmp_path)
    plan = load_plan(path, catalog=load_catalog())
    changes = plan.changes
    assert len({c.address for c in changes}) == n
    no_ops = sum(c.change_class.value == "no_op" for c in changes)
    assert 0.45 < no_ops / n < 0.55
    nested = [c for c in changes if (c.module_address or "").count("module.") >= 2]
    assert 0.28 < len(nested) / n < 0.38 and len({c.module_address for c in nested}) > 300
    keys = "".join(c.address for c in changes)
    assert all(ch in keys for ch in (".", "/", "[", '\\"'))
    assert any(c.change_class.value == "delete" for c in changes)
    assert all("tags" in dict(c.prior) for c in changes if c.change_class.value == "delete")
    assert 1700 < path.stat().st_size / n < 2100
    assert write_monorepo(n, tmp_path / "again").read_bytes() == path.read_bytes()  # deterministic
