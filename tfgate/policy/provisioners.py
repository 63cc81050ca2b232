"""Provisioner commands a plan will run: approvable violations and the `provisioner_commands` finding.

A provisioner runs a command (``local-exec`` on the machine that applies, ``remote-exec`` on the target,
``file`` copies) with the applier's credentials, outside everything the plan shows: an allowed create-only
plan whose new resource runs ``terraform destroy`` in a ``local-exec`` destroys what the gate protects. So
every create, replace or destroy that will run provisioners is a protected change of tfgate's own rule
``provisioner_commands`` (one signed approval of the plan, class ``provisioner``, lets it through) unless the
manifest says ``plan: {provisioners: warn}``. Configuration tfgate cannot read blocks (fail closed).

Pure: reads what tfgate.plan.configuration loaded onto the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfgate.model import Change, ChangeClass, Finding, Severity, Violation
from tfgate.plan.common import LoadedPlan
from tfgate.policy.manifest import PROVIDER_RULE, PROVISIONER_RULE, Manifest, glob_to_regex


def _running(plan: LoadedPlan) -> list[tuple[Change, tuple]]:
    provs = plan.provisioners
    if provs is None:
        return []
    if not provs.blocks:  # no provisioner in the configuration: only `data "external"` reads run anything
        return [(c, found) for c in plan.changes if c.type == "external" and (found := provs.running(c))]
    return [(c, found) for c in plan.changes if (found := provs.running(c))]


def _commands(found: tuple) -> str:
    return "; ".join(f"{p.type}{'' if p.when is None else f' (when {p.when})'}: {p.command}" for p in found)


def commands_digest(found: tuple) -> str:
    """``sha256:`` of what the provisioners run (type and command, in order; not ``when``, which only the saved
    plan's own configuration records): the subject an approval of them names. The plan digest does not always
    cover it: the commands of `removed` blocks, and the stream form's, come from outside the plan document."""
    import hashlib
    import json

    text = json.dumps([[p.type, p.command] for p in found], ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def provisioner_violations(plan: LoadedPlan, manifest: Manifest) -> tuple[Violation, ...]:
    """One approvable violation per change that will run provisioners (none with `provisioners: warn`)."""
    if manifest.provisioners != "block":
        return ()
    return tuple(
        Violation(
            address=c.address,
            rule=PROVISIONER_RULE,
            change_class=c.change_class,
            reason=f"{c.change_class.value} runs provisioner commands: {_commands(found)}",
            deposed=c.deposed,
            subject=commands_digest(found),
        )
        for c, found in _running(plan)
    )


def _unlisted(plan: LoadedPlan, manifest: Manifest) -> dict[str, list[str]]:
    """Providers the plan uses that the manifest's `plan: {providers: [...]}` does not list -> addresses."""
    if manifest.providers is None:
        return {}
    import re

    allowed = re.compile("(?:" + "|".join(glob_to_regex(g) for g in manifest.providers) + r")\Z", re.DOTALL)
    out: dict[str, list[str]] = {}
    for c in plan.changes:
        name = c.provider or "(unknown provider)"
        if not allowed.match(name):
            out.setdefault(name, []).append(c.address)
    return out


def _some(addresses: list[str]) -> str:
    return ", ".join(addresses[:3]) + (f" and {len(addresses) - 3} more" if len(addresses) > 3 else "")


def provider_violations(plan: LoadedPlan, manifest: Manifest) -> tuple[Violation, ...]:
    """One approvable violation per provider outside the allow-list (address `provider["NAME"]`)."""
    return tuple(
        Violation(
            address=f'provider["{name}"]',
            rule=PROVIDER_RULE,
            change_class=ChangeClass.READ,
            reason=f"provider {name} is not in the manifest's `plan: {{providers}}` (used by {_some(addrs)})",
        )
        for name, addrs in _unlisted(plan, manifest).items()
    )


def provider_findings(
    plan: LoadedPlan, manifest: Manifest, violations: Sequence[Violation]
) -> tuple[Finding, ...]:
    """`provider_not_allowed`: providers outside the allow-list (blocks while any is unapproved)."""
    unlisted = _unlisted(plan, manifest)
    if not unlisted:
        return ()
    blocked = [v for v in violations if v.rule == PROVIDER_RULE and not v.approved]
    return (
        Finding(
            "provider_not_allowed",
            Severity.BLOCK if blocked else Severity.INFO,
            f"{len(unlisted)} provider(s) outside the manifest's allow-list would run with the applier's "
            f"credentials: {', '.join(unlisted)}" + ("" if blocked else " (approved)"),
            (("providers", sorted(unlisted)),),
        ),
    )


def provisioner_findings(
    plan: LoadedPlan, manifest: Manifest, violations: Sequence[Violation]
) -> tuple[Finding, ...]:
    """`provisioner_commands` listing what will run (blocks while any is unapproved), and
    `provisioners_unknown` for changes whose configuration could not be read."""
    provs = plan.provisioners
    if provs is None:
        return ()
    out: list[Finding] = []
    running = _running(plan)
    if running:
        mine = [v for v in violations if v.rule == PROVISIONER_RULE]
        unapproved = [v for v in mine if not v.approved]
        if manifest.provisioners != "block":
            severity, tail = Severity.WARN, " (the manifest sets `plan: {provisioners: warn}`)"
        elif unapproved:
            severity, tail = Severity.BLOCK, ": each needs a signed approval (class provisioner)"
        else:
            severity, tail = Severity.INFO, ": approved"
        listed = [
            {
                "address": c.address,
                "class": c.change_class.value,
                "type": p.type,
                "when": p.when or "create/destroy",
                "command": p.command,
            }
            for c, found in running
            for p in found
        ]
        shown = "; ".join(f"{c.address}: {_commands(found)}" for c, found in running[:5])
        more = f" and {len(running) - 5} more" if len(running) > 5 else ""
        where = (
            ""
            if all(p.when for _, f in running for p in f)
            else " (`when` is not recorded in show -json: counted for creates and destroys)"
        )
        out.append(
            Finding(
                "provisioner_commands",
                severity,
                f"{len(running)} change(s) will run provisioner commands with the applier's credentials{tail}: "
                f"{shown}{more}{where}",
                (("provisioners", listed), ("source", provs.source)),
            )
        )
    if not provs.unknown and not provs.missing:
        return tuple(out)
    changing = [c for c in plan.changes if c.mode == "managed" and (c.creates or c.destroys)]
    if provs.unknown:
        unknown = [(c, why) for c in changing if (why := provs.unknown_for(c)) is not None]
        if unknown:
            out.append(
                Finding(
                    "provisioners_unknown",
                    Severity.BLOCK,
                    f"cannot tell which provisioner commands {len(unknown)} change(s) would run: "
                    f"{unknown[0][1]} (e.g. {unknown[0][0].address}); give the saved plan, or run from the "
                    "initialised working directory",
                    (("modules", dict(provs.unknown)),),
                )
            )
    elif provs.missing and changing:
        out.append(
            Finding(
                "provisioners_unknown",
                Severity.WARN,
                f"{provs.missing}: provisioner commands the changes would run are not known; "
                "give the saved plan or full `terraform show -json` output",
            )
        )
    return tuple(out)


def file_read_findings(plan: LoadedPlan) -> tuple[Finding, ...]:
    """`apply_reads_files` (protected mode): the configuration calls a function that reads the filesystem.
    The privileged side's Terraform re-evaluates the configuration during the apply, as the privileged user:
    a path unknown until then (or a hand-edited plan's) reads its files, such as the apply credentials, into
    the state and the output the agent reads. Not approvable: relative paths fail there anyway (the apply
    runs in the privileged state directory, not the root)."""
    from tfgate.plan.configuration import file_reads

    if plan.info.input_format != "binary" or plan.path is None:
        calls, why = [], "protected mode applies saved plans only"
    else:
        try:
            calls, why = file_reads(plan.path), None
        except ValueError as exc:
            calls, why = [], str(exc)
    if not calls and why is None:
        return ()
    message = (
        f"the configuration calls functions that read files ({', '.join(dict.fromkeys(calls[:5]))}"
        f"{' ...' if len(calls) > 5 else ''})"
        if calls
        else why
    )
    return (
        Finding(
            "apply_reads_files",
            Severity.BLOCK,
            f"{message}: in a protected root the apply runs as the privileged user, whose files (its apply "
            "credentials) these would read into the state and the output; refused, not approvable",
            (("calls", calls),),
        ),
    )
