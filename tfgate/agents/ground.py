"""tfgate's own ground: the files and directories an agent must not write, move, delete or edit, because changing
them disarms the gate (the manifest, allowed_signers, approvals, the ledger and plans under ``.tfgate``, the
audit log, the terraform shim, ``/etc/tfgate``, tfgate's installation and the agents' hook configurations).

`Ground` answers "is this path tfgate's ground, and which part?"; static names are matched without touching the
disk, the paths only the environment or the manifest know (shim directories on PATH, ``TFGATE_AUDIT_LOG``, the
manifest's ``approvals.allowed_signers`` ...) are computed once, when first needed.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator

from tfgate.agents.words import lazy_re

#: Basenames that are tfgate's ground wherever they are (lower-cased; macOS file systems ignore case).
_NAMES: tuple[tuple[str, str], ...] = (
    ("tfgate.yaml", "the tfgate manifest"),
    ("tfgate.yml", "the tfgate manifest"),
    ("tfgate.json", "the tfgate manifest"),
    ("allowed_signers", "the approvals allowed_signers file"),
    ("allowed_signers.*", "the approvals allowed_signers file"),
    ("approval-*.json", "a signed approval"),
    ("approval-*.json.sig", "a signed approval"),
)
#: Directory names that are ground with everything in them.
_DIRS = {".tfgate": "tfgate's ledger, saved plans and audit log (.tfgate)"}
#: Agent hook configurations: removing the guard from them disarms it (suffixes of a path).
_AGENT_CONFIGS: tuple[tuple[str, ...], ...] = (
    (".claude", "settings.json"),
    (".claude", "settings.local.json"),
    (".codex", "hooks.json"),
    (".codex", "config.toml"),
    (".gemini", "settings.json"),
    (".cursor", "hooks.json"),
    (".github", "hooks"),
    (".copilot", "hooks"),
    (".windsurf", "hooks.json"),
    (".codeium", "windsurf", "hooks.json"),
    (".clinerules", "hooks"),
    ("cline", "hooks"),
    (".kiro", "agents"),
    (".kiro", "hooks"),
)
_GLOB = lazy_re(r"[*?\[]")
#: A word that is a path, maybe as an option's value (`--output=x`, `-ox`, `of=x`, `host:x`).
_PATH_WORD = lazy_re(r"^(?:--?[\w-]+=|-[A-Za-z](?=[./~\w])|[A-Za-z_]\w*=|[\w.@-]+:(?!/))?(?P<path>[^\s=]+)$")
#: Directories that never hold tfgate's ground and may be huge: not walked when a directory is removed.
_NO_WALK = frozenset(
    {".git", "node_modules", ".terraform", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}
)
MAX_WALK = 50_000  # entries looked at before a removed directory counts as unknown (blocked)
#: Everything the names above can appear as inside a longer text (code given to `python -c`, `perl -e`).
_MENTION = lazy_re(
    r"(?i)(tfgate\.(ya?ml|json)|allowed_signers|approval-[^\s'\"]*\.json|\.tfgate\b|/etc/tfgate"
    r"|\.claude/settings|\.codex/(hooks|config)|\.gemini/settings|\.cursor/hooks|\.github/hooks|"
    r"\.windsurf/hooks|\.clinerules/hooks|\.kiro/(agents|hooks))"
)


#: Files a shell reads at start-up: what is written into them runs in every later shell (PATH, TFGATE_*, aliases).
STARTUP_FILES = frozenset(
    {".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile", ".zshenv", ".zlogin", ".envrc",
     ".kshrc", ".mkshrc", ".cshrc", ".tcshrc", ".login", "config.fish", "bash.bashrc", "environment"}
)  # fmt: skip


def mentions_ground(text: str) -> str | None:
    """The first name of tfgate's ground named anywhere in a text (for code tfgate cannot read)."""
    m = _MENTION.search(text)
    return m.group(0) if m else None


def _static(parts: list[str]) -> str | None:
    """What a path (split into components, lower-cased) is by its names alone."""
    if not parts:
        return None
    for part in parts:
        if part in _DIRS:
            return _DIRS[part]
    last = parts[-1]
    if last.startswith(("tfgate.", "allowed_signers", "approval-")):  # fnmatch compiles a pattern per name
        for pattern, what in _NAMES:
            if fnmatch.fnmatchcase(last, pattern):
                return f"{what} ({last})"
    if parts[:2] == ["", "etc"] and len(parts) > 2 and parts[2] == "tfgate":
        return "tfgate's system configuration (/etc/tfgate)"
    for suffix in _AGENT_CONFIGS:
        n = len(suffix)
        for k in range(len(parts) - n + 1):
            if tuple(parts[k : k + n]) == suffix:
                return f"the agent hook configuration ({'/'.join(suffix)}) that runs the tfgate guard"
    return None


class Ground:
    """tfgate's ground as seen from a working directory (None: unknown, so relative paths are judged by name)."""

    def __init__(self, cwd: str | None = None) -> None:
        self.cwd = cwd
        self.origin = cwd
        self._dynamic: list[tuple[str, str]] | None = None

    # --- paths only the environment and the manifest know --------------------------------------------
    def dynamic(self) -> list[tuple[str, str]]:
        if self._dynamic is None:
            self._dynamic = [(os.path.realpath(p), what) for p, what in self._find_dynamic()]
        return self._dynamic

    def _find_dynamic(self) -> Iterator[tuple[str, str]]:
        base = self.origin or os.getcwd()
        for entry in os.environ.get("PATH", "").split(os.pathsep):
            if not entry:
                continue
            for name in ("terraform", "tofu"):
                script = _shim_script(os.path.join(entry, name))
                if script is not None:
                    yield os.path.join(base, entry), f"the terraform shim directory ({entry})"
                    yield from _shim_pins(script)
                    break
            for name in ("tfgate", "tfgate-guard", "tfgate-terraform"):
                exe = os.path.join(entry, name)
                if os.path.isfile(exe):
                    yield os.path.join(base, exe), f"tfgate's executable ({exe})"
        if os.environ.get("TFGATE_AUDIT_LOG"):
            yield os.path.join(base, os.environ["TFGATE_AUDIT_LOG"]), "the audit log (TFGATE_AUDIT_LOG)"
        for part in os.environ.get("TFGATE_APPROVALS", "").split(os.pathsep):
            if part:
                yield os.path.join(base, part), "the approvals (TFGATE_APPROVALS)"
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if os.path.basename(os.path.dirname(package)) in ("site-packages", "dist-packages"):
            yield package, f"tfgate's installation ({package})"
        yield from _manifest_paths(base)

    # --- the question ---------------------------------------------------------------------------------
    def path(self, word: str, *, contents: bool = False) -> str | None:
        """What part of tfgate's ground a path word is (or, with contents, holds: `rm -r infra`), or None."""
        m = _PATH_WORD.match(word)
        if not m:
            return None
        raw = m.group("path")
        if raw.startswith("~"):
            raw = os.path.expanduser(raw)
        parts = raw.lower().replace("\\", "/").split("/")
        what = _static(
            [p for p in parts if p not in (".", "")] if not raw.startswith("/") else ["", *parts[1:]]
        )
        if what or "$" in raw or "`" in raw:
            return what
        if _GLOB.search(raw):
            return self._glob(raw, contents)
        full = self._full(raw)
        if full is None:
            return None
        real = os.path.realpath(full)
        if real != full:  # a symlink (or a path through one) to the ground
            what = _static([p for p in real.lower().split("/")][1:]) if real.startswith("/") else None
            if what:
                return what
        for path, what in self.dynamic():
            if real == path or real.startswith(path.rstrip("/") + "/"):
                return what
            if contents and path.startswith(real.rstrip("/") + "/"):
                return what
        if contents and os.path.isdir(real):
            return _walk(real)
        return None

    def holds(self, directory: str) -> str | None:
        """A piece of tfgate's ground directly inside a directory (what an extraction there could overwrite);
        a relative directory with no known working directory counts as holding it (fail closed)."""
        if what := self.path(directory):
            return what
        full = self._full(directory)
        if full is None:
            return "tfgate's files, which may be in the working directory"
        try:
            names = os.listdir(full)
        except OSError:
            return None
        return next((w for n in names if (w := _static([n.lower()]))), None)

    def _full(self, raw: str) -> str | None:
        if os.path.isabs(raw):
            return os.path.normpath(raw)
        if self.cwd is None:
            return None
        return os.path.normpath(os.path.join(self.cwd, raw))

    def _glob(self, raw: str, contents: bool) -> str | None:
        import glob

        full = self._full(raw)
        if full is None:  # no working directory: does the pattern match a ground name at all?
            last = raw.rstrip("/").rsplit("/", 1)[-1].lower()
            for pattern, what in (*_NAMES, *((d, w) for d, w in _DIRS.items())):
                if fnmatch.fnmatchcase(pattern.replace("*", "x"), last):
                    return what
            return None
        for k, match in enumerate(glob.iglob(full)):  # as the shell: `*` skips dot files, `.*` does not
            if k > 1000:
                return "a pattern matching too many files to check"
            what = self.path(match, contents=contents)
            if what:
                return what
        return None


def _shim_script(path: str) -> str | None:
    """The text of a tfgate shim (None: no such file, or not a shim)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    return head.decode("utf-8", "replace") if b"tfgate-shim: generated by" in head else None


def _shim_pins(script: str) -> Iterator[tuple[str, str]]:
    """What an installed shim pins: the manifest it always uses and the real binary it runs."""
    import shlex

    line = next((ln for ln in script.splitlines() if ln.startswith("exec ")), "")
    try:
        words = shlex.split(line)
    except ValueError:
        return
    for flag, what in (
        ("--manifest", "the manifest the terraform shim pins"),
        ("--real", "the real binary the terraform shim runs"),
    ):
        if flag in words[:-1]:
            value = words[words.index(flag) + 1]
            if os.path.isabs(value):
                yield value, f"{what} ({value})"


def _walk(root: str) -> str | None:
    """The first piece of ground inside a directory that is about to be removed or overwritten (bounded)."""
    if os.path.basename(root.rstrip("/")) in _NO_WALK:
        return None  # `rm -rf node_modules`, `.terraform`: caches that never hold tfgate's files
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root).lower().replace("\\", "/").split("/")
        for name in [*dirnames, *filenames]:
            seen += 1
            if seen > MAX_WALK:
                return f"a directory too large to check for tfgate's files ({root})"
            what = _static([*(p for p in rel if p != "."), name.lower()])
            if what:
                return what
        dirnames[:] = [d for d in dirnames if d not in _NO_WALK]
    return None


#: `key: value` lines of the manifest keys that name files (block YAML or JSON; flow style falls back to YAML).
_FILE_KEYS = lazy_re(
    r"""(?m)^[ \t]*["']?(allowed_signers|ledger|log)["']?[ \t]*:[ \t]*["']?([^"'#,\n{}]+?)["']?[ \t]*,?[ \t]*(#.*)?$"""
)
_KEY_WHAT = {
    "allowed_signers": "the approvals allowed_signers file",
    "ledger": "tfgate's ledger",
    "log": "the audit log",
}


def _manifest_paths(base: str) -> Iterator[tuple[str, str]]:
    """The files the manifests in `base` name (allowed_signers, ledger, audit log). Read by lines, not parsed
    (PyYAML costs more than the whole hook); a manifest in flow style is parsed."""
    for name in ("tfgate.yaml", "tfgate.yml", "tfgate.json"):
        path = os.path.join(base, name)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(1_000_000)
        except (OSError, UnicodeDecodeError):
            continue
        found = [(m.group(1), m.group(2).strip()) for m in _FILE_KEYS.finditer(text)]
        if "{" in text and len(found) < len(re.findall(r"allowed_signers|ledger|\blog\b", text)):
            found += _parsed(text)  # flow style (`audit: {log: x}`, one-line JSON)
        for key, value in found:
            if value:
                yield os.path.join(base, os.path.expanduser(value)), f"{_KEY_WHAT[key]} ({value})"


def _parsed(text: str) -> list[tuple[str, str]]:
    try:
        import yaml

        data = yaml.safe_load(text)
    except Exception:
        return []
    out = []
    for section, key in (("approvals", "allowed_signers"), ("state", "ledger"), ("audit", "log")):
        value = (
            data.get(section, {}).get(key)
            if isinstance(data, dict) and isinstance(data.get(section), dict)
            else None
        )
        if isinstance(value, str):
            out.append((key, value))
    return out


_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/private/tmp")
_FOUND_ON_PATH = ("terraform", "tofu", "terragrunt", "tfgate", "tfgate-guard", "tfgate-terraform")


def path_change(value: str, ground: Ground) -> str | None:
    """Why a new PATH value could make `terraform` or `tfgate` something else (None: it cannot): a directory put
    before the old PATH that is relative, temporary, computed by a command, or holds its own terraform/tfgate;
    or a PATH that no longer holds the terraform shim's directory."""
    entries = value.split(":")
    keeps = next((k for k, e in enumerate(entries) if e in ("$PATH", "${PATH}")), None)
    first = entries if keeps is None else entries[:keeps]
    for entry in first:
        if not entry:
            return "an empty entry (the working directory) first on PATH"
        if "$(" in entry or "`" in entry:
            return f"`{entry}`, a directory a command computes, first on PATH"
        path = os.path.expandvars(os.path.expanduser(entry))
        if "$" in path:
            continue  # a variable the hook does not know (`$GOPATH/bin`)
        if not path.startswith("/"):
            return f"`{entry}`, a relative directory, first on PATH"
        if any(_shim_script(os.path.join(path, n)) is not None for n in ("terraform", "tofu")):
            continue  # the terraform shim's own directory
        if path.startswith(_TEMP_DIRS):
            return f"`{entry}`, a temporary directory anyone can fill, first on PATH"
        for name in _FOUND_ON_PATH:
            exe = os.path.join(path, name)
            if os.path.isfile(exe) and _shim_script(exe) is None:
                return f"`{entry}`, which holds another {name}, before the terraform shim on PATH"
    if keeps is None:
        kept = {os.path.realpath(os.path.expandvars(os.path.expanduser(e))) for e in entries if e}
        for path, what in ground.dynamic():
            if what.startswith("the terraform shim directory") and path not in kept:
                return f"a PATH without {what}"
    return None
