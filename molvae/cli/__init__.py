"""The `molvae` command line: `main()` runs the typer app of `molvae.cli.app`; one module per command group."""
from molvae.cli.app import main

__all__ = ["main"]
