"""The immutable result model: what the loaders produce and what every renderer consumes.

Data flows one way: load (plan, state, manifest, approvals) -> evaluate (these objects) ->
render / exit. Nothing here decides anything; it only records what was decided and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import msgspec


class ChangeClass(str, Enum):
    """What a planned change does to a resource object."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REPLACE = "replace"
    FORGET = "forget"
    NO_OP = "no_op"
    READ = "read"

    @property
    def destroys(self) -> bool:
        """True when the existing remote object is destroyed."""
        return self is _DELETE or self is _REPLACE


_DELETE, _REPLACE = ChangeClass.DELETE, ChangeClass.REPLACE


class Severity(str, Enum):
    """How a finding affects the verdict."""

    BLOCK = "block"
    WARN = "warn"
    INFO = "info"


class Risk(str, Enum):
    """How much data a change can lose, for ranking in reports."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


class Verdict(str, Enum):
    ALLOW = "allow"
    BLOCK = "block"


# Rule action names: the change classes a rule can protect against.
RULE_ACTIONS = ("delete", "replace", "forget", "safety_net")

#: The address a plan-level violation (an approvable finding such as plan_incomplete) is approved under.
PLAN_ADDRESS = "(plan)"

EXIT_ALLOW = 0
EXIT_BLOCK = 1
EXIT_ERROR = 2


@dataclass(frozen=True)
class SafetyNetRemoval:
    """An update that removes protection against data loss (e.g. deletion_protection turned off)."""

    attribute: str
    before: Any
    after: Any
    description: str


class Change(msgspec.Struct, frozen=True, gc=False, repr_omit_defaults=False):
    """One planned resource change, classified.

    A frozen msgspec Struct rather than a dataclass: plans hold 100,000 changes, and a Struct is built several
    times faster from its fields and takes a third of the memory (no instance dict). It is as immutable
    (``msgspec.structs.replace`` makes a changed copy), compares and hashes by its fields, and is never part
    of a reference cycle (``gc=False``: it holds strings, enums, tuples and values decoded from the plan, none of
    which can refer back to it)."""

    address: str
    mode: str  # "managed" | "data"
    type: str
    name: str
    module_address: str | None
    index: Any
    provider: str | None
    actions: tuple[str, ...]
    change_class: ChangeClass
    action_reason: str | None = None
    #: For replaces: "delete_first" (["delete","create"]) or "create_first" (["create","delete"]).
    replace_order: str | None = None
    #: ["create","forget"]: a new object is created and the old one is forgotten, not destroyed.
    creates: bool = False
    deposed: str | None = None
    previous_address: str | None = None
    importing: bool = False
    import_id: str | None = None
    #: Key prior attributes (id, name, tags...) for reports; sensitive values are never kept.
    prior: tuple[tuple[str, Any], ...] = ()
    #: Tag/label keys whose prior values the plan does not show (sensitive); "*" when the whole tag map
    #: cannot be read. Tag rules on them are assumed to match: fail closed.
    hidden_tags: tuple[str, ...] = ()
    safety_nets: tuple[SafetyNetRemoval, ...] = ()
    catalog_classes: tuple[str, ...] = ()
    catalog_kind: str | None = None
    protected_by: tuple[str, ...] = ()
    risk: Risk = Risk.NONE
    #: Terraform's resource identity of the prior object (``before_identity``, canonical JSON), if any.
    identity: str | None = None

    @property
    def destroys(self) -> bool:
        cls = self.change_class
        return cls is _DELETE or cls is _REPLACE

    @property
    def moved(self) -> bool:
        return self.previous_address is not None and self.previous_address != self.address

    @property
    def key(self) -> tuple[str, str | None]:
        """Identity of the change within a plan: deposed objects share their base address."""
        return (self.address, self.deposed)

    def prior_dict(self) -> dict[str, Any]:
        return dict(self.prior)


def replace_change(change: Change, **fields: Any) -> Change:
    """A copy of `change` with `fields` changed (what ``dataclasses.replace`` is for the other models)."""
    return msgspec.structs.replace(change, **fields)


@dataclass(frozen=True)
class Summary:
    create: int = 0
    update: int = 0
    delete: int = 0
    replace: int = 0
    forget: int = 0
    read: int = 0
    no_op: int = 0
    move: int = 0
    import_: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "create": self.create,
            "update": self.update,
            "delete": self.delete,
            "replace": self.replace,
            "forget": self.forget,
            "read": self.read,
            "no_op": self.no_op,
            "move": self.move,
            "import": self.import_,
        }


@dataclass(frozen=True)
class PlanInfo:
    """Facts about the plan document itself."""

    source: str  # path or "-"
    input_format: str  # "binary" | "show-json" | "stream" | "none" (tfgate state check: no plan)
    format_version: str | None
    terraform_version: str | None
    digest: str
    errored: bool = False
    complete: bool = True
    applyable: bool | None = None
    timestamp: str | None = None
    #: Whether before/after values were available (not in the plan -json stream).
    has_values: bool = True
    #: SHA-256 of the plan file's bytes, for binary plans (what `tfgate apply` re-checks).
    file_sha256: str | None = None
    #: Made with -target (or, for a saved plan, incomplete without errors or deferred changes).
    targeted: bool = False


@dataclass(frozen=True)
class Finding:
    """A fact about the plan or the state that affects or explains the verdict."""

    code: str
    severity: Severity
    message: str
    evidence: tuple[tuple[str, Any], ...] = ()
    address: str | None = None
    #: A signed approval of this plan lifts it (it stands for a Violation of the same code or rule).
    approvable: bool = False

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.BLOCK

    def evidence_dict(self) -> dict[str, Any]:
        return dict(self.evidence)


@dataclass(frozen=True)
class Violation:
    """A protected change: blocks unless `approved`."""

    address: str
    rule: str
    change_class: ChangeClass
    reason: str
    approvals_required: int = 1
    approved: bool = False
    approved_by: tuple[str, ...] = ()
    deposed: str | None = None
    #: Signers whose valid statements counted toward this violation, approved or not yet (1 of 2).
    counted_by: tuple[str, ...] = ()
    #: The object's address before this plan moves it (a rule may match either address).
    previous_address: str | None = None
    #: For a plan-level condition a human may approve (``plan_incomplete`` of a -target plan): its finding
    #: code, which is also the statement class; the address is then ``PLAN_ADDRESS``.
    finding: str | None = None
    #: What else an approval must name for it to count: for tfgate's provisioner rule, ``sha256:`` of the
    #: commands the change will run (approving one command is not approving another at the same address).
    subject: str | None = None
    #: Who may approve when the rule is no longer in the manifest (``protection_removed``): the approvers the
    #: ledger recorded for it; None: the manifest's rule decides (or, for an old ledger entry, any signer).
    approvers: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        """What is approved: the change class, or the plan-level finding's code."""
        return self.finding or self.change_class.value

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        """What identifies this violation to the approvals judge: address, rule, class, deposed key."""
        return (self.address, self.rule, self.change_class.value, self.deposed)


@dataclass(frozen=True)
class ApprovalOutcome:
    """How one approval statement was judged (for the report)."""

    source: str
    signer: str | None
    counted: bool
    reason: str
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Counted:
    """What the approvals judge counted: for each violation (by ``Violation.key``), the distinct principals
    whose valid statements count toward it; and how every statement was judged. Evaluation decides."""

    principals: Mapping[tuple[str, str, str, str | None], tuple[str, ...]] = field(default_factory=dict)
    outcomes: tuple[ApprovalOutcome, ...] = ()


@dataclass(frozen=True)
class StateBinding:
    """What an approval is bound to besides the plan digest and workspace: the root (a stable identity of
    where the state lives: ``s3://BUCKET/KEY``, ``local:/REALPATH`` of the working directory, ...) and the
    prior state the plan was made against (lineage and serial; both None when there was no state yet).
    ``problem`` says why it cannot be known; approvals then cannot count."""

    root: str | None
    lineage: str | None
    serial: int | None
    #: Where lineage and serial were read: "plan" (a saved plan's own state), "state" (the working directory's
    #: state or backend now), "report" (a JSON report).
    source: str
    problem: str | None = None

    @property
    def known(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        """The binding as the JSON result and `approvals verify --format json` show it."""
        return {
            "root": self.root,
            "lineage": self.lineage,
            "serial": self.serial,
            "source": self.source,
            "problem": self.problem,
        }

    @property
    def state(self) -> dict[str, Any] | None:
        """The statement's ``state`` field: None when the plan was made against no state."""
        if self.lineage is None and self.serial is None:
            return None
        return {"lineage": self.lineage, "serial": self.serial}


@dataclass(frozen=True)
class NeededApproval:
    """One protecting rule that still lacks signatures: how many more, from whom, for which addresses."""

    rule: str
    still_needed: int
    approvers: tuple[str, ...]
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class WayOut:
    """How a blocked plan gets through (computed by the pipeline, presented by every report): the exact
    `tfgate approve` command for this plan, where approvals go, what to run once they are there, and the
    blocking findings approvals do not lift."""

    approve: str | None
    approvals_dir: str
    then: str
    needed: tuple[NeededApproval, ...] = ()
    not_approvable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """Everything a renderer or the CLI needs; renderers decide nothing."""

    verdict: Verdict
    plan: PlanInfo
    summary: Summary
    changes: tuple[Change, ...]
    violations: tuple[Violation, ...]
    findings: tuple[Finding, ...]
    workspace: str = "default"
    manifest: str | None = None
    approvals: tuple[ApprovalOutcome, ...] = ()
    tool_version: str = ""
    reasons: tuple[str, ...] = field(default=())
    #: What approvals of this plan are bound to (None: not determined, the plan destroys nothing).
    binding: StateBinding | None = None
    #: Blocked: how to get unblocked (None when allowed).
    way_out: WayOut | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_ALLOW if self.verdict is Verdict.ALLOW else EXIT_BLOCK

    @property
    def blocked_violations(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if not v.approved)


@dataclass(frozen=True)
class RootResult:
    """One root (a Terraform working directory) of a combined check: its Result, or the input error that
    stopped it (exit 2 for the whole run; the other roots are still checked and reported)."""

    name: str
    source: str
    result: Result | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_ERROR if self.result is None else self.result.exit_code

    @property
    def status(self) -> str:
        """ "allow", "block" or "error"."""
        return "error" if self.result is None else self.result.verdict.value

    @property
    def destroys(self) -> int:
        s = self.result.summary if self.result else Summary()
        return s.delete + s.replace

    @property
    def blocked(self) -> int:
        return len(self.result.blocked_violations) if self.result else 0

    @property
    def approvals_needed(self) -> int:
        """More signers needed before every protected change is approved: the largest shortfall of any
        blocked change (one signer's statement can count toward all of them)."""
        if self.result is None:
            return 0
        gaps = [v.approvals_required - len(v.counted_by) for v in self.result.blocked_violations]
        return max([0, *gaps])

    @property
    def changed(self) -> bool:
        """Whether the plan changes anything (a root without changes is folded away in reports)."""
        if self.result is None:
            return True
        s = self.result.summary
        return bool(s.create + s.update + s.delete + s.replace + s.forget + s.move + s.import_)


@dataclass(frozen=True)
class CombinedResult:
    """Many roots checked in one run (a monorepo, Terragrunt run-all): each root's verdict, and the worst
    as the overall exit code (2 > 1 > 0)."""

    roots: tuple[RootResult, ...]
    tool_version: str = ""

    @property
    def exit_code(self) -> int:
        return max((r.exit_code for r in self.roots), default=EXIT_ERROR)

    @property
    def verdict(self) -> Verdict:
        return Verdict.ALLOW if self.exit_code == EXIT_ALLOW else Verdict.BLOCK


@dataclass(frozen=True)
class Protection:
    """What follows a protected object whatever its address: the ledger's protected objects (identity key ->
    ``{rule, address, actions, approvals}``) and the working directory's state objects, by (address, deposed)
    -> (key prior attributes, identity keys), for plans that carry no values (streams)."""

    known: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    state: Mapping[tuple[str, str | None], tuple[tuple[tuple[str, Any], ...], tuple[str, ...]]] = field(
        default_factory=dict
    )
