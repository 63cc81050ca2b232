"""The backend a configuration declares (.tf files, via python-hcl2) and the one the working directory
was initialised with (.terraform/terraform.tfstate)."""

from __future__ import annotations

import json
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
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def configured_backend(workdir: Path) -> Backend | None:
    """`terraform { backend "TYPE" {...} }` (or `cloud {}`) from the working directory's .tf files."""
    for path in sorted(workdir.glob("*.tf")):
        text = path.read_text(errors="replace")
        if "backend" not in text and "cloud" not in text:
            continue  # python-hcl2 is slow to load: parse only files that can declare a backend
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
