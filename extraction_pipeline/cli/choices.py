"""Choice lists the commands share, derived from the table of formats (no format library imported)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from extraction_pipeline.extraction import format_table


class FormatChoice(click.Choice):  # type: ignore[type-arg]
    """``--format``: the names of the table of formats, read when the option is used (a format
    registered after the command was defined is a choice too), ``"unknown"`` last when asked."""

    def __init__(self, *, unknown: bool = True) -> None:
        self.unknown = unknown
        super().__init__((), case_sensitive=True)

    @property  # type: ignore[override]
    def choices(self) -> Sequence[Any]:
        return format_table.format_names(unknown=self.unknown)

    @choices.setter
    def choices(self, value: Sequence[Any]) -> None:  # click's __init__ sets it: the table decides
        pass
