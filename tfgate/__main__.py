"""`python -m tfgate` and the `tfgate` command: `--version` and plain `tfgate check` command lines
(tfgate.cli_check) are answered before the CLI (typer) is imported."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the CLI; `tfgate --version` alone needs none of it (typer's import is most of a tiny check)."""
    if sys.argv[1:] == ["--version"]:
        from tfgate import __version__

        sys.stdout.write(f"tfgate {__version__}\n")
        sys.stdout.flush()
        return
    if sys.argv[1:2] == ["check"]:
        import gc

        from tfgate.cli_check import run_lean

        gc.disable()  # as the CLI's main: a short-lived process (see tfgate.cli.main)
        run_lean(sys.argv[2:])  # exits, unless typer must parse the command line
        gc.enable()
    from tfgate.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
