"""The ``extraction-pipeline`` command. One module per group of subcommands, imported on demand.

Every command's module is imported only when that command runs (or when ``--help`` lists them):
``extract`` on a local file never pays for SQLAlchemy, Alembic or Dagster.
"""

from __future__ import annotations

import importlib

import click

from extraction_pipeline import __version__

# Command name -> the module that defines it (each module keeps a ``COMMANDS`` list).
_COMMAND_MODULES: dict[str, str] = {
    "db": "database",
    "upload": "upload",
    "list": "listing",
    "status": "status",
    "extract": "extraction",
    "schema": "extraction",
    "retry": "operations",
    "cancel": "operations",
    "backfill": "operations",
    "delete": "delete",
    "search": "search",
    "thumbnail": "thumbnail",
    "serve": "serve",
    "quickstart": "quickstart",
    "daemon": "daemon",
    "doctor": "doctor",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported the first time they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        module_name = _COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"extraction_pipeline.cli.{module_name}")
        for command in getattr(module, "COMMANDS", ()):
            self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="extraction-pipeline")
def cli() -> None:
    """Extract metadata from uploaded PDF, DXF, DWG, IFC and STEP files."""


def main() -> None:
    cli(prog_name="extraction-pipeline")
