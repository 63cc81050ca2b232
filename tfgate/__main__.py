"""`python -m tfgate` and the `tfgate` command: `--version` is answered before the CLI (typer) is imported."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the CLI; `tfgate --version` alone needs none of it (typer's import is most of a tiny check)."""
    if sys.argv[1:] == ["--version"]:
        from tfgate import __version__

        sys.stdout.write(f"tfgate {__version__}\n")
        sys.stdout.flush()
        return
    from tfgate.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
