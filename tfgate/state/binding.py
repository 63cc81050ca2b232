"""What an approval is bound to: the root (a stable identity of where the state lives) and the prior state's
lineage and serial. Read from a saved plan's own state when there is one, else from the working directory's
state or backend (at `approve` time and again at `check` time); where it cannot be known, the binding says why.

Root identity: ``s3://BUCKET/KEY`` for S3 (``?workspace_key_prefix=P`` when set), ``gcs://BUCKET/PREFIX``,
``azurerm://ACCOUNT/CONTAINER/KEY``, ``remote://HOST/ORG/WORKSPACES`` (also ``cloud``), ``consul://ADDRESS/PATH``;
any other backend is ``TYPE:`` and a hash of its settings without credentials; a local state (or none) is
``local:`` and the working directory's real path (a protected root's privileged state directory: the root's). The backend is the one `terraform init` set up, else the one
the configuration declares.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tfgate.errors import TfgateError
from tfgate.model import StateBinding

_SECRET = re.compile(
    r"(secret|token|password|passwd|credential|access_key|sas|conn_str|client_certificate)", re.I
)
_KEYED = {
    "gcs": ("bucket", "prefix"),
    "azurerm": ("storage_account_name", "container_name", "key"),
    "consul": ("address", "path"),
}


def _local_root(workdir: Path) -> Path:
    """WORKDIR's real path; a protected root's privileged state directory is that root (an approval made in
    the root counts where its state is checked)."""
    from tfgate import sysconfig

    config = sysconfig.load()
    pin = config.pin_for(workdir) if config else None
    if pin is not None and pin.protected is not None and pin.root is not None:
        return pin.root
    return Path(workdir).resolve()


def root_identity(workdir: Path) -> str:
    """The stable identity of the root in ``workdir`` (see the module docstring)."""
    from tfgate.state.backend import configured_backend, initialised_backend

    backend = initialised_backend(workdir) or configured_backend(workdir)
    if backend is None or backend.type == "local":
        return f"local:{_local_root(workdir)}"
    cfg = backend.config
    if backend.type == "s3":
        root = f"s3://{cfg.get('bucket', '')}/{cfg.get('key', 'terraform.tfstate')}"
        prefix = cfg.get("workspace_key_prefix")
        return f"{root}?workspace_key_prefix={prefix}" if prefix not in (None, "env:") else root
    if backend.type in _KEYED:
        return f"{backend.type}://" + "/".join(str(cfg.get(k, "")) for k in _KEYED[backend.type])
    if backend.type in ("remote", "cloud"):
        ws = cfg.get("workspaces")
        ws = ws[0] if isinstance(ws, list) and ws else ws
        which = json.dumps(ws if isinstance(ws, dict) else {}, sort_keys=True, default=str)
        return f"{backend.type}://{cfg.get('hostname', 'app.terraform.io')}/{cfg.get('organization', '')}/{which}"
    settings = {k: v for k, v in cfg.items() if not _SECRET.search(str(k))}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{backend.type}:{digest}"


def state_binding(workdir: Path, plan: Any, workspace: str) -> StateBinding:
    """The binding of a loaded plan checked in ``workdir`` for ``workspace``."""
    try:
        root = root_identity(workdir)
    except TfgateError as exc:
        return StateBinding(None, None, None, "state", f"the root cannot be identified: {exc}")
    if plan.info.input_format == "binary" and plan.path is not None:
        from tfgate.state.planfile import plan_states

        try:
            planned, _ = plan_states(plan.path)
        except TfgateError as exc:
            return StateBinding(root, None, None, "plan", str(exc))
        if planned is None:
            return StateBinding(root, None, None, "plan", "the saved plan carries no prior state (tfstate)")
        if not planned.lineage:  # planned against no state yet
            return StateBinding(root, None, None, "plan")
        return StateBinding(root, planned.lineage, planned.serial, "plan")
    from tfgate.state import current_state

    form = "a plan -json stream" if plan.info.input_format == "stream" else "a show -json plan"
    try:
        current, evidence = current_state(workdir, workspace)
    except TfgateError as exc:
        return StateBinding(root, None, None, "state", f"the state cannot be read ({exc})")
    if evidence is not None and hasattr(evidence, "type"):
        return StateBinding(
            root, None, None, "state",
            f"{form} carries no prior state and tfgate cannot read the {evidence.type} backend's state, so "
            "the approval cannot be bound to a state: approve and check the saved plan (plan -out) instead",
        )  # fmt: skip
    if current is None or not current.lineage:
        return StateBinding(root, None, None, "state")
    return StateBinding(root, current.lineage, current.serial, "state")
