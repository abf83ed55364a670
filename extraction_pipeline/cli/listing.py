"""``list``: every file's extraction status, one aligned row each (or JSON)."""

from __future__ import annotations

import shutil
from typing import Any

import click

from extraction_pipeline.cli.choices import FormatChoice
from extraction_pipeline.cli.common import emit_json, load_settings, open_repository, operation_errors
from extraction_pipeline.persistence.state import STATUSES, FileStatus
from extraction_pipeline.service.documents import file_summary

__all__ = ["file_summary", "file_table", "list_files", "printable"]


@click.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only files in this state.")
@click.option("--format", "fmt", type=FormatChoice(unknown=True))
@click.option("--limit", type=click.IntRange(min=1), help="At most this many files.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_files(status: str | None, fmt: str | None, limit: int | None, as_json: bool) -> None:
    """Files with their extraction status."""
    settings = load_settings()
    repository = open_repository(settings)
    with operation_errors():
        rows = repository.list_files(status=status, fmt=fmt, limit=limit)
    repository.dispose()
    summaries = [file_summary(row) for row in rows]
    if as_json:
        emit_json(summaries)
        return
    if not summaries:
        click.echo(
            "no files" + (f" with status {status}" if status else "") + (f" in format {fmt}" if fmt else ""),
            err=True,
        )
        return
    for line in file_table(summaries, shutil.get_terminal_size(fallback=(120, 24)).columns):
        click.echo(line)


# The widest the file name column gets before names are shortened in the middle.
NAME_WIDTH = 40
# The narrowest the name and error columns get, whatever the terminal's width.
MIN_NAME_WIDTH = 16
ERROR_WIDTH = 24


def printable(text: str) -> str:
    """One line of printable characters (a name from the host app may hold tabs or newlines)."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))


def _shorten_end(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "\u2026"


def _shorten_middle(text: str, width: int) -> str:
    """``a-very-long-drawing-name-rev-12.dwg`` -> ``a-very-long-dr\u2026ev-12.dwg``: the end (extension) stays."""
    if len(text) <= width:
        return text
    tail = max((width - 1) // 3, 1)
    return text[: width - 1 - tail] + "\u2026" + text[-tail:]


def file_table(summaries: list[dict[str, Any]], columns: int) -> list[str]:
    """``list``: a header and one aligned row per file; long names and messages shortened to fit ``columns``."""
    headers = ("ID", "STATUS", "FORMAT", "ATTEMPTS", "FILE", "ERROR")
    cells = []
    for item in summaries:
        error = item["error"] or {}
        message = ""
        if error:
            message = printable(f"{error.get('code') or 'error'}: {error.get('message') or ''}").rstrip(": ")
        cells.append(
            [
                str(item["id"]),
                item["status"] or FileStatus.PENDING,
                item["format"] or "-",
                str(item["attempts"] or 0),
                printable(item["filename"]),
                message,
            ]
        )
    widths = [max(len(headers[i]), *(len(row[i]) for row in cells)) for i in range(4)]
    room = columns - sum(widths) - 2 * 5  # for the name and the error, after the separators
    longest = max(len(headers[4]), *(len(row[4]) for row in cells))
    name_width = min(longest, max(room, MIN_NAME_WIDTH))
    if any(row[5] for row in cells):  # the errors share the room
        name_width = min(longest, NAME_WIDTH, max(room // 2, MIN_NAME_WIDTH))
    widths.append(name_width)
    error_width = max(room - widths[4], ERROR_WIDTH)
    lines = []
    for row in [list(headers), *cells]:
        row[4] = _shorten_middle(row[4], widths[4])
        row[5] = _shorten_end(row[5], error_width)
        fixed = [row[0].rjust(widths[0])] + [row[i].ljust(widths[i]) for i in range(1, 5)]
        lines.append(("  ".join([*fixed, row[5]])).rstrip())
    return lines


COMMANDS: list[click.Command] = [list_files]
