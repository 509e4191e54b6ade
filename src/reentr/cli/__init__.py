"""The command line: typer/click internals (`compat`, and `completion` for the shells), the
options (`options`), the commands (`commands`), what help says after the options (`helptext`)
and the entry point (`main`), the only module that exits. Each command turns its parameters
into a frozen `Config` and runs it."""

from reentr.cli.main import main

__all__ = ["main"]
