"""``doctor``: is this installation and deployment able to extract files? One line per check.

Each format's library is checked the way the pipeline uses it: a tiny sample is generated (in a
short-lived subprocess, so the caller never imports the format libraries) and extracted in the
isolated worker. Then the database (reachable, migrated), the blob store (writable), the Dagster
instance (answers) and the code location (imports). ``quickstart`` and ``extraction-pipeline
daemon`` run the same checks at start and refuse to start when one fails, instead of failing
every file of a format later.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from extraction_pipeline.settings import Settings

if TYPE_CHECKING:
    from extraction_pipeline.extraction.workers import WorkerPool


def format_checks() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Format -> (its sample's file name, the distributions that provide its library): every format
    of the table of formats that has a sample."""
    from extraction_pipeline.extraction import format_table

    return {
        spec.name: (spec.sample_file, spec.distributions or (spec.name,))
        for spec in format_table.formats()
        if spec.sample_file
    }


# Writes each sample on its own, so that one broken library fails only its own format.
_SAMPLE_PROGRAM = """\
import json, sys, contextlib, io
from pathlib import Path
from extraction_pipeline.samples import sample_writers
folder, names = Path(sys.argv[1]), json.loads(sys.argv[2])
writers = sample_writers()
errors = {}
for name in names:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            writers[name](folder / name)
    except BaseException as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"[:500]
print(json.dumps(errors))
"""
SAMPLE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    message: str


def _library_version(distributions: tuple[str, ...]) -> str:
    for name in distributions:
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"{distributions[0]} (not installed)"


def check_formats(settings: Settings, formats: tuple[str, ...] | None = None) -> list[Check]:
    """Generate one sample per format (default: all) and extract it in the isolated worker, as the
    pipeline does."""
    from extraction_pipeline.extraction.workers import WorkerPool

    checks_of = format_checks()
    formats = tuple(checks_of) if formats is None else formats

    with tempfile.TemporaryDirectory(prefix="extraction-doctor-") as tmp:
        folder = Path(tmp)
        names = [checks_of[fmt][0] for fmt in formats]
        try:
            completed = subprocess.run(
                [sys.executable, "-c", _SAMPLE_PROGRAM, str(folder), json.dumps(names)],
                capture_output=True,
                text=True,
                timeout=SAMPLE_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
            errors: dict[str, str] = json.loads(completed.stdout.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, ValueError, IndexError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ValueError | IndexError):
                last = (completed.stderr or "").strip().splitlines()
                reason = last[-1] if last else f"the sample writer exited with status {completed.returncode}"
            return [Check(fmt, False, f"the samples could not be generated: {reason}") for fmt in formats]
        size = min(2, len(formats))
        with WorkerPool.from_settings(settings, size=size) as pool, ThreadPoolExecutor(size) as threads:
            checks = list(
                threads.map(lambda fmt: _extract_sample(pool, folder, fmt, checks_of[fmt], errors), formats)
            )
    return checks


def _extract_sample(
    pool: WorkerPool, folder: Path, fmt: str, check: tuple[str, tuple[str, ...]], errors: dict[str, str]
) -> Check:
    name, distributions = check
    library = _library_version(distributions)
    if name in errors:
        return Check(fmt, False, f"{library}: writing a sample failed: {errors[name]}")
    started = time.perf_counter()
    envelope = pool.extract(folder / name)
    took_ms = (time.perf_counter() - started) * 1000
    if envelope.status == "succeeded" and envelope.format == fmt:
        return Check(fmt, True, f"{library}: sample {name} extracted in {took_ms:.0f} ms")
    if envelope.error is not None:
        return Check(fmt, False, f"{library}: {envelope.error.code}: {envelope.error.message}")
    return Check(fmt, False, f"{library}: the sample was read as {envelope.format}")


def check_database(settings: Settings) -> Check:
    from extraction_pipeline.persistence import migrate
    from extraction_pipeline.persistence.database import redact_url

    shown = redact_url(settings.database_url)
    if settings.is_embedded:
        db_file = settings.home / "extraction.db"
        if settings.database_url == f"sqlite:///{db_file}" and not db_file.exists():
            return Check("database", True, f"{shown}: not created yet (created and migrated on first use)")
    try:
        current = migrate.is_up_to_date(settings.database_url)
    except Exception as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return Check("database", False, f"{shown}: not reachable: {reason}")
    if current:
        return Check("database", True, f"{shown}: reachable, schema at revision {migrate.head_revision()}")
    if settings.is_embedded:
        return Check("database", True, f"{shown}: reachable; its schema is upgraded on first use")
    return Check("database", False, f"{shown}: the schema is not current: run `extraction-pipeline db upgrade`")


def check_blob_store(settings: Settings) -> Check:
    from extraction_pipeline.persistence.blobs import blob_store_from_url

    url = settings.storage_url
    if url.startswith("file://"):
        root = Path(url[len("file://") :])
        if not root.exists():
            parent = next((p for p in root.parents if p.exists()), None)
            if parent is not None and os.access(parent, os.W_OK | os.X_OK):
                return Check("blob store", True, f"{url}: not created yet (created on first upload)")
            return Check("blob store", False, f"{url}: does not exist and cannot be created (no write access)")
    try:
        store = blob_store_from_url(url)
        blob = store.put(io.BytesIO(b"extraction-pipeline doctor probe\n"))
        store.delete(blob.uri)
    except Exception as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return Check("blob store", False, f"{url}: not writable: {reason}")
    return Check("blob store", True, f"{url}: writable")


def check_dagster_instance(settings: Settings) -> Check:
    from extraction_pipeline.cli.instance import resolve_dagster_home

    configured = os.environ.get("DAGSTER_HOME", "").strip()
    if configured and not Path(configured).expanduser().is_dir():
        return Check("dagster instance", False, f"DAGSTER_HOME={configured} is not a folder")
    home = resolve_dagster_home(settings, required=False)
    if home is None:
        return Check(
            "dagster instance",
            True,
            "none configured yet (set DAGSTER_HOME; `extraction-pipeline quickstart` creates "
            f"{settings.home / 'dagster'})",
        )
    try:
        import dagster as dg

        instance = dg.DagsterInstance.from_config(str(home))
        try:
            runs = instance.get_runs_count()
        finally:
            instance.dispose()
    except Exception as exc:
        return Check("dagster instance", False, f"{home}: cannot be opened: {type(exc).__name__}: {exc}"[:1000])
    return Check("dagster instance", True, f"{home}: answers ({runs} run(s) recorded)")


def start_code_location_check() -> subprocess.Popen[str]:
    """Import the code location in a fresh interpreter (it runs while the other checks do)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import extraction_pipeline.definitions"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def finish_code_location_check(process: subprocess.Popen[str], timeout_s: float = 120.0) -> Check:
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return Check("code location", False, f"importing extraction_pipeline.definitions took over {timeout_s:g} s")
    if process.returncode != 0:
        last = stderr.strip().splitlines()
        return Check("code location", False, f"extraction_pipeline.definitions: {last[-1] if last else 'failed'}")
    return Check("code location", True, "extraction_pipeline.definitions loads")


def run_checks(settings: Settings, *, instance: bool = True) -> list[Check]:
    loader = start_code_location_check() if instance else None
    checks = check_formats(settings)
    checks.append(check_database(settings))
    checks.append(check_blob_store(settings))
    if instance:
        checks.append(check_dagster_instance(settings))
    if loader is not None:
        checks.append(finish_code_location_check(loader))
    return checks


def format_check(check: Check) -> str:
    return f"{'ok  ' if check.ok else 'FAIL'}  {check.check}: {check.message}"


def refuse_unless_healthy(settings: Settings, what: str, *, instance: bool = True) -> None:
    """Run the checks; on a failure print them and exit 1 (``what`` refuses to start)."""
    checks = run_checks(settings, instance=instance)
    failed = [check for check in checks if not check.ok]
    if not failed:
        click.echo(f"doctor: {len(checks)} checks passed", err=True)
        return
    for check in failed:
        click.echo(format_check(check), err=True)
    click.echo(
        f"error: {what} refuses to start: {len(failed)} of {len(checks)} doctor checks failed "
        "(run `extraction-pipeline doctor` for all of them)",
        err=True,
    )
    sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print a JSON list of {"check", "ok", "message"}.')
def doctor(as_json: bool) -> None:
    """Check the installation and the deployment; exit 0 when every check passes, 1 otherwise.

    Each format's library imports and extracts a tiny generated sample in the isolated worker;
    the database is reachable and migrated; the blob store is writable; the Dagster instance
    answers; the code location imports.
    """
    from extraction_pipeline.cli.common import load_settings

    settings = load_settings()
    checks = run_checks(settings)
    if as_json:
        click.echo(json.dumps([asdict(check) for check in checks], ensure_ascii=False))
    else:
        for check in checks:
            click.echo(format_check(check))
    sys.exit(0 if all(check.ok for check in checks) else 1)


COMMANDS: list[click.Command] = [doctor]
