"""The show-json loader's fast paths give what the slow ones give, and refuse what they refuse.

Each shortcut of issue 16 (ASCII scan before the UTF-8 decode, sorted-order duplicate check, raw digest of
compact values, changes built from their non-default fields, pages handed back while reading) is checked
here against the input that would slip through if the shortcut were wrong."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

import tfgate.plan.changes as changes_mod
import tfgate.plan.loader as loader
from tfgate.errors import PlanError
from tfgate.model import Change, ChangeClass, Risk, SafetyNetRemoval, replace_change
from tfgate.plan.digest import is_compact
from tfgate.plan.loader import load_plan
from tfgate.policy.catalog import load_catalog


def rc(address: str, actions: list, before: object = None, after: object = None) -> dict:
    typ, name = address.split(".")[-2:]
    return {
        "address": address,
        "mode": "managed",
        "type": typ,
        "name": name.split("[")[0],
        "change": {"actions": actions, "before": before, "after": after},
    }


def doc(*changes: dict) -> dict:
    return {"format_version": "1.2", "resource_changes": list(changes)}


def write(path: Path, data: dict | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode())
    return path


def test_change_is_immutable_and_compares_by_its_fields() -> None:
    """Change is a frozen msgspec Struct (issue 16: built from positional fields, no instance dict): it must
    still behave as the frozen model the rest of tfgate reads."""
    given = {
        "address": "aws_s3_bucket.b",
        "mode": "managed",
        "type": "aws_s3_bucket",
        "name": "b",
        "module_address": None,
        "index": None,
        "provider": "p",
        "actions": ("update",),
        "change_class": ChangeClass.UPDATE,
        "safety_nets": (SafetyNetRemoval("force_destroy", False, True, "d"),),
        "risk": Risk.HIGH,
    }
    one, two = Change(**given), Change(**given)
    assert one == two and hash(one) == hash(two) and repr(one) == repr(two)
    assert one.prior == () and one.deposed is None and one.protected_by == () and one.risk is Risk.HIGH
    assert replace_change(one, risk=Risk.LOW) == replace_change(two, risk=Risk.LOW) != one
    assert replace_change(one, risk=Risk.LOW).risk is Risk.LOW and one.risk is Risk.HIGH
    assert one != replace_change(one, deposed="00aa")
    with pytest.raises(AttributeError):
        one.address = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Change(address="a.b")  # type: ignore[call-arg]


@pytest.mark.parametrize("order", ["a b a", "b a b", "a a", "a b c b", "c a b a"])
def test_duplicates_are_refused_in_any_order(tmp_path: Path, order: str) -> None:
    changes = [rc(f"aws_s3_bucket.{n}", ["delete"], {"id": n}) for n in order.split()]
    with pytest.raises(PlanError, match="duplicate resource change for address aws_s3_bucket"):
        load_plan(write(tmp_path / "p.json", doc(*changes)))


def test_sorted_and_unsorted_plans_classify_and_hash_alike(tmp_path: Path) -> None:
    changes = [rc(f"aws_s3_bucket.b{i:03d}", ["no-op"], {"id": i}, {"id": i}) for i in range(300)]
    a = load_plan(write(tmp_path / "a.json", doc(*changes)))
    shuffled = changes[:]
    random.Random(1).shuffle(shuffled)
    b = load_plan(write(tmp_path / "b.json", doc(*shuffled)))
    assert a.info.digest == b.info.digest
    assert {c.address for c in a.changes} == {c.address for c in b.changes}


@pytest.mark.parametrize("where", [0, loader._UTF8_CHUNK - 1, loader._UTF8_CHUNK, 3 * loader._UTF8_CHUNK + 7])
def test_utf8_checked_at_and_across_chunk_edges(tmp_path: Path, where: int) -> None:
    """A valid multi-byte character split by a chunk edge is read; a bad byte anywhere is refused, even in
    a value nothing decodes and after many ASCII chunks."""
    head = b'{"format_version":"1.2","resource_changes":[],"pad":"'
    pad = b"x" * (where - len(head)) if where > len(head) else b""
    good = head + pad + "é€𝄞".encode() + b"x" * 1000 + b'"}'
    assert load_plan(write(tmp_path / "good.json", good)).changes == ()
    bad = head + pad + b"\xc3(" + b"x" * 1000 + b'"}'
    with pytest.raises(PlanError, match="not valid UTF-8"):
        load_plan(write(tmp_path / "bad.json", bad))
    cut = head + pad + "é".encode()[:1] + b'"}'  # a character cut short by the string's end
    with pytest.raises(PlanError, match="not valid UTF-8"):
        load_plan(write(tmp_path / "cut.json", cut))


def test_compact_plans_with_json_text_in_strings_hash_like_their_pretty_form(tmp_path: Path) -> None:
    """Values holding JSON text (IAM policies: `": ` and `", "` inside strings) do not make a compact plan
    look pretty-printed; both forms still hash the same, and a change of value still changes the hash."""
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "x"]}]}
    )
    before = {"id": "r", "policy": policy, "tags": {"a b": "c, d"}}
    plan = doc(
        rc("aws_iam_role.r", ["update"], before, {**before, "policy": policy + " "}),
        rc("aws_s3_bucket.b", ["no-op"], before, before),
    )
    compact = write(tmp_path / "c.json", plan)
    assert is_compact(compact.read_bytes())
    pretty = tmp_path / "p.json"
    pretty.write_text(json.dumps(plan, indent=2))
    assert not is_compact(pretty.read_bytes())
    spaced = tmp_path / "s.json"
    spaced.write_text(json.dumps(plan, separators=(", ", ":")))  # no `": `, yet not compact
    assert not is_compact(spaced.read_bytes())
    digests = {load_plan(p).info.digest for p in (compact, pretty, spaced)}
    assert len(digests) == 1
    plan["resource_changes"][1]["change"]["after"] = {**before, "policy": policy.replace("x", "y")}
    assert load_plan(write(tmp_path / "d.json", plan)).info.digest not in digests


def test_a_mapped_plan_reads_the_same_with_its_pages_handed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages released while reading are read back from the file when touched again (the unsorted plan's
    second, sorted hashing pass reads every change again)."""
    net = {"id": "d", "deletion_protection": True, "tags": {"Team": "data"}}
    changes = [
        rc(
            f"aws_db_instance.d{i:05d}",
            ["update"] if i % 5 else ["delete"],
            net,
            {**net, "deletion_protection": i % 2 == 0},
        )
        for i in range(12000)
    ]
    monkeypatch.setattr(changes_mod, "_RELEASE_EVERY", 7)
    sorted_path = write(tmp_path / "s.json", doc(*changes))
    assert sorted_path.stat().st_size >= loader._MAP_AT
    mapped = load_plan(sorted_path, catalog=load_catalog())
    unsorted = load_plan(write(tmp_path / "u.json", doc(*changes[::-1])), catalog=load_catalog())
    monkeypatch.setattr(loader, "_MAP_AT", 1 << 40)
    in_memory = load_plan(sorted_path, catalog=load_catalog())
    assert mapped.info.digest == unsorted.info.digest == in_memory.info.digest
    assert mapped.changes == in_memory.changes
    assert sum(bool(c.safety_nets) for c in mapped.changes) == sum(1 for i in range(12000) if i % 5 and i % 2)
    assert mapped.changes[0].prior == (("id", "d"), ("tags", {"Team": "data"}))


def test_the_digest_is_the_same_whatever_the_blocks_its_thread_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hashing thread gets the changes in blocks: tiny blocks, one block, and the sorted second pass of
    an unsorted plan all give one digest; a plan refused half-way leaves no hashing thread behind."""
    import threading

    import tfgate.plan.digest as digest_mod

    changes = [
        rc(f"aws_s3_bucket.b{i:04d}", ["no-op"], {"id": i, "x": "y" * i}, {"id": i}) for i in range(800)
    ]
    path = write(tmp_path / "p.json", doc(*changes))
    shuffled = write(tmp_path / "u.json", doc(*changes[::-1]))
    digests = set()
    for block in (1, 100, 1 << 40):
        monkeypatch.setattr(digest_mod, "_BLOCK", block)
        digests |= {load_plan(path).info.digest, load_plan(shuffled).info.digest}
    assert len(digests) == 1
    threads = threading.active_count()
    monkeypatch.setattr(digest_mod, "_BLOCK", 1)
    bad = write(
        tmp_path / "bad.json", doc(*changes[:500], rc("aws_s3_bucket.zz", ["explode"]), *changes[500:])
    )
    with pytest.raises(PlanError, match="unknown action list"):
        load_plan(bad)
    assert threading.active_count() == threads


def test_a_failing_hashing_thread_fails_the_load_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should hashing ever fail on the worker thread, the load raises (exit 2 through the CLI) rather than
    wait forever on a full queue or return a digest that misses a block."""
    import tfgate.plan.digest as digest_mod

    class Failing:
        def __init__(self, head: bytes) -> None:
            pass

        def update(self, block: bytes) -> None:
            raise MemoryError("no room")

    monkeypatch.setattr(digest_mod.hashlib, "sha256", Failing)
    monkeypatch.setattr(digest_mod, "_BLOCK", 1)
    changes = [rc(f"aws_s3_bucket.b{i:04d}", ["no-op"], {"id": i}, {"id": i}) for i in range(200)]
    with pytest.raises(RuntimeError, match="plan digest could not be computed"):
        load_plan(write(tmp_path / "p.json", doc(*changes)))


@pytest.mark.parametrize("size", ["small", "mapped"])
def test_a_plan_file_rewritten_while_it_is_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    """What is classified and digested must be one version of the file: a rewrite in place during the read
    (the same size, the same mtime put back) is refused; a file replaced by rename after the read is not
    the file read, and is refused too. A plan nothing writes to loads."""
    n = 12000 if size == "mapped" else 3
    changes = [rc(f"aws_s3_bucket.b{i:05d}", ["no-op"], {"id": i}, {"id": i}) for i in range(n)]
    path = write(tmp_path / "p.json", doc(*changes))
    assert (path.stat().st_size >= loader._MAP_AT) == (size == "mapped")
    assert len(load_plan(path).changes) == n
    real = changes_mod.classify_changes
    for how in ("in place", "renamed"):

        def rewriting(*args: object, how: str = how) -> object:
            out = real(*args)  # type: ignore[arg-type]
            st = path.stat()
            text = path.read_bytes().replace(b'"id":0', b'"id":9', 1)
            if how == "in place":
                with path.open("r+b") as f:
                    f.write(text)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                other = tmp_path / "other.json"
                other.write_bytes(text)
                other.replace(path)
            return out

        monkeypatch.setattr(loader, "classify_changes", rewriting)
        with pytest.raises(PlanError, match="the plan file changed while tfgate read it"):
            load_plan(path)
