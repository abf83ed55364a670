"""The ``extraction-pipeline`` command. One module per group of subcommands."""

from __future__ import annotations

import click

from extraction_pipeline.cli import daemon, database, extraction, files, operations, quickstart


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="extraction-pipeline")
def cli() -> None:
    """Extract metadata from uploaded PDF, DXF, DWG, IFC and STEP files."""


cli.add_command(database.db)
for command in (
    *files.COMMANDS,
    *extraction.COMMANDS,
    *operations.COMMANDS,
    *quickstart.COMMANDS,
    *daemon.COMMANDS,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="extraction-pipeline")
