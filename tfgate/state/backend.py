"""The backend a configuration declares (.tf files, via python-hcl2) and the one the working directory
was initialised with (.terraform/terraform.tfstate)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError


@dataclass(frozen=True)
class Backend:
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        # python-hcl2 adds bookkeeping keys (__is_block__, __comments__): not settings
        return {_unquote(k): _unquote(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


class _Unsure(Exception):
    """The quick reader met HCL it does not handle: python-hcl2 decides."""


_TOKEN = re.compile(
    r"""(?P<space>\s+)|(?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)"""
    r"""|(?P<string>")|(?P<heredoc><<-?\s*"?(?P<tag>[A-Za-z_][\w-]*)"?[ \t]*\n)"""
    r"""|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<ident>[A-Za-z_][\w-]*)|(?P<punct>.)""",
    re.DOTALL,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) of an HCL file: comments and blanks dropped, heredoc bodies skipped whole."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        m = _TOKEN.match(text, i)
        if m is None:
            raise _Unsure
        kind = m.lastgroup if m.lastgroup != "tag" else "heredoc"
        if kind == "string":  # scanned by hand: templates nest strings and braces ("${x == "}" ? 1 : 2}")
            end = _string_end(text, i)
            out.append(("string", text[i:end]))
            i = end
            continue
        i = m.end()
        if kind == "heredoc":
            end = re.compile(rf"(?m)^[ \t]*{re.escape(m.group('tag'))}[ \t]*$").search(text, i)
            if end is None:
                raise _Unsure
            i = end.end()
            out.append(("heredoc", ""))
        elif kind not in ("space", "comment"):
            out.append((kind, m.group(kind)))
    return out


def _string_end(text: str, i: int) -> int:
    """Index just past the string literal opening at text[i] (a quote), template sequences included."""
    j, n = i + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
        elif c == '"':
            return j + 1
        elif c == "\n":
            raise _Unsure
        elif text.startswith(("${", "%{"), j) and not text.startswith(("$${", "%%{"), j - 1):
            j = _template_end(text, j + 2)
        else:
            j += 1
    raise _Unsure


def _template_end(text: str, j: int) -> int:
    """Index just past the `}` closing a template sequence whose content starts at text[j]."""
    depth, n = 1, len(text)
    while j < n:
        c = text[j]
        if c == '"':
            j = _string_end(text, j)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise _Unsure


def _quick_backend(text: str, source: str) -> Backend | None:
    """The backend block of one file without python-hcl2 (which costs about 0.1 s to load and build its
    grammar), for the common shape: `terraform { backend "TYPE" { key = literal ... } }`. Anything else
    (nested blocks, expressions, interpolation) raises _Unsure."""
    toks = _tokens(text)
    depth = 0
    i = 0
    while i < len(toks):
        value = toks[i][1]
        if value == "{":
            depth += 1
        elif value == "}":
            depth -= 1
        elif depth == 0 and toks[i : i + 2] == [("ident", "terraform"), ("punct", "{")]:
            j, inner = i + 2, 1
            while j < len(toks) and inner:
                k, v = toks[j]
                if inner == 1 and k == "ident" and v in ("backend", "cloud"):
                    name_tok = toks[j + 1] if j + 1 < len(toks) else ("", "")
                    if v == "backend" and name_tok[0] == "string" and toks[j + 2 : j + 3] == [("punct", "{")]:
                        return Backend(name_tok[1][1:-1], _literal_body(toks, j + 3), source)
                    if v == "cloud" and name_tok == ("punct", "{"):
                        return Backend("cloud", _literal_body(toks, j + 2), source)
                    raise _Unsure
                inner += v == "{"
                inner -= v == "}"
                j += 1
            i = j
            continue
        i += 1
    return None


def _literal_body(toks: list[tuple[str, str]], i: int) -> dict[str, Any]:
    """`key = "string" | number | true | false | null` pairs up to the closing brace, else _Unsure."""
    config: dict[str, Any] = {}
    while i < len(toks) and toks[i] != ("punct", "}"):
        if i + 2 >= len(toks) or toks[i][0] != "ident" or toks[i + 1] != ("punct", "="):
            raise _Unsure
        kind, value = toks[i + 2]
        if kind == "string" and "${" not in value and "%{" not in value:
            config[toks[i][1]] = value[1:-1]
        elif kind == "number":
            config[toks[i][1]] = float(value) if any(c in value for c in ".eE") else int(value)
        elif kind == "ident" and value in ("true", "false", "null"):
            config[toks[i][1]] = {"true": True, "false": False, "null": None}[value]
        else:
            raise _Unsure
        i += 3
    if i >= len(toks):
        raise _Unsure
    return config


def configured_backend(workdir: Path) -> Backend | None:
    """`terraform { backend "TYPE" {...} }` (or `cloud {}`) from the working directory's .tf files."""
    for path in sorted(workdir.glob("*.tf")):
        text = path.read_text(errors="replace")
        if "backend" not in text and "cloud" not in text:
            continue  # python-hcl2 is slow to load: parse only files that can declare a backend
        try:
            quick = _quick_backend(text, str(path))
        except _Unsure:
            pass
        else:
            if quick is not None:
                return quick
            continue
        import hcl2

        try:
            doc = hcl2.loads(text)
        except Exception as exc:  # lark raises many types; all mean "cannot read the configuration"
            raise TfgateError(f"{path}: cannot parse HCL: {str(exc).splitlines()[0]}") from None
        for block in doc.get("terraform", []):
            for backend in block.get("backend", []):
                for name, config in backend.items():
                    return Backend(_unquote(name), _unquote(config), str(path))
            if block.get("cloud"):
                return Backend("cloud", _unquote(block["cloud"][0]), str(path))
    return None


def initialised_backend(workdir: Path) -> Backend | None:
    """The backend recorded by `terraform init` in .terraform/terraform.tfstate, if any."""
    path = workdir / ".terraform" / "terraform.tfstate"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TfgateError(f"{path}: unreadable backend record: {exc}") from None
    backend = data.get("backend") or {}
    if not backend.get("type"):
        return None
    return Backend(backend["type"], backend.get("config") or {}, str(path))


def differences(configured: Backend, initialised: Backend) -> dict[str, tuple[Any, Any]]:
    """Settings the configuration gives that differ from what `terraform init` recorded."""
    if configured.type != initialised.type:
        return {"type": (configured.type, initialised.type)}
    out = {}
    for key, value in configured.config.items():
        recorded = initialised.config.get(key)
        if recorded is not None and recorded != value and not isinstance(value, dict | list):
            out[key] = (value, recorded)
    return out
