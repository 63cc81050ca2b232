"""`tfgate init [DIR]`: a commented tfgate.yaml protecting what the current state holds of the catalog's
data-bearing types, an allowed_signers file with an example line and the namespaces tfgate verifies, an
approvals/ directory, and the next steps. It never overwrites: an existing file is exit 2, nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfgate.approvals.shim import NAMESPACE as SHIM_NAMESPACE
from tfgate.approvals.statement import NAMESPACE as PLAN_NAMESPACE
from tfgate.checkpoint import NAMESPACE as AUDIT_NAMESPACE
from tfgate.errors import TfgateError
from tfgate.policy.way_out import APPROVALS_DIR

MANIFEST, SIGNERS = "tfgate.yaml", "allowed_signers"
#: Every namespace an approver's line needs: plan approvals (`tfgate approve`) and the shim's state commands.
NAMESPACES = f"{PLAN_NAMESPACE},{SHIM_NAMESPACE}"
#: A well-formed ssh-ed25519 public key nobody holds the private key of: the example line's shape only.
EXAMPLE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
_ACTIONS = "[delete, replace, forget, safety_net]"


@dataclass(frozen=True)
class Found:
    """What `tfgate init` read of the current state: where, and its data-bearing resources."""

    source: str
    exists: bool
    protected: tuple[tuple[str, str], ...] = ()  # (address, catalog kind)
    resources: int = 0


def read_state(workdir: Path, workspace: str) -> Found:
    """The data-bearing resources of the workspace's current state (tfgate.state's readers)."""
    from tfgate.policy.catalog import load_catalog
    from tfgate.state import current_state_bytes
    from tfgate.state.tfstate import managed_resources

    data, source = current_state_bytes(workdir, workspace)
    if data is None:
        return Found(source, exists=False)
    resources = managed_resources(data, source)
    catalog = load_catalog()
    picked = []
    for address, rtype in resources:
        entry = catalog.lookup(rtype)
        if entry is not None and "data-bearing" in (entry.kind, *entry.classes):
            picked.append((address, entry.kind))
    return Found(source, exists=True, protected=tuple(picked), resources=len(resources))


def manifest_text(found: Found) -> str:
    lines = [
        '# tfgate.yaml, written by `tfgate init`. Reference: README.md, "The protected-resource manifest";',
        "# schema: rules/manifest.schema.json. A plan that deletes, replaces or forgets (or removes a safety net",
        "# of) a resource a rule protects is blocked until enough approvers have signed that exact plan",
        "# (`tfgate approve`; who may sign: allowed_signers). Address patterns: only * and ? are wildcards.",
        "version: 1",
        "protect:",
    ]
    catalog_rule = [
        "  - name: data-bearing",
        "    description: Every resource type the built-in catalog marks data-bearing (databases, buckets, disks...).",
        "    match:",
        "      catalog: [data-bearing]",
        f"    actions: {_ACTIONS}",
        "    approvals: 1",
        '    # approvers: ["*@example.com"]   # principals (globs) of allowed_signers; none: any listed signer',
    ]
    if found.protected:
        width = max(len(a) for a, _ in found.protected) + 2
        lines += [
            f"  # What the current state ({found.source}, {found.resources} resources) holds of the catalog's",
            "  # data-bearing types. Edit the list: every address left here is protected.",
            "  - name: data-in-state",
            "    description: Resources holding data, found in the state by `tfgate init`.",
            "    match:",
            "      address:",
            *(f"        - {json.dumps(a):<{width}} # {kind}" for a, kind in found.protected),
            f"    actions: {_ACTIONS}",
            "    approvals: 1",
            '    # approvers: ["*@example.com"]   # principals (globs) of allowed_signers; none: any listed signer',
            "",
            "  # Also protect every data-bearing type, including resources added later: uncomment.",
            *(f"  # {line[2:]}" for line in catalog_rule),
        ]
    else:
        why = (
            f"The current state ({found.source}) holds none of the catalog's data-bearing types."
            if found.exists
            else f"No state yet ({found.source})."
        )
        lines += [
            f"  # {why}",
            "  # This rule protects every data-bearing type the catalog knows; narrow it to addresses once",
            "  # you know them, e.g.:",
            '  #   match: {address: ["aws_db_instance.main", "module.storage.*"]}',
            *catalog_rule,
        ]
    lines += [
        "",
        "approvals:",
        f"  allowed_signers: {SIGNERS}   # relative to this file",
        "",
        "# state:",
        "#   max_plan_age: 24h   # a saved plan older than this is refused",
    ]
    return "\n".join(lines) + "\n"


def signers_text() -> str:
    return "\n".join(
        [
            "# allowed_signers, written by `tfgate init`: who may sign tfgate approvals. OpenSSH's format",
            "# (ssh-keygen(1), ALLOWED SIGNERS): PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT], one line per person.",
            f'# namespaces="{NAMESPACES}": {PLAN_NAMESPACE} for plan approvals (`tfgate approve`), {SHIM_NAMESPACE} for',
            "# the terraform shim's state-command approvals; add "
            f"{AUDIT_NAMESPACE} for whoever signs audit checkpoints (`tfgate audit checkpoint`).",
            "# Add an approver (their PUBLIC key only):",
            f'#   echo "alice@example.com namespaces=\\"{NAMESPACES}\\" $(cut -d\' \' -f1,2 ~/.ssh/id_ed25519.pub)"'
            f" >> {SIGNERS}",
            "# Never list a key the agent or CI can use: whoever holds a listed key can approve.",
            "# Example (the shape of a line; the key is no one's):",
            f'# alice@example.com namespaces="{NAMESPACES}" {EXAMPLE_KEY} alice laptop',
            "",
        ]
    )


def next_steps(root: Path) -> list[str]:
    c = "" if str(root) == "." else f" -C {root}"
    return [
        "next steps:",
        f"  1. review {root / MANIFEST} (what is protected, how many approvals) and add each approver's",
        f"     public key to {root / SIGNERS} (see the example line in it)",
        f"  2. gate a plan: tfgate plan{c}   (plans, checks, writes the reports; tfgate apply PLAN applies it)",
        "  3. put the gate where Terraform runs, one or more of:",
        "     - AI coding agent: tfgate guard install --agent NAME   (Claude Code: tfgate guard --print-config)",
        '     - every terraform call: tfgate shim install ~/.tfgate/bin && export PATH="$HOME/.tfgate/bin:$PATH"',
        f"     - a boundary the agent's user cannot get around (as root): tfgate protect init {root.resolve()}"
        " --agent-user USER",
        "     - CI: the GitHub Action in action.yml runs `tfgate check` before apply and comments on the PR",
        "       (example: .github/workflows/example-pre-apply.yml)",
        f"  4. when a plan is blocked, its report ends with the `tfgate approve` command; approvals go in {APPROVALS_DIR}/",
    ]


def init(root: Path, *, workspace: str, echo: Callable[[str], None]) -> int:
    """Write the scaffold into ROOT; an existing tfgate.yaml or allowed_signers is exit 2, nothing written."""
    targets = [root / MANIFEST, root / SIGNERS]
    existing = [str(p) for p in targets if p.exists() or p.is_symlink()]
    approvals = root / APPROVALS_DIR
    if approvals.exists() and not approvals.is_dir():
        existing.append(f"{approvals} (not a directory)")
    if existing:
        raise TfgateError(
            f"tfgate init never overwrites: {', '.join(existing)} {'exist' if len(existing) > 1 else 'exists'}; "
            "nothing written (edit what is there, or move it away first)"
        )
    found = read_state(root, workspace)
    _write(targets, [manifest_text(found), signers_text()])
    approvals.mkdir(exist_ok=True)
    what = (
        f"protecting the {len(found.protected)} data-bearing resource(s) found in {found.source}"
        if found.protected
        else "protecting the catalog's data-bearing types: the state holds none yet"
    )
    echo(f"wrote {targets[0]} ({what}), {targets[1]} (no signer yet) and {approvals}/")
    for line in next_steps(root):
        echo(line)
    return 0


def _write(paths: Sequence[Path], texts: Sequence[str]) -> None:
    written: list[Path] = []
    try:
        for path, text in zip(paths, texts, strict=True):
            with open(path, "x", encoding="utf-8") as fh:  # "x": never replaces a file created meanwhile
                fh.write(text)
            written.append(path)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise TfgateError(f"cannot write {exc.filename or paths[0]}: {exc.strerror or exc}") from None
