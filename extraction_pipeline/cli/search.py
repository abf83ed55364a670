"""``search``: full-text search over the extracted text of every file."""

from __future__ import annotations

from dataclasses import asdict

import click

from extraction_pipeline.cli.choices import FormatChoice
from extraction_pipeline.cli.common import emit_json, load_settings, open_repository, operation_errors
from extraction_pipeline.cli.listing import printable


@click.command(name="search")
@click.argument("query")
@click.option("--format", "fmt", type=FormatChoice(unknown=False), help="Only files of this format.")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=20, show_default=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print a JSON list of {"id","filename","format","rank","snippet"}.',
)
def search(query: str, fmt: str | None, limit: int, as_json: bool) -> None:
    """Files whose text matches QUERY, best first.

    As in a web search: words (all must be there), "a quoted phrase", -word (must not be there),
    and `or` between alternatives. Exit code 0 with or without matches.
    """
    settings = load_settings()
    repository = open_repository(settings)
    with operation_errors():
        hits = repository.search(query, fmt=fmt, limit=limit)
    repository.dispose()
    if as_json:
        emit_json([asdict(hit) for hit in hits])
        return
    if not hits:
        click.echo("no file matches", err=True)
        return
    for hit in hits:
        click.echo(f"{hit.id}\t{hit.format or '?'}\t{printable(hit.filename)}\t{hit.rank:.4g}")
        click.echo(f"    {printable(hit.snippet)}")


COMMANDS: list[click.Command] = [search]
