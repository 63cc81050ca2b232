"""The way out of a block: the exact `tfgate approve` command for this plan, where approvals go and what to
run once they are there. A pure function of the result, the manifest and how the check was invoked; every
report presents it and none re-derives it."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path

from tfgate.model import NeededApproval, Result, Verdict, WayOut
from tfgate.paths import shown
from tfgate.policy.manifest import Manifest

#: Where approvals go when the check was given no approvals directory (what `tfgate init` creates).
APPROVALS_DIR = "approvals"


@dataclass(frozen=True)
class Invocation:
    """How the blocked check was run: resolved paths (or None where tfgate chose), from directory `cwd`."""

    plan: str
    workdir: Path
    cwd: Path
    manifest: Path | None = None
    workspace: str | None = None
    terraform: str | None = None
    input_format: str | None = None
    approvals: tuple[Path, ...] = ()
    #: What runs the plan once approved: "check" re-checks it, "apply" applies it.
    then: str = "check"


def approvals_dir(inv: Invocation) -> Path:
    """The first approvals directory the check was given, else WORKDIR/approvals."""
    for path in inv.approvals:
        if path.is_dir() or not path.suffix:
            return path
    return inv.workdir / APPROVALS_DIR


def way_out(result: Result, manifest: Manifest, inv: Invocation) -> WayOut | None:
    """None when the result is allowed; otherwise what to sign, by whom, and what to run then."""
    if result.verdict is not Verdict.BLOCK:
        return None
    common = []
    if shown(inv.workdir, inv.cwd) != ".":
        common += ["-C", shown(inv.workdir, inv.cwd)]
    common.append(inv.plan if inv.plan == "-" else shown(inv.plan, inv.workdir))
    for flag, value in (
        ("--manifest", inv.manifest and shown(inv.manifest, inv.workdir)),
        ("--workspace", inv.workspace),
        ("--terraform", inv.terraform),
    ):
        if value:
            common += [flag, value]
    # `tfgate apply` takes only a saved plan, and no --input-format (it would be an argument error).
    form = ["--input-format", inv.input_format] if inv.input_format else []
    target = shown(approvals_dir(inv), inv.workdir).rstrip("/") + "/"
    rules = {r.name: r for r in manifest.rules}
    needed: dict[str, tuple[int, list[str]]] = {}
    for v in result.blocked_violations:
        more, addresses = needed.get(v.rule, (0, []))
        needed[v.rule] = (max(more, v.approvals_required - len(v.counted_by)), [*addresses, v.address])
    approve = None
    if needed:
        approve = shlex.join(
            ["tfgate", "approve", *common, *form, "--signer", "SIGNER", "--key", "KEY", "--reason", "REASON",
             "--output", target]
        )  # fmt: skip
    then = shlex.join(
        ["tfgate", inv.then, *common, *(form if inv.then != "apply" else []), "--approvals", target]
    )
    return WayOut(
        approve=approve,
        approvals_dir=target,
        then=then,
        needed=tuple(
            NeededApproval(
                rule=name,
                still_needed=more,
                approvers=rules[name].approvers if name in rules else (),
                addresses=tuple(dict.fromkeys(addresses)),
            )
            for name, (more, addresses) in needed.items()
        ),
        not_approvable=tuple(f"{f.code}: {f.message}" for f in result.findings if f.blocks),
    )


def with_way_out(result: Result, manifest: Manifest, inv: Invocation | None) -> Result:
    """The result carrying its way out (unchanged when allowed or when there is no invocation)."""
    if inv is None or result.verdict is not Verdict.BLOCK:
        return result
    return dataclasses.replace(result, way_out=way_out(result, manifest, inv))
