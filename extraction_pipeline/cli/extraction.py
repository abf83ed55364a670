"""``extract`` and ``schema``: the extraction core on local files, no database, no Dagster."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Union

import click

from extraction_pipeline.extraction import format_table

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """The files named on the command line, directories walked recursively and sorted.

    Raises ``click.BadParameter`` (exit code 2) for a missing or unreadable path and for a
    directory that holds no file.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise click.BadParameter(f"{path}: no such file or directory", param_hint="PATH")
        if path.is_dir():
            found = sorted(_walk(path))
            if not found:
                raise click.BadParameter(f"{path}: the directory holds no file", param_hint="PATH")
        elif path.is_file():
            found = [path]
        else:
            raise click.BadParameter(f"{path}: not a regular file", param_hint="PATH")
        for file in found:
            if not os.access(file, os.R_OK):
                raise click.BadParameter(f"{file}: permission denied", param_hint="PATH")
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def _walk(directory: Path) -> Iterable[Path]:
    if not os.access(directory, os.R_OK | os.X_OK):
        raise click.BadParameter(f"{directory}: permission denied", param_hint="PATH")

    def on_error(error: OSError) -> None:
        raise click.BadParameter(f"{error.filename}: {error.strerror}", param_hint="PATH")

    for root, dirs, names in os.walk(directory, onerror=on_error):
        dirs.sort()
        for name in names:
            candidate = Path(root) / name
            if candidate.is_file():
                yield candidate


def figure(value: Any, *, most: int = 8, width: int = 160) -> str | None:
    """A metadata value as a person reads it, or None for an empty one (None, "", [], {}), which
    is not shown: names of a list (the first ``most``), counts by kind, a box as its size and corners.
    """

    def number(x: float) -> str:
        if isinstance(x, int) or float(x).is_integer():
            return str(int(x))
        return f"{x:.3f}".rstrip("0").rstrip(".")

    def item(element: Any) -> str | None:
        if isinstance(element, dict):
            if isinstance(element.get("size"), list) and "count" in element:  # PDF page sizes
                return f"{' x '.join(number(v) for v in element['size'])} ({element['count']})"
            name = element.get("name") or element.get("title")
            if isinstance(name, str) and name.strip():  # storeys, parts, outline entries
                text = " ".join(name.split())
                if isinstance(element.get("instances"), int) and element["instances"] > 1:
                    text += f" x{element['instances']}"
                if isinstance(element.get("children"), list) and element["children"]:
                    text += f" ({len(element['children'])} parts)"
                return text
        return figure(element, most=most, width=width)

    text: str | None
    if value is None:
        return None
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int | float):
        text = number(value)
    elif isinstance(value, str):
        text = " ".join(value.split()) or None
    elif isinstance(value, dict):
        box_min, box_max = value.get("min"), value.get("max")
        if (
            len(value) == 2
            and isinstance(box_min, list)
            and isinstance(box_max, list)
            and box_min
            and box_max
        ):
            size = " x ".join(number(b - a) for a, b in zip(box_min, box_max, strict=False))
            corners = f"{', '.join(map(number, box_min))} to {', '.join(map(number, box_max))}"
            text = f"{size} (from {corners})"
        elif value and all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
            counts = sorted(value.items(), key=lambda kv: (-kv[1], str(kv[0])))
            shown = ", ".join(f"{k} {v}" for k, v in counts[:most])
            more = ", ..." if len(counts) > most else ""
            text = f"{sum(value.values())} ({shown}{more})"
        else:
            parts = [(k, figure(v, most=most, width=width)) for k, v in value.items()]
            text = ", ".join(f"{k}: {v}" for k, v in parts if v is not None) or None
    elif isinstance(value, list | tuple):
        items = [shown for shown in map(item, value) if shown is not None]
        text = ", ".join(items[:most]) or None
        if text is not None and len(items) > most:
            text += f", ... ({len(items)} in all)"
    else:
        text = " ".join(str(value).split()) or None
    if text is not None and len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    return text


def fact_lines(facts: Iterable[format_table.Fact], metadata: dict[str, Any]) -> list[str]:
    """``label: value`` per fact (its first key's value), in order; empty values are left out."""
    lines = []
    for fact in facts:
        shown = figure(metadata.get(fact.keys[0]))
        if shown is not None:
            lines.append(f"{fact.label}: {shown}")
    return lines


def format_summary(envelope: dict[str, Any], *, with_text: bool = False) -> str:
    """A few lines a person can read: name, format, status, key figures, warnings, error (and,
    ``with_text``, the text, indented).

    Empty values (None, "", [], {}) are left out: no line says ``title:`` with nothing after it.
    """
    fmt = envelope["format"]
    kind = f"{fmt}/{envelope['variant']}" if envelope.get("variant") else fmt
    size = envelope["file"]["size_bytes"]
    took = envelope["duration_ms"]
    lines = [f"{envelope['file']['name']}: {kind}, {envelope['status']} ({size} bytes, {took} ms)"]
    if not envelope.get("extension_matches", True) and fmt != "unknown":
        lines.append("  the file name extension does not match the content")
    # What it shows per format: the format's ``summary`` in the table of formats.
    spec = format_table.find(fmt)
    facts = spec.summary if spec is not None else ()
    lines.extend(f"  {line}" for line in fact_lines(facts, envelope.get("metadata") or {}))
    for warning in envelope.get("warnings") or ():
        text = figure(warning, width=2000)
        if text is not None:
            lines.append(f"  warning: {text}")
    error = envelope.get("error")
    if error:
        message = figure(error.get("message"), width=2000)
        lines.append(f"  error: {error['code']} ({error['kind']})" + (f": {message}" if message else ""))
    if with_text and envelope["status"] == "succeeded":
        text = envelope.get("text")
        if text is None:
            lines.append("  text: none")
        else:
            cut = " (cut at the limit)" if envelope.get("text_truncated") else ""
            lines.append(f"  text: {len(text)} characters{cut}")
            lines.extend(f"    {line}" for line in text.splitlines())
    return "\n".join(lines)


@click.command("extract")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the envelope (a list for several files) as JSON."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Wall-clock limit per file in seconds [default: EXTRACTION_TIMEOUT_S or 120].",
)
@click.option(
    "--memory-mb",
    type=click.IntRange(min=64),
    default=None,
    help="Address-space limit of a worker in MiB [default: EXTRACTION_MEMORY_LIMIT_MB or 2048].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Files extracted in parallel, each in its own process [default: EXTRACTION_WORKERS or 1].",
)
@click.option(
    "--text",
    "with_text",
    is_flag=True,
    help='Also extract the plain text (JSON: "text", null when the file has none, and "text_truncated"; '
    "at most EXTRACTION_MAX_TEXT_CHARS characters).",
)
@click.option(
    "--thumbnail",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the file's PNG preview (512 px, one file only); a warning says why when none is made.",
)
def extract(
    paths: tuple[Path, ...],
    as_json: bool,
    timeout: float | None,
    memory_mb: int | None,
    workers: int | None,
    with_text: bool,
    thumbnail: Path | None,
) -> None:
    """Detect and extract local files (directories recursively), each in an isolated worker.

    Exit code 0 when every file succeeded, 1 when any failed, 2 for a usage or input error.
    """
    from extraction_pipeline.extraction.envelope import TEXT_KEYS
    from extraction_pipeline.extraction.workers import WorkerPool
    from extraction_pipeline.settings import Settings, SettingsError

    _configure_logging()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:  # one line, exit 2, as every other command says it
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    files = collect_files(paths)
    if thumbnail is not None and len(files) != 1:
        raise click.BadParameter(f"one file at a time, not {len(files)}", param_hint="--thumbnail")
    overrides: dict[str, Any] = {}
    if timeout is not None:
        overrides["timeout_s"] = timeout
    if memory_mb is not None:
        overrides["memory_bytes"] = memory_mb * 1024 * 1024
    size = min(workers or settings.extraction_workers, len(files))
    overrides["size"] = size

    text_chars = settings.max_text_chars if with_text else None
    hidden = None if with_text else set(TEXT_KEYS)

    def one(pool: WorkerPool, path: Path) -> dict[str, Any]:
        try:
            envelope = pool.extract(path, max_text_chars=text_chars, preview=thumbnail is not None)
        except OSError as exc:  # vanished or became unreadable after it was listed
            raise click.BadParameter(f"{path}: {exc.strerror or exc}", param_hint="PATH") from None
        if thumbnail is not None and envelope.preview_png is not None:
            import base64

            try:
                thumbnail.write_bytes(base64.b64decode(envelope.preview_png))
            except OSError as exc:
                raise click.BadParameter(
                    f"{thumbnail}: {exc.strerror or exc}", param_hint="--thumbnail"
                ) from None
        return envelope.model_dump(mode="json", exclude=hidden)

    results: list[dict[str, Any]] = []
    with WorkerPool.from_settings(settings, **overrides) as pool:
        pool.prestart()  # the worker boots while this process loads the envelope machinery
        if size == 1:
            envelopes: Iterable[dict[str, Any]] = (one(pool, path) for path in files)
            executor = None
        else:
            executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="extract")
            envelopes = executor.map(lambda path: one(pool, path), files)
        try:
            for data in envelopes:  # in input order
                results.append(data)
                if not as_json:
                    click.echo(format_summary(data, with_text=with_text))
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            # Every file is done (or the command was interrupted): the workers hold no state, so
            # they are killed rather than asked to exit (an orderly interpreter shutdown with the
            # format libraries loaded costs 60-110 ms of a one-file extract).
            pool.terminate()

    if as_json:
        document: Any = (
            results[0] if len(paths) == 1 and len(files) == 1 and not paths[0].is_dir() else results
        )
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    failed = sum(1 for r in results if r["status"] != "succeeded")
    if len(results) > 1 and not as_json:
        click.echo(f"{len(results)} files: {len(results) - failed} succeeded, {failed} failed")
    sys.exit(1 if failed else 0)


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        level = os.environ.get("EXTRACTION_LOG_LEVEL", "WARNING").upper()
        logging.basicConfig(stream=sys.stderr, level=level, format="%(levelname)s %(name)s: %(message)s")


# --------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------


def envelope_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the envelope, ``metadata`` refined per format.

    ``metadata`` is any of the per-format models or a generic object (a failed extraction has
    ``{}``); in addition, a succeeded envelope of format X must carry X's metadata model.
    """
    from pydantic import Field, create_model

    from extraction_pipeline.extraction.envelope import Envelope

    models: dict[str, type] = {}
    from extraction_pipeline.extraction.registry import metadata_models

    for fmt, model in metadata_models().items():
        try:
            model.model_json_schema(mode="serialization")  # type: ignore[attr-defined]
        except Exception as exc:  # a field type without a JSON Schema: leave the model out
            log.warning("no JSON Schema for %s metadata: %s", fmt, exc)
            continue
        models[fmt] = model
    metadata_type: Any = Union[(*models.values(), dict[str, Any])]  # noqa: UP007 - built at runtime
    described = create_model(
        "Envelope",
        __base__=Envelope,
        __doc__=Envelope.__doc__,
        metadata=(
            metadata_type,
            Field(
                default_factory=dict,
                description="Per format: "
                + ", ".join(f"{fmt} -> {model.__name__}" for fmt, model in models.items())
                + "; empty when the extraction failed.",
            ),
        ),
    )
    schema = described.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Envelope"
    # Every key is always present in what `extract --json` prints, defaults included; the text's
    # keys only with `--text`.
    from extraction_pipeline.extraction.envelope import TEXT_KEYS

    schema["required"] = [key for key in schema.get("properties", {}) if key not in TEXT_KEYS]
    conditions = []
    for fmt, model in models.items():
        if model.__name__ not in schema.get("$defs", {}):
            continue
        conditions.append(
            {
                "if": {
                    "properties": {"format": {"const": fmt}, "status": {"const": "succeeded"}},
                    "required": ["format", "status"],
                },
                "then": {"properties": {"metadata": {"$ref": f"#/$defs/{model.__name__}"}}},
            }
        )
    if conditions:
        schema["allOf"] = conditions
    return schema


@click.command("schema")
def schema() -> None:
    """Print the JSON Schema of the result envelope."""
    _configure_logging()
    click.echo(json.dumps(envelope_json_schema(), indent=2))


COMMANDS: list[click.Command] = [extract, schema]
