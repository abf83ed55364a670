"""``status``: one file's state, its error, its attempts (with times) and its key metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from extraction_pipeline.cli.common import (
    EXIT_FAILED,
    emit_json,
    fail,
    load_settings,
    open_repository,
    operation_errors,
)
from extraction_pipeline.cli.extraction import fact_lines, figure
from extraction_pipeline.cli.listing import printable
from extraction_pipeline.extraction import format_table
from extraction_pipeline.persistence.repository import status_of
from extraction_pipeline.persistence.state import ExtractionState, FileStatus, JobStatus
from extraction_pipeline.service.documents import file_status, status_document
from extraction_pipeline.service.errors import FileNotFound


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _error_text(code: str | None, message: str | None, width: int = 2000) -> str:
    text = figure(message, width=width)
    return f"{code}: {text}" if text else str(code)


def attempt_line(
    job: Any, *, retried: bool = False, now: datetime | None = None, shown_error: str | None = None
) -> str:
    """One attempt: its number (``final`` for a failure no retry follows), state, start and duration.

    ``retried``: a later attempt exists (an attempt that failed transiently stays ``retrying``).
    ``shown_error``: the message printed already (the file's error): the attempt gives only its code.
    """
    now = now or datetime.now(UTC)
    state = job.status
    if state == JobStatus.FAILED:
        label = f"attempt {job.attempt} (final)"  # a failure nothing retries
    elif state == JobStatus.RETRYING and retried:
        label, state = f"attempt {job.attempt}/{job.max_attempts}", "failed, retried"
    elif state in (JobStatus.RUNNING, JobStatus.RETRYING):
        label = f"attempt {job.attempt}/{job.max_attempts}"  # more may follow
    else:
        label = f"attempt {job.attempt}"
    parts = [f"{label}: {state}"]
    if job.started_at is not None:
        started = f"started {_when(job.started_at)}"
        if job.finished_at is not None:
            started += f", took {_duration((job.finished_at - job.started_at).total_seconds())}"
        elif job.status == JobStatus.RUNNING:
            started += f", running for {_duration(max((now - job.started_at).total_seconds(), 0))}"
        parts.append(started)
    elif job.finished_at is not None:
        parts.append(f"finished {_when(job.finished_at)}")
    if job.status == JobStatus.RETRYING and not retried and job.next_retry_at is not None:
        parts.append(f"next attempt at {_when(job.next_retry_at)}")
    if job.error_code:
        if shown_error is not None and job.error_message == shown_error:
            parts.append(job.error_code)
        else:
            parts.append(_error_text(job.error_code, job.error_message, width=160))
    return ", ".join(parts)


def metadata_lines(fmt: str, values: dict[str, Any]) -> list[str]:
    """``label: value`` for the key metadata of ``fmt`` (its ``status_facts`` in the table of
    formats); empty values are left out."""
    spec = format_table.find(fmt)
    return fact_lines(spec.status_facts if spec is not None else (), values)


def status_lines(row: Any, jobs: list[Any], stored: Any, now: datetime | None = None) -> list[str]:
    """``status`` for a person: the file, its error (code and message), its attempts, its key metadata."""
    state = status_of(row)
    current: ExtractionState = row.state or ExtractionState()
    fmt = current.format
    head = f"{row.id}  {printable(row.filename)}  {state}" + (f" ({fmt})" if fmt else "")
    lines = [head]
    if state == FileStatus.PENDING:
        lines.append("  not picked up by the pipeline yet")
    error = current.error
    if error is not None and error.code:
        kind = f" ({error.kind})" if error.kind else ""
        lines.append(f"  error{kind}: {_error_text(error.code, error.message)}")
    if current.deduplicated_from is not None:
        lines.append(f"  metadata copied from file {current.deduplicated_from} (same content)")
    message = error.message if error is not None else None
    for index, job in enumerate(jobs):
        line = attempt_line(job, retried=index < len(jobs) - 1, now=now, shown_error=message)
        lines.append(f"  {line}")
    if stored is not None:
        values = stored.metadata_ or {}
        lines.append(
            f"  {stored.format} metadata (extractor {stored.extractor_version}, "
            f"extracted {_when(stored.extracted_at)}):"
        )
        key_values = metadata_lines(stored.format, values)
        lines.extend(f"    {line}" for line in key_values)
        if not key_values:
            lines.append("    (no key values)")
        for warning in stored.warnings or ():
            text = figure(warning, width=2000)
            if text is not None:
                lines.append(f"  warning: {text}")
    return lines


@click.command()
@click.argument("file_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def status(file_id: int, as_json: bool) -> None:
    """A file's extraction status, its attempts and a summary of its metadata."""
    settings = load_settings()
    repository = open_repository(settings)
    with operation_errors():
        try:
            row, jobs, stored = file_status(repository, file_id)
        except FileNotFound as exc:
            fail(exc.message)
    repository.dispose()
    document = status_document(row, jobs, stored)
    if as_json:
        emit_json(document)
    else:
        for line in status_lines(row, jobs, stored):
            click.echo(line)
    if document["status"] == FileStatus.FAILED:
        raise SystemExit(EXIT_FAILED)


COMMANDS: list[click.Command] = [status]
