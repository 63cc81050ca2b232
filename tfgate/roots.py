"""Many roots in one run (monorepos, Terragrunt run-all): name each plan's root, check each one, combine.

A root's name is `NAME` from a `NAME=PATH` argument, else its plan's directory relative to the base directory
(`-C`, default the current one; plan paths are relative to it too). In Terragrunt's cache layout (`UNIT/.terragrunt-cache/<hash>/<hash>/...`)
the name is the unit's directory, not the cache path. Each root is checked in its plan's directory (its
Terraform working directory: state, backend, binary plans) with the nearest `tfgate.yaml` from there up to
the base directory unless `--manifest` names one. An input error in one root is that root's error (exit 2
overall); the other roots are still checked.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tfgate import __version__
from tfgate.errors import TfgateError
from tfgate.model import CombinedResult, Result, RootResult
from tfgate.pipeline import CheckOptions, run_check
from tfgate.policy.manifest import find_manifest

TERRAGRUNT_CACHE = ".terragrunt-cache"
_NAME = re.compile(r"[A-Za-z0-9_.@+:/-]+")


@dataclass(frozen=True)
class Root:
    name: str
    plan: Path  # as it will be opened (relative to the process's directory, or absolute)
    workdir: Path


def is_combined(args: Sequence[str], base: Path = Path(".")) -> bool:
    """Several plans, or any `NAME=PATH`: a combined run. One plain plan keeps the single-plan behaviour."""
    return len(args) > 1 or any(_split(a, base)[0] is not None for a in args)


def parse_roots(args: Sequence[str], base: Path = Path(".")) -> tuple[Root, ...]:
    """Name every plan argument; raises TfgateError (exit 2) on a duplicate or unusable name or on stdin."""
    roots: list[Root] = []
    seen: dict[str, str] = {}
    for arg in args:
        name, path_text = _split(arg, base)
        if path_text == "-":
            raise TfgateError("with several plans none can be stdin (-): give each plan as a file")
        plan = Path(path_text) if Path(path_text).is_absolute() else base / path_text
        if name is None:
            name = _derived_name(plan, base)
        if not _NAME.fullmatch(name) or name.startswith("/") or ".." in name.split("/"):
            raise TfgateError(
                f"root name {name!r} (for {path_text}) may hold only letters, digits and _.@+:/- and no "
                "'..': name it NAME=PATH"
            )
        if name in seen:
            raise TfgateError(
                f"two plans for root {name!r} ({seen[name]} and {path_text}): name them NAME=PATH"
            )
        seen[name] = path_text
        roots.append(Root(name, plan, plan.parent))
    if not roots:
        raise TfgateError("no plan given")
    return tuple(roots)


def _split(arg: str, base: Path) -> tuple[str | None, str]:
    """`NAME=PATH` unless the whole argument is an existing file (a plan whose name holds '=')."""
    if "=" in arg and not (base / arg).exists():
        name, _, path = arg.partition("=")
        return name, path
    return None, arg


def _derived_name(plan: Path, base: Path) -> str:
    directory = Path(os.path.abspath(plan.parent))
    parts = directory.parts
    if TERRAGRUNT_CACHE in parts:
        directory = Path(*parts[: parts.index(TERRAGRUNT_CACHE)])
    rel = os.path.relpath(directory, os.path.abspath(base))
    if rel == ".." or rel.startswith(".." + os.sep):
        raise TfgateError(f"{plan} is outside {base}: name it NAME=PATH or run from a directory above it")
    return rel.replace(os.sep, "/")


def nearest_manifest(workdir: Path, base: Path) -> Path | None:
    """tfgate.yaml in the root's working directory or the nearest directory above it, up to the base."""
    here, top = Path(os.path.abspath(workdir)), Path(os.path.abspath(base))
    while True:
        found = find_manifest(here)
        if found is not None or here == top or top not in here.parents:
            return found
        here = here.parent


def run_roots(roots: Sequence[Root], template: CheckOptions, base: Path = Path(".")) -> CombinedResult:
    """Check every root with the template's options (plan, workdir and manifest set per root)."""
    out = []
    for root in roots:
        manifest = template.manifest or nearest_manifest(root.workdir, base)
        opts = replace(template, plan=str(root.plan), workdir=root.workdir, manifest=manifest)
        try:
            out.append(RootResult(root.name, str(root.plan), result=run_check(opts)))
        except TfgateError as exc:
            out.append(RootResult(root.name, str(root.plan), error=str(exc)))
        except Exception as exc:  # fail closed: an internal error in one root is that root's error
            out.append(
                RootResult(root.name, str(root.plan), error=f"internal error ({type(exc).__name__}): {exc}")
            )
    return CombinedResult(tuple(out), tool_version=__version__)


def run_gate(plans: Sequence[str], opts: CheckOptions, *, audit_log: str | None) -> Result | CombinedResult:
    """What `tfgate check` and `tfgate comment` run: one plan as before, or several roots combined (plans
    and names relative to `opts.workdir`, the -C directory); every check is recorded in the audit log (a
    root's with its name)."""
    from tfgate.audit import record_check
    from tfgate.paths import at

    base = opts.workdir
    if not is_combined(plans, base):
        result = run_check(replace(opts, plan=at(base, plans[0])))
        record_check(result, command=sys.argv, log=audit_log, cwd=base)
        return result
    combined = run_roots(parse_roots(plans, base), opts, base)
    for root in combined.roots:
        if root.result is not None:
            record_check(
                root.result, command=sys.argv, log=audit_log, cwd=Path(root.source).parent,
                extra={"root": root.name},
            )  # fmt: skip
    return combined
