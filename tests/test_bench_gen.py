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
