"""tfgate command line (thin: parses options, calls the pipeline, renders, exits)."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


def main() -> None:
    app()
