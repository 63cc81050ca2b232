"""What a plan's configuration will run besides the provider: its provisioners.

Three sources, most precise first:

- a saved binary plan: the configuration Terraform embedded in the plan file (``tfconfig/`` in the zip),
  read with python-hcl2, so a provisioner's ``when`` is known;
- the ``configuration`` block of ``terraform show -json`` (also what a binary plan is read through): it
  names every provisioner and its expressions but not ``when``, so each one counts for creates *and*
  destroys (fail closed);
- the ``plan -json`` stream has no configuration: the working directory's ``.tf`` files and the modules
  they call (local paths, or ``.terraform/modules/modules.json``) are read with python-hcl2; a module that
  cannot be found or read is reported as unknown, never assumed to have no provisioners.

Reading is here (load); what the provisioners mean for the verdict is decided in tfgate.policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfgate.model import Change, ChangeClass

#: (module names from the root, resource type, resource name): a resource block in the configuration.
BlockKey = tuple[tuple[str, ...], str, str]
_NO_CONFIG = ("delete_because_no_resource_config", "delete_because_no_module")
_MODULE_STEP = re.compile(r'module\.([A-Za-z_][\w-]*)(?:\[(?:"(?:[^"\\]|\\.)*"|[^\]]*)\])?\.?')


@dataclass(frozen=True)
class Provisioner:
    """One provisioner block: its type, when it runs (None: not recorded, so both), what it runs."""

    type: str
    when: str | None
    command: str

    def runs_on(self, change: Change) -> bool:
        """Does this change run it? Create-time ones on creates (and replaces), destroy-time on destroys."""
        if self.when in (None, "create") and change.creates:
            return True
        return self.when in (None, "destroy") and change.destroys


@dataclass(frozen=True)
class Provisioners:
    """The configuration's provisioners by resource block; modules whose configuration could not be read."""

    source: str
    blocks: Mapping[BlockKey, tuple[Provisioner, ...]] = field(default_factory=dict)
    #: Module paths ("" is the root) whose provisioners are unknown, with why.
    unknown: Mapping[str, str] = field(default_factory=dict)
    #: Why the plan document carries no configuration at all (a show-json without its block), else None.
    missing: str | None = None

    def unknown_for(self, change: Change) -> str | None:
        """Why this change's provisioners cannot be known (its module was not readable), else None."""
        if not self.unknown:
            return None
        path = module_path(change.module_address)
        for i in range(len(path), -1, -1):
            why = self.unknown.get(".".join(path[:i]))
            if why is not None:
                return why
        return None

    def running(self, change: Change) -> tuple[Provisioner, ...]:
        """The provisioners this change will run (managed creates, replaces, destroys), and the program of a
        `data "external"` read during the apply."""
        if change.mode == "data":
            if change.type == "external" and change.change_class is ChangeClass.READ:
                return (Provisioner("data.external", None, "its `program` runs during the apply"),)
            return ()
        if change.mode != "managed" or not (change.creates or change.destroys):
            return ()
        found = self.blocks.get((module_path(change.module_address), change.type, change.name), ())
        return tuple(p for p in found if p.runs_on(change))


def module_path(module_address: str | None) -> tuple[str, ...]:
    """``module.a["k"].module.b[0]`` -> ("a", "b"): module instances share their call's configuration."""
    if not module_address:
        return ()
    return tuple(m.group(1) for m in _MODULE_STEP.finditer(module_address))


# --- show -json: the configuration block -------------------------------------------------------------


def _expression(expr: Any) -> str:
    if isinstance(expr, dict):
        if "constant_value" in expr:
            value = expr["constant_value"]
            return value if isinstance(value, str) else json.dumps(value)
        refs = expr.get("references") or []
        return f"<computed from {', '.join(refs[:3])}>" if refs else "<computed>"
    if isinstance(expr, list):  # nested blocks (connection)
        return json.dumps(expr)
    return json.dumps(expr)


def describe(ptype: str, settings: Mapping[str, str]) -> str:
    """What a provisioner runs, in one line (its command, script, or copied file)."""
    keys = {
        "local-exec": ("command", "interpreter", "working_dir"),
        "remote-exec": ("inline", "script", "scripts"),
        "file": ("source", "content", "destination"),
    }.get(ptype, tuple(sorted(k for k in settings if k != "connection")))
    parts = [f"{k}={settings[k]}" if k != "command" else settings[k] for k in keys if k in settings]
    return "; ".join(parts) or "(no settings)"


def from_json(configuration: bytes | None, source: str) -> Provisioners:
    """The provisioners of a ``show -json`` configuration block (``when`` is not recorded there)."""
    if not configuration or b'"provisioners"' not in configuration:
        return Provisioners(source)
    doc = json.loads(configuration)
    blocks: dict[BlockKey, tuple[Provisioner, ...]] = {}

    def walk(module: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for res in module.get("resources") or ():
            found = tuple(
                Provisioner(
                    p.get("type", "?"),
                    None,
                    describe(
                        p.get("type", "?"),
                        {k: _expression(v) for k, v in (p.get("expressions") or {}).items()},
                    ),
                )
                for p in res.get("provisioners") or ()
            )
            if found and res.get("mode", "managed") == "managed":
                blocks[(path, res.get("type", ""), res.get("name", ""))] = found
        for name, call in (module.get("module_calls") or {}).items():
            walk(call.get("module") or {}, (*path, name))

    walk(doc.get("root_module") or {}, ())
    return Provisioners(source, blocks)


# --- HCL: the plan file's embedded configuration, or the working directory ---------------------------


def _hcl_text(value: Any) -> str:
    from tfgate.state.backend import _unquote

    value = _unquote(value)
    return value if isinstance(value, str) else json.dumps(value)


def _hcl_module(texts: Iterable[tuple[str, str]], path: tuple[str, ...], blocks: dict) -> dict[str, str]:
    """Provisioners of one module's files into BLOCKS; returns its module calls (name -> source)."""
    import hcl2

    from tfgate.state.backend import _unquote

    calls: dict[str, str] = {}
    for _name, text in texts:
        doc = hcl2.loads(text)
        for entry in doc.get("resource") or ():
            for rtype, named in entry.items():
                for rname, body in named.items():
                    provs = _hcl_provisioners(body)
                    if provs:
                        blocks[(path, _unquote(rtype), _unquote(rname))] = provs
        for entry in doc.get("removed") or ():  # `removed { from = X  provisioner ... }` (Terraform 1.9+)
            provs = _hcl_provisioners(entry)
            where = _removed_key(_reference(entry.get("from", "")), path)
            if provs and where is not None:
                blocks[where] = provs
        for entry in doc.get("module") or ():
            for mname, body in entry.items():
                calls[_unquote(mname)] = _unquote(body.get("source", ""))
    return calls


def _reference(value: Any) -> Any:
    """A bare reference as python-hcl2 gives it (``${terraform_data.x}``) or quoted, as its text."""
    from tfgate.state.backend import _unquote

    value = _unquote(value)
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1].strip()
    return value


def _hcl_provisioners(body: Mapping[str, Any]) -> tuple[Provisioner, ...]:
    from tfgate.state.backend import _unquote

    out = []
    for entry in body.get("provisioner") or ():
        for ptype, settings in entry.items():
            ptype = _unquote(ptype)
            when = _unquote(settings.get("when", "create"))
            shown = {k: _hcl_text(v) for k, v in settings.items() if not k.startswith("__") and k != "when"}
            out.append(Provisioner(ptype, str(when), describe(ptype, shown)))
    return tuple(out)


def from_plan_file(path: Path, fallback: Provisioners) -> Provisioners:
    """The provisioners of the configuration embedded in a saved plan (``when`` known), with those of its
    `removed` blocks (which show -json does not record). Where the archive's reading cannot be trusted, every
    block FALLBACK (the show-json reading, which counts every provisioner for creates and destroys) saw is
    added; an archive that cannot be read at all leaves the provisioners of removed resources unknown."""
    import zipfile  # only for saved plans

    blocks: dict[BlockKey, tuple[Provisioner, ...]] = {}
    conservative = False
    try:
        with zipfile.ZipFile(path) as archive:
            modules = json.loads(archive.read("tfconfig/modules.json"))
            names = archive.namelist()
            if len(set(names)) != len(names):  # Terraform reads the first of a name, zipfile the last
                raise ValueError("it names a file twice")
            for mod in modules:
                key = mod.get("Key", "")
                prefix = f"tfconfig/m-{key}/"
                texts = [
                    (n, archive.read(n).decode("utf-8"))
                    for n in names
                    if n.startswith(prefix)
                    and "/" not in n[len(prefix) :]
                    and n.endswith((".tf", ".tf.json"))
                ]
                path_names = tuple(key.split(".")) if key else ()
                for _, text in (t for t in texts if t[0].endswith(".tf.json") and "provisioner" in t[1]):
                    conservative = True  # JSON syntax: its resource blocks are taken from show -json
                    _json_removed(json.loads(text), path_names, blocks)
                hcl = [(n, t) for n, t in texts if n.endswith(".tf")]
                if any(
                    "provisioner" in t for _, t in hcl
                ):  # else nothing to find (python-hcl2 is slow to load)
                    _hcl_module(hcl, path_names, blocks)
    except Exception as exc:  # unreadable in any way: the conservative reading, and removed blocks unknown
        why = f"the saved plan's embedded configuration cannot be read ({exc})"
        return Provisioners(fallback.source, fallback.blocks, unknown={"": why})
    # Every block the show-json reading saw must have been found here too; otherwise trust it over this one.
    if conservative or set(fallback.blocks) - set(blocks):
        return Provisioners(fallback.source, {**blocks, **fallback.blocks})
    return Provisioners(f"{path} (embedded configuration)", blocks)


def _removed_key(target: Any, path: tuple[str, ...]) -> BlockKey | None:
    """The resource block a `removed` block's ``from`` (``module.a.TYPE.NAME``) names, from module PATH."""
    if not isinstance(target, str):
        return None
    parts = target.split(".")
    if len(parts) < 2:
        return None
    mods = tuple(parts[i + 1] for i in range(0, len(parts) - 2, 2) if parts[i] == "module")
    return ((*path, *mods), parts[-2], parts[-1])


def _json_removed(doc: Any, path: tuple[str, ...], blocks: dict) -> None:
    """Provisioners of the `removed` blocks of one JSON-syntax file (``.tf.json``) into BLOCKS."""
    entries = doc.get("removed") if isinstance(doc, dict) else None
    for entry in entries if isinstance(entries, list) else [entries] if isinstance(entries, dict) else ():
        provs = entry.get("provisioner") if isinstance(entry, dict) else None
        found = []
        for item in provs if isinstance(provs, list) else [provs] if isinstance(provs, dict) else ():
            for ptype, settings in item.items() if isinstance(item, dict) else ():
                for one in settings if isinstance(settings, list) else [settings]:
                    one = one if isinstance(one, dict) else {}
                    shown = {
                        k: v if isinstance(v, str) else json.dumps(v) for k, v in one.items() if k != "when"
                    }
                    when = one.get("when", "create")
                    found.append(
                        Provisioner(ptype, when if isinstance(when, str) else None, describe(ptype, shown))
                    )
        where = _removed_key(entry.get("from") if isinstance(entry, dict) else None, path)
        if found and where is not None:
            blocks[where] = tuple(found)


def from_workdir(workdir: Path) -> Provisioners:
    """The provisioners of the configuration in WORKDIR and the modules it calls (for the stream form)."""
    blocks: dict[BlockKey, tuple[Provisioner, ...]] = {}
    unknown: dict[str, str] = {}
    installed = _installed_modules(workdir)

    def read(directory: Path, path: tuple[str, ...]) -> None:
        label = ".".join(path)
        try:
            files = sorted(p for p in directory.iterdir() if p.name.endswith((".tf", ".tf.json")))
            texts = [(p.name, p.read_text(encoding="utf-8")) for p in files]
        except (OSError, UnicodeDecodeError) as exc:
            unknown[label] = f"cannot read {directory}: {getattr(exc, 'strerror', None) or exc}"
            return
        if not files:
            unknown[label] = f"no configuration files in {directory}"
            return
        if any(n.endswith(".tf.json") for n, _ in texts):
            unknown[label] = f"{directory} has JSON-syntax configuration (.tf.json) tfgate does not read"
            return
        has_modules = any(re.search(r"^\s*module\s", t, re.M) for _, t in texts)
        if not has_modules and not any("provisioner" in t for _, t in texts):
            return  # nothing to find: python-hcl2 (slow to load) is not needed
        try:
            calls = _hcl_module(texts, path, blocks)
        except Exception as exc:
            unknown[label] = f"cannot parse {directory}: {exc}"
            return
        for name, source in calls.items():
            child = (*path, name)
            where = installed.get(".".join(child))
            if where is None and source.startswith(("./", "../")):
                where = directory / source
            if where is None or not where.is_dir():
                unknown[".".join(child)] = f"module {'.'.join(child)} ({source}) is not installed here"
                continue
            read(where, child)

    read(workdir, ())
    return Provisioners(f"{workdir} (.tf files)", blocks, unknown)


def _installed_modules(workdir: Path) -> dict[str, Path]:
    try:
        doc = json.loads((workdir / ".terraform" / "modules" / "modules.json").read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for mod in doc.get("Modules") or ():
        if isinstance(mod, dict) and mod.get("Key"):
            out[mod["Key"]] = workdir / mod.get("Dir", "")
    return out


def read_provisioners(plan: Any, workdir: Path) -> Provisioners:
    """The provisioners behind PLAN (a LoadedPlan), from the most precise source it offers."""
    info = plan.info
    if info.input_format == "stream":
        return from_workdir(workdir)
    raw = bytes(plan.configuration) if plan.configuration is not None else b"null"
    if raw.strip() == b"null":
        return Provisioners(info.source, missing="the plan document has no `configuration` block")
    found = from_json(raw, info.source)
    # show -json does not record `removed` blocks, whose destroy-time provisioners run on a delete of a
    # resource no longer in the configuration: the plan file's own configuration is read for those too.
    if info.input_format == "binary" and plan.path is not None and (found.blocks or _unconfigured(plan)):
        return from_plan_file(plan.path, found)
    if info.input_format != "binary" and _unconfigured(plan):  # show -json: the working directory's blocks
        local = from_workdir(workdir)
        if local.unknown:
            why = next(iter(local.unknown.values()))
            missing = f"show -json does not record `removed` blocks' provisioners, and {why}"
            return Provisioners(found.source, found.blocks, missing=missing)
        return Provisioners(found.source, {**local.blocks, **found.blocks})
    return found


def _unconfigured(plan: Any) -> bool:
    """Does the plan destroy a resource with no configuration (where a `removed` block may run provisioners)?"""
    return any(c.mode == "managed" and c.destroys and c.action_reason in _NO_CONFIG for c in plan.changes)


# --- apply-time file reads (protected mode) ----------------------------------------------------------

#: Terraform's functions that read the filesystem (``core::NAME`` too): at apply time they read what the
#: applier can read, wherever the path points (an argument unknown at plan time is first evaluated then).
_FILE_FUNCTIONS = re.compile(
    r"\b(?:core::)?(file|fileexists|fileset|filebase64|filemd5|filesha1|filesha256|filesha512|filebase64sha256"
    r"|filebase64sha512|templatefile)\s*(?:(?:/\*.*?\*/|#[^\n]*\n|//[^\n]*\n)\s*)*\(",
    re.DOTALL,
)
_CONFIG_FILES = (".tf", ".tf.json", ".tofu", ".tofu.json")


def _json_strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)


def file_reads(path: Path) -> list[str]:
    """``FILE: FUNCTION`` for each filesystem function the configuration embedded in the saved plan at PATH
    calls (every module, HCL and JSON syntax, comments and strings included: fail closed). ValueError when the
    embedded configuration cannot be read."""
    import zipfile

    found: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():  # every entry, a name given twice too
                name = info.filename
                if not name.startswith("tfconfig/") or not name.endswith(_CONFIG_FILES):
                    continue
                text = archive.read(info).decode("utf-8")
                if name.endswith(".json"):
                    text = "\n".join(_json_strings(json.loads(text)))
                found += [
                    f"{name[len('tfconfig/') :]}: {m.group(1)}()" for m in _FILE_FUNCTIONS.finditer(text)
                ]
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the saved plan's embedded configuration cannot be read ({exc})") from None
    return found
