"""Every command's ``--help`` reads as plain text: no reStructuredText markup from the docstrings."""

from __future__ import annotations

import re
import subprocess
import sys

import click
from click.testing import CliRunner

from extraction_pipeline.cli import cli

# ``literal``, :role:`target`, `link <url>`_ and similar markup that click prints as it is.
RST_MARKUP = re.compile(r"``|:[a-z]+:`|`_\b|\.\. [a-z]+::")


def every_command(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    context = click.Context(group, info_name="extraction-pipeline")
    found: list[tuple[str, ...]] = [prefix]
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, f"`{' '.join((*prefix, name))}` is listed but cannot be loaded"
        if isinstance(command, click.Group):
            found.extend(every_command(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


def test_no_command_help_has_restructuredtext_markup() -> None:
    commands = every_command(cli)
    assert {("upload",), ("status",), ("retry",), ("cancel",), ("daemon",), ("db", "upgrade")} <= set(
        commands
    )
    for path in commands:
        if path == ("daemon",):  # its --help goes to Dagster's option parser, in its own process
            done = subprocess.run(
                [sys.executable, "-m", "extraction_pipeline", "daemon", "--help"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            code, text = done.returncode, done.stdout
        else:
            result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
            code, text = result.exit_code, result.stdout
        name = " ".join(("extraction-pipeline", *path))
        assert code == 0, f"`{name} --help` exited {code}"
        assert text.strip(), f"`{name} --help` printed nothing"
        markup = RST_MARKUP.findall(text)
        assert not markup, f"`{name} --help` shows markup {markup}:\n{text}"
