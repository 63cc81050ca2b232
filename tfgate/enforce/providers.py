"""Protected mode: the providers the privileged side installs for a plan, itself, and its CLI configuration.

The plan's lock file comes from the agent, so it is a request, not a fact. Before anything is downloaded,
every entry must name a provider the plan's configuration (its embedded ``tfconfig/``, read with python-hcl2)
or its state uses, with an exact version and at least one hash, and pass the manifest's provider allow-list.
Then the privileged working directory gets a lock file tfgate writes from those entries, a generated
``required_providers`` block pinning exactly them, and one ``terraform init -lockfile=readonly`` (which also
initialises a pinned remote backend): Terraform installs from the registry (signatures and the lock's hashes)
or from root's filesystem mirror (``protect init --provider-mirror``), through the privileged plugin cache,
into the working directory's ``.terraform/providers``, where ``terraform apply PLANFILE`` looks. The agent's
``.terraform/`` is never read.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError

#: Files tfgate writes into the privileged working directory for the installation.
LOCK = ".terraform.lock.hcl"
REQUIRED = "tfgate-providers.tf"
_BUILTIN = "terraform.io/builtin/terraform"
_FQN = re.compile(r"[a-z0-9][a-z0-9.-]*(?::[0-9]+)?/[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?\Z")
_HASH = re.compile(r"(?:h1:[A-Za-z0-9+/]+=*|zh:[0-9a-f]{64})\Z")
_CONSTRAINT = re.compile(r"[0-9A-Za-z.,<>=~!+ -]*\Z")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
#: Block types whose first label is a type named after its provider (``aws_s3_bucket`` -> ``aws``).
_TYPED = ("resource", "data", "ephemeral", "action", "list")


@dataclass(frozen=True)
class Locked:
    """One lock file entry: a provider's source address, its exact version, constraints and hashes."""

    source: str
    version: str
    constraints: str | None
    hashes: tuple[str, ...]


def canonical(source: str) -> str:
    """A provider source address in full: ``hashicorp/aws`` -> ``registry.terraform.io/hashicorp/aws``."""
    parts = source.strip().split("/")
    if len(parts) == 1:
        parts = ["hashicorp", *parts]
    if len(parts) == 2:
        parts = ["registry.terraform.io", *parts]
    return "/".join(p.lower() for p in parts)


def _implied(local: str) -> str:
    """The provider a local name nothing declares stands for (Terraform's rule: hashicorp/NAME, and
    `terraform` is the built-in one)."""
    return _BUILTIN if local == "terraform" else canonical(local)


def _unquote(value: Any) -> Any:
    from tfgate.state.backend import _unquote as unquote

    return unquote(value)


def read_lock(text: str) -> dict[str, Locked]:
    """The entries of a lock file; anything but well-formed `provider` blocks, or one given twice, is refused."""
    import hcl2

    try:
        doc = hcl2.loads(text) if text.strip() else {}
    except Exception as exc:
        raise TfgateError(f"the plan's lock file does not parse: {exc}") from None
    other = {k for k in doc if not k.startswith("__")} - {"provider"}  # python-hcl2 keeps __comments__
    if other:
        raise TfgateError(f"the plan's lock file has blocks other than `provider`: {sorted(other)}")
    out: dict[str, Locked] = {}
    for entry in doc.get("provider") or ():
        for raw, body in entry.items():
            source = _unquote(raw)
            body = _unquote(body)
            if not isinstance(source, str) or not _FQN.match(source) or source != canonical(source):
                raise TfgateError(
                    f"the plan's lock file names provider {source!r}: not a full source address"
                )
            if source in out:
                raise TfgateError(f"the plan's lock file names {source} twice")
            if not isinstance(body, dict) or set(body) - {"version", "constraints", "hashes"}:
                raise TfgateError(f"the plan's lock entry for {source} has unexpected settings")
            version, constraints, hashes = body.get("version"), body.get("constraints"), body.get("hashes")
            if not isinstance(version, str) or not _VERSION.match(version):
                raise TfgateError(f"the plan's lock entry for {source}: version {version!r} is not exact")
            if constraints is not None and (
                not isinstance(constraints, str) or not _CONSTRAINT.match(constraints)
            ):
                raise TfgateError(f"the plan's lock entry for {source}: constraints {constraints!r}")
            if (
                not isinstance(hashes, list)
                or not hashes
                or not all(isinstance(h, str) and _HASH.match(h) for h in hashes)
            ):
                raise TfgateError(
                    f"the plan's lock entry for {source} needs hashes (h1: or zh:) to check the package against"
                )
            out[source] = Locked(source, version, constraints, tuple(hashes))
    return out


def lock_text(locks: Mapping[str, Locked]) -> str:
    """The lock file tfgate writes for the privileged working directory (Terraform's own layout)."""
    out = ["# written by tfgate's privileged side from the checked plan's lock file\n"]
    for lock in locks.values():
        out.append(f'\nprovider "{lock.source}" {{\n  version     = "{lock.version}"\n')
        if lock.constraints is not None:
            out.append(f'  constraints = "{lock.constraints}"\n')
        out.append("  hashes = [\n" + "".join(f'    "{h}",\n' for h in lock.hashes) + "  ]\n}\n")
    return "".join(out)


def required_text(locks: Mapping[str, Locked]) -> str:
    """A `required_providers` block pinning exactly the locked providers at their locked versions."""
    body = "".join(
        f'    p{i} = {{ source = "{lock.source}", version = "= {lock.version}" }}\n'
        for i, lock in enumerate(locks.values())
    )
    return f"# written by tfgate's privileged side\nterraform {{\n  required_providers {{\n{body}  }}\n}}\n"


# --- what the plan's configuration and state use ------------------------------------------------------


def _blocks(value: Any) -> Iterable[dict]:
    """python-hcl2 gives a list of dicts per block type, JSON syntax a dict or a list: one dict at a time."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            yield item


def _module_providers(docs: list[dict]) -> set[str]:
    """The provider source addresses one module's files (parsed) use, as Terraform infers them."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for doc in docs:
        for tf in _blocks(doc.get("terraform")):
            for req in _blocks(tf.get("required_providers")):
                for local, spec in _unquote(req).items():
                    source = spec.get("source") if isinstance(spec, dict) else None
                    names[local] = canonical(source) if isinstance(source, str) else _implied(local)
        for block in _blocks(doc.get("provider")):
            used.update(_unquote(k) for k in block)
        for kind in _TYPED:
            for block in _blocks(doc.get(kind)):
                for rtype, named in block.items():
                    used.add(_unquote(rtype).split("_", 1)[0])
                    for body in _blocks(named):
                        for inner in _blocks(list(body.values())):
                            used.add(_local(inner.get("provider")))
        for block in _blocks(doc.get("check")):
            for body in _blocks(list(block.values())):
                for data in _blocks(body.get("data")):
                    used.update(_unquote(t).split("_", 1)[0] for t in data)
        for block in _blocks(doc.get("import")):
            used.add(_local(block.get("provider")))
    used.discard("")
    return {names.get(n) or _implied(n) for n in used} | set(names.values())


def _local(ref: Any) -> str:
    """``${aws.west}`` / ``aws.west`` -> ``aws``; nothing -> ""."""
    ref = _unquote(ref)
    if not isinstance(ref, str):
        return ""
    return ref.removeprefix("${").removesuffix("}").strip().split(".", 1)[0]


def used_providers(archive: zipfile.ZipFile) -> set[str]:
    """The providers a saved plan's embedded configuration (every module) and its states use."""
    import hcl2

    names = archive.namelist()
    try:
        modules = json.loads(archive.read("tfconfig/modules.json"))
        used: set[str] = set()
        for mod in modules:
            prefix = f"tfconfig/m-{mod.get('Key', '')}/"
            docs = []
            for name in names:
                if name.startswith(prefix) and "/" not in name[len(prefix) :]:
                    if name.endswith(".tf"):
                        docs.append(hcl2.loads(archive.read(name).decode("utf-8")))
                    elif name.endswith(".tf.json"):
                        docs.append(json.loads(archive.read(name)))
            used |= _module_providers(docs)
        for state in ("tfstate", "tfstate-prev"):
            if state in names:
                used.update(
                    canonical(p.decode())
                    for p in re.findall(rb'provider\[\\"([^"\\]+)\\"\]', archive.read(state))
                )
    except Exception as exc:
        raise TfgateError(f"cannot tell which providers the plan's configuration uses: {exc}") from None
    used.discard(_BUILTIN)
    return used


def checked_locks(plan: bytes, allowed: tuple[str, ...] | None, *, root: str = "DIR") -> dict[str, Locked]:
    """The plan's lock entries, each one used by its configuration or state and inside the manifest's
    allow-list (ALLOWED globs; None, no list: none but the built-in ones). TfgateError, before anything is
    downloaded, otherwise (naming ROOT, the protected root, in the way to extend the list)."""
    archive = zipfile.ZipFile(io.BytesIO(plan))
    text = archive.read(LOCK).decode("utf-8") if LOCK in archive.namelist() else ""
    locks = read_lock(text)
    if not locks:
        return locks
    unused = sorted(set(locks) - used_providers(archive))
    if unused:
        raise TfgateError(
            f"the plan's lock file names provider(s) its configuration does not use: {', '.join(unused)}: "
            "refused (the privileged side installs only what the plan needs)"
        )
    if allowed is None:
        raise TfgateError(
            f"the plan needs provider(s) {', '.join(sorted(locks))}, and the pinned policy lists none: in protected "
            "mode a provider runs as the privileged user, with its files and credentials, so only the providers "
            "the pinned policy lists are installed (built-in ones need no list). To allow them, add "
            f"`plan: {{providers: {json.dumps(sorted(locks))}}}` to {root}/tfgate.yaml (a list admits only what it "
            f'names: add "{_BUILTIN}" too if the root uses terraform_data) and have root review and pin it: '
            f"`sudo tfgate protect policy {root}`"
        )
    from tfgate.policy.manifest import glob_to_regex

    pattern = (
        re.compile("(?:" + "|".join(glob_to_regex(g) for g in allowed) + r")\Z", re.DOTALL)
        if allowed
        else None
    )
    outside = sorted(s for s in locks if pattern is None or not pattern.match(s))  # an empty list admits none
    if outside:
        raise TfgateError(
            f"provider(s) outside the manifest's `plan: {{providers}}` allow-list: {', '.join(outside)}: the "
            "privileged side does not install them (an approval cannot extend the list here). To allow them, add "
            f"them to `plan: {{providers}}` in {root}/tfgate.yaml and have root review and pin it: "
            f"`sudo tfgate protect policy {root}`"
        )
    return locks


def install(terraform: list[str], plan: bytes, workdir: Path, allowed: tuple[str, ...] | None,
            backend: bool, *, root: str = "DIR") -> None:  # fmt: skip
    """Prepare WORKDIR (the privileged working directory) for `terraform apply PLANFILE`: its `.terraform/`
    rebuilt by one `terraform init -lockfile=readonly` (providers and, when BACKEND, the pinned backend)."""
    locks = checked_locks(plan, allowed, root=root)
    shutil.rmtree(workdir / ".terraform", ignore_errors=True)
    for name, text in ((LOCK, lock_text(locks)), (REQUIRED, required_text(locks))):
        if locks:
            (workdir / name).write_text(text, encoding="utf-8")
        else:
            (workdir / name).unlink(missing_ok=True)
    if not locks and not backend:
        return  # built-in providers only, default local backend: nothing to initialise
    proc = subprocess.run(
        [*terraform, "init", "-input=false", "-no-color", "-lockfile=readonly", "-reconfigure"],
        cwd=workdir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if proc.returncode != 0:
        what = (
            "install the plan's providers (checked against its lock file)"
            if locks
            else "initialise the pinned backend"
        )
        raise TfgateError(f"cannot {what}: {proc.stderr.strip()[-1200:]}")


# --- the privileged CLI configuration and the provider mirror -----------------------------------------


def cli_config(mirror: str | None) -> bytes:
    """The privileged side's CLI configuration (`data/terraformrc`): the registry only, or root's mirror only
    (air-gapped); no dev_overrides, no implicit local mirrors."""
    if mirror is None:
        body = "  direct {}\n"
    else:
        body = f"  filesystem_mirror {{\n    path = {json.dumps(mirror)}\n  }}\n"
    return (
        "# tfgate privileged side (written by `tfgate protect init`; checked before every apply)\n"
        f"provider_installation {{\n{body}}}\n"
    ).encode()


def mirror_problems(mirror: Path) -> list[str]:
    """Why MIRROR is not a root-controlled provider mirror: it, the directories above it and everything in it
    must be root's and closed to others' writes (the lock's hashes come from the agent, so the mirror's
    packages are what the privileged side trusts). Empty when it is."""
    problems = []
    if not mirror.is_absolute() or not mirror.is_dir() or mirror.is_symlink():
        return [f"{mirror}: not an absolute path to a directory"]
    for p in [*reversed(mirror.parents)]:
        info = p.stat()  # a root-owned sticky directory (/tmp) lets no one else rename what is in it
        if info.st_uid != 0 or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
            problems.append(f"{p}: not root's, or writable by others")
    for top, dirs, files in os.walk(mirror):
        for name in [top, *(os.path.join(top, n) for n in (*dirs, *files))]:
            info = os.lstat(name)
            if info.st_uid != 0 or info.st_mode & 0o022 or stat.S_ISLNK(info.st_mode):
                problems.append(f"{name}: not root's, writable by others, or a symlink")
                if len(problems) > 5:
                    return problems
    return problems


def check_cli_config(path: Path, mirror: str | None) -> None:
    """Refuse to run Terraform when the privileged CLI configuration is not what root pinned."""
    try:
        same = path.read_bytes() == cli_config(mirror)
    except OSError:
        same = False
    if not same:
        raise TfgateError(f"{path} is not the CLI configuration root pinned: run `tfgate protect init` again")
    if mirror is not None:
        problems = mirror_problems(Path(mirror))
        if problems:
            raise TfgateError(f"the provider mirror is not root-controlled: {'; '.join(problems)}")
