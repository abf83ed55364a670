"""The partitioned asset ``cloud_file_metadata``: ops ``detect_format`` -> ``extract`` -> ``materialize``.

A run handles one file (sensor) or a batch of files (``BackfillPolicy.multi_run``): every op loops
over ``context.partition_keys``. What flows between the ops lives in the database, not in memory
or local files: ``detect_format`` writes the format into ``extraction_status``, ``extract`` writes
each attempt's ``extraction_jobs`` row (the envelope rides on it until it is materialized), and
``materialize`` writes ``cloud_file_metadata`` + status + job row in one transaction. So a step
retried by its ``RetryPolicy``, a run re-executed from failure after a crash, or a step running on
another machine all see the same state, and a retried step skips files already finished.

One bad file fails only that file: permanent failures are recorded per file and the batch goes on;
at the end ``materialize`` raises ``Failure(allow_retries=False)`` naming them (the run fails and
the alert sensor announces it), while the other files are materialized. Transient failures make
the step raise after the whole batch was tried, and the retried step redoes only those files.

What the Dagster UI shows (see ``summary.py``): each materialized file's partition carries the key
facts of its format and the full metadata as JSON. A file that failed gets an ``AssetObservation``
on its partition with its name, error code and message: Dagster 1.13 keeps no "failed to
materialize" event in open-source storage and shows a failure's metadata only in the run log, so
the observation is what the partition's page has ("View all historical events" on the partition,
the asset's Events tab, or the partition's metadata table when it was materialized before).
"""

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import dagster as dg

from extraction_pipeline.orchestration.dagster_internals import CODE_VERSION_TAG
from extraction_pipeline.orchestration.partitions import cloud_files_partitions, file_id_of
from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.orchestration.summary import (
    code_span,
    failure_description,
    failure_line,
    failure_metadata,
    job_summary,
    materialization_metadata,
)
from extraction_pipeline.settings import Settings

ASSET_KEY = dg.AssetKey("cloud_file_metadata")
JOB_NAME = "extract_cloud_files"
# Files written per transaction by ``materialize``.
MATERIALIZE_CHUNK = 50


def extractor_code_version() -> str:
    """Follows the extractors' versions: any change marks the materialized partitions stale."""
    from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

    versions = EXTRACTOR_VERSIONS
    joined = ",".join(f"{fmt}={version}" for fmt, version in sorted(versions.items()))
    return f"extractors-{hashlib.sha256(joined.encode()).hexdigest()[:12]}"


class TransientBatchFailure(Exception):
    """Some files of the batch failed for a reason worth retrying: the step's RetryPolicy retries."""


def retry_policy(settings: Settings) -> dg.RetryPolicy:
    return dg.RetryPolicy(
        max_retries=settings.max_retries,
        delay=settings.retry_delay_s,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def _file_ids(context: dg.OpExecutionContext) -> list[int]:
    return [file_id_of(key) for key in context.partition_keys]


def _run_group(context: dg.OpExecutionContext) -> set[str]:
    """This run and the runs it re-executes (a retried run sees the work of its parents)."""
    run = context.run
    ids = {run.run_id}
    if run.parent_run_id:
        group = context.instance.get_run_group(run.run_id)
        if group is not None:
            ids.update(r.run_id for r in group[1])
    return ids


def _ancestor_runs(context: dg.OpExecutionContext) -> set[str]:
    """The runs this run re-executes (parent, grandparent, ...): all finished, their workers gone."""
    ids: set[str] = set()
    run: dg.DagsterRun | None = context.run
    while run is not None and run.parent_run_id and run.parent_run_id not in ids:
        ids.add(run.parent_run_id)
        run = context.instance.get_run_by_id(run.parent_run_id)
    return ids


@contextmanager
def cancel_on_termination(context: dg.OpExecutionContext, extraction: ExtractionResource) -> Iterator[None]:
    """A terminated run (UI, ``cancel``): its unfinished files end ``cancelled`` and the step stops.

    Dagster turns an interrupt inside a step that has a RetryPolicy into a retry (meant for
    preempted machines); a termination must stop the run instead, hence ``allow_retries=False``.
    """
    try:
        yield
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
        message = _cancel_unfinished_files(context, extraction)
        context.log.warning(message)
        raise dg.Failure(description=message, allow_retries=False) from exc


def _cancel_unfinished_files(context: dg.OpExecutionContext, extraction: ExtractionResource) -> str:
    """Cancel the run's unfinished files; say which of its files ended cancelled.

    ``extraction-pipeline cancel`` marks a file cancelled *before* it terminates the file's run, so
    ``cancel_files`` here may change nothing: the message names every file of this run (or of the
    runs it re-executes) that is cancelled now, whoever cancelled it.
    """
    repository = extraction.repository
    ids = _file_ids(context)
    cancelled_now = {row.id for row in repository.cancel_files(ids)}
    run_ids = _run_group(context)
    ended = [
        row
        for row in repository.list_files(ids=ids)
        if (row.extraction_status or {}).get("status") == "cancelled"
        and (row.id in cancelled_now or (row.extraction_status or {}).get("run_id") in run_ids)
    ]
    if not ended:
        return "the run was terminated; none of its files was cancelled (they had finished)"
    shown = ", ".join(f"{row.id} {code_span(row.filename)}" for row in ended[:50])
    more = f" and {len(ended) - 50} more" if len(ended) > 50 else ""
    return f"the run was terminated: {len(ended)} file(s) cancelled: {shown}{more}"


def _left_by_crashed_parent(status: dict[str, Any], run_id: str) -> bool:
    """A file the alert sensor marked failed because its run (this run's parent) died: resumable."""
    error = status.get("error") or {}
    return (
        status.get("status") == "failed" and status.get("run_id") != run_id and error.get("code") == "crashed"
    )


def _count_by_format(formats: Iterable[str]) -> str:
    counts = Counter(formats)
    return ", ".join(f"{fmt} {count}" for fmt, count in sorted(counts.items()))


def _error(kind: str, code: str, message: str) -> dict[str, str]:
    return {"kind": kind, "code": code, "message": message}


def _attempts(context: dg.OpExecutionContext, extraction: ExtractionResource) -> tuple[int, int]:
    """This attempt's number and how many there are at most."""
    return context.retry_number + 1, extraction.settings.max_retries + 1


def build_extraction_asset(settings: Settings) -> dg.AssetsDefinition:
    """The asset with retry and backfill policies taken from ``settings``."""
    policy = retry_policy(settings)

    def next_retry_at(retry_number: int) -> Any:
        from extraction_pipeline.persistence.models import utcnow

        delay = ((2 ** (retry_number + 1)) - 1) * settings.retry_delay_s
        return utcnow() + timedelta(seconds=delay)

    def record_failure(
        extraction: ExtractionResource,
        context: dg.OpExecutionContext,
        file_id: int,
        error: dict[str, str],
        *,
        job_id: int | None = None,
        final: bool,
        fmt: str | None = None,
    ) -> None:
        repository = extraction.repository
        attempt, max_attempts = _attempts(context, extraction)
        if job_id is None:
            job_id = repository.start_attempt(
                file_id, run_id=context.run_id, attempt=attempt, max_attempts=max_attempts
            )
            if job_id is None:
                return
        if final:
            repository.finish_attempt(job_id, "failed", error=error, file_status="failed", format=fmt)
            context.log.error(f"file {file_id}: {error['code']}: {error['message']}")
        else:
            repository.finish_attempt(
                job_id,
                "retrying",
                error=error,
                next_retry_at=next_retry_at(context.retry_number),
                file_status="running",
                format=fmt,
            )
            context.log.warning(f"file {file_id}: {error['code']} (will retry): {error['message']}")

    @dg.op(retry_policy=policy, out=dg.Out(dg.Nothing))
    def detect_format(context: dg.OpExecutionContext, extraction: ExtractionResource) -> None:
        """Sniff each file's format from its bytes; the file becomes ``running``."""
        from extraction_pipeline.extraction.detect import detect_format as detect

        repository = extraction.repository
        ids = _file_ids(context)
        run_ids = _run_group(context)
        repository.abandon_jobs(ids, except_run_ids=run_ids)
        rows = {row.id: row for row in repository.list_files(ids=ids)}
        attempt, max_attempts = _attempts(context, extraction)
        transient: list[int] = []
        detected: dict[int, str] = {}
        for file_id in ids:
            row = rows.get(file_id)
            if row is None:
                context.log.warning(f"file {file_id} no longer exists; skipped")
                continue
            status = row.extraction_status or {}
            if status.get("status") == "cancelled":
                context.log.info(f"file {file_id} was cancelled; skipped")
                continue
            if status.get("run_id") in run_ids and status.get("format"):
                continue  # detected by an earlier attempt of this run
            try:
                with extraction.local_path(row.storage_uri) as path:
                    detection = detect(path, row.filename)
            except Exception as exc:  # storage down, blob missing: maybe back on the next attempt
                error = _error("transient", "storage_unavailable", f"the stored file cannot be read: {exc}")
                final = attempt >= max_attempts
                record_failure(extraction, context, file_id, error, final=final)
                if not final:
                    transient.append(file_id)
                continue
            detected[file_id] = detection.format.value
        # One transaction for the whole batch, and one log line: every event a step logs is a
        # write to Dagster's event log (one connection each on PostgreSQL), per file it added up.
        repository.mark_running(detected, run_id=context.run_id)
        if detected:
            context.log.info(f"detected {len(detected)} file(s): {_count_by_format(detected.values())}")
        if transient:
            raise TransientBatchFailure(f"{len(transient)} file(s) could not be read: {transient[:20]}")

    @dg.op(retry_policy=policy, ins={"detected": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
    def extract(context: dg.OpExecutionContext, extraction: ExtractionResource) -> None:
        """Extract each detected file in an isolated worker; one ``extraction_jobs`` row per attempt."""
        repository = extraction.repository
        ids = _file_ids(context)
        run_ids = _run_group(context)
        rows = {row.id: row for row in repository.list_files(ids=ids)}
        jobs = repository.run_jobs(ids, run_ids)
        dead_runs = _ancestor_runs(context)
        if dead_runs:  # a re-execution (run retry): the attempts its crashed parent left open are over
            repository.abandon_jobs_of_runs(ids, dead_runs)
        if context.retry_number > 0:
            # A retry of this step: an earlier attempt that died before closing its row (the database
            # went away after the extraction) left it ``running``; that attempt is over.
            repository.abandon_jobs_of_runs(ids, [context.run_id], statuses=("running",))
        attempt, max_attempts = _attempts(context, extraction)
        transient: list[int] = []
        extracted: dict[int, tuple[str, int]] = {}
        for file_id in ids:
            row = rows.get(file_id)
            status = (row.extraction_status or {}) if row is not None else {}
            if row is None or status.get("run_id") not in run_ids:
                continue  # gone, or taken over by another run
            if status.get("status") != "running" and not _left_by_crashed_parent(status, context.run_id):
                continue  # cancelled, or failed while detecting
            job = jobs.get(file_id)
            if job is not None and job.status in ("extracted", "succeeded", "failed", "cancelled"):
                continue  # finished by an earlier attempt of this step
            job_id = repository.start_attempt(
                file_id, run_id=context.run_id, attempt=attempt, max_attempts=max_attempts
            )
            if job_id is None:
                continue  # cancelled just now
            try:
                with (
                    cancel_on_termination(context, extraction),
                    extraction.local_path(row.storage_uri) as path,
                ):
                    envelope = extraction.extract(
                        path, row.filename, attempt=attempt, max_attempts=max_attempts
                    )
            except dg.Failure:
                raise
            except Exception as exc:
                error = _error("transient", "storage_unavailable", f"the stored file cannot be read: {exc}")
                final = attempt >= max_attempts
                record_failure(extraction, context, file_id, error, job_id=job_id, final=final)
                if not final:
                    transient.append(file_id)
                continue
            if envelope.succeeded:
                repository.finish_attempt(job_id, "extracted", result=envelope.model_dump(mode="json"))
                extracted[file_id] = (envelope.format or "?", envelope.duration_ms or 0)
                continue
            error = (
                envelope.error.model_dump() if envelope.error else _error("permanent", "crashed", "no result")
            )
            final = error["kind"] == "permanent" or attempt >= max_attempts
            record_failure(
                extraction, context, file_id, error, job_id=job_id, final=final, fmt=envelope.format
            )
            if not final:
                transient.append(file_id)
        if extracted:
            total_ms = sum(ms for _, ms in extracted.values())
            slowest = max(extracted, key=lambda fid: extracted[fid][1])
            context.log.info(
                f"extracted {len(extracted)} file(s) in {total_ms} ms "
                f"({_count_by_format(fmt for fmt, _ in extracted.values())}); "
                f"slowest: file {slowest}, {extracted[slowest][1]} ms"
            )
        if transient:
            raise TransientBatchFailure(
                f"{len(transient)} file(s) failed transiently and will be retried: {transient[:20]}"
            )

    @dg.op(
        retry_policy=policy,
        ins={"extracted": dg.In(dg.Nothing)},
        out=dg.Out(dg.Nothing, is_required=False),
    )
    def materialize(context: dg.OpExecutionContext, extraction: ExtractionResource) -> Iterator[Any]:
        """Write metadata, status and job row per file in one transaction; report permanent failures."""
        repository = extraction.repository
        ids = _file_ids(context)
        run_ids = _run_group(context)
        jobs = repository.run_jobs(ids, run_ids)
        rows = {row.id: row for row in repository.list_files(ids=ids)}
        names = {file_id: row.filename for file_id, row in rows.items()}
        failed: list[tuple[int, dict[str, Any]]] = []
        ready: list[tuple[int, int, dict[str, Any], dict[str, Any]]] = []
        for file_id in ids:
            job = jobs.get(file_id)
            if job is None:
                continue
            if job.status == "failed":
                failed.append(
                    (file_id, {"kind": job.error_kind, "code": job.error_code, "message": job.error_message})
                )
                # The failed partition's page shows this: name, code and message as plain text.
                status = (rows[file_id].extraction_status or {}) if file_id in rows else {}
                yield dg.AssetObservation(
                    asset_key=ASSET_KEY,
                    partition=str(file_id),
                    description=failure_description(job.error_code),
                    metadata=failure_metadata(
                        names.get(file_id, str(file_id)),
                        failed[-1][1],
                        fmt=status.get("format"),
                        attempts=job.attempt,
                    ),
                )
                continue
            if job.status != "extracted" or not job.result:
                continue
            ready.append((file_id, job.id, job.result, job_summary(job.result)))
        # Batched writes: one transaction per chunk instead of one per file.
        for start in range(0, len(ready), MATERIALIZE_CHUNK):
            chunk = ready[start : start + MATERIALIZE_CHUNK]
            done = repository.materialize_many(chunk)
            skipped = [file_id for file_id, *_ in chunk if file_id not in done]
            if skipped:
                context.log.info(f"files {skipped} were cancelled; not materialized")
            for file_id, _, envelope, _ in chunk:
                if file_id not in done:
                    continue
                filename = names.get(file_id, envelope.get("file", {}).get("name", str(file_id)))
                # One event per file with its own metadata; the (optional) output is never yielded, so
                # Dagster adds no second, metadata-less materialization and no IO manager is involved.
                yield dg.AssetMaterialization(
                    asset_key=ASSET_KEY,
                    partition=str(file_id),
                    metadata=materialization_metadata(filename, envelope),
                    tags={CODE_VERSION_TAG: code_version},
                )
        if failed:
            # Plain text (the run log shows it as text); names quoted as code spans, so they stay
            # inert wherever the description is rendered as Markdown.
            lines = [f"- {failure_line(fid, names.get(fid, '?'), err)}" for fid, err in failed[:50]]
            if len(failed) > 50:
                lines.append(f"- and {len(failed) - 50} more (see the metadata failed_files)")
            raise dg.Failure(
                description=f"{len(failed)} file(s) failed permanently:\n" + "\n".join(lines),
                metadata={
                    "failed_files": dg.MetadataValue.json(
                        [{"id": fid, "filename": names.get(fid), **err} for fid, err in failed[:200]]
                    )
                },
                allow_retries=False,
            )

    code_version = extractor_code_version()

    @dg.graph_asset(
        name=ASSET_KEY.path[-1],
        partitions_def=cloud_files_partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(settings.backfill_batch_size),
        code_version=code_version,
        group_name="extraction",
        kinds={"python"},
        description=(
            "Metadata extracted from an uploaded file (one partition per cloud_files.id), materialized "
            "into cloud_file_metadata, cloud_files.extraction_status and extraction_jobs."
        ),
    )
    def cloud_file_metadata() -> Any:
        return materialize(extract(detect_format()))

    return cloud_file_metadata


def build_extraction_job(asset: dg.AssetsDefinition) -> Any:
    return dg.define_asset_job(
        JOB_NAME,
        selection=[asset],
        partitions_def=cloud_files_partitions,
        executor_def=dg.in_process_executor,
        description="Detect, extract and materialize the metadata of uploaded files.",
    )
