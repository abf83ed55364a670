"""The partitioned asset ``cloud_file_metadata``: ops ``detect_format`` -> ``extract`` -> ``materialize``.

A run handles one file (sensor) or a batch of files (``BackfillPolicy.multi_run``): every op loops
over ``context.partition_keys``. What flows between the ops lives in the database, not in memory
or local files: ``detect_format`` writes the format into ``extraction_status``, ``extract`` writes
each attempt's ``extraction_jobs`` row (the envelope rides on it until it is materialized), and
``materialize`` writes ``cloud_file_metadata`` + status + job row in one transaction. So a step
retried by its ``RetryPolicy``, a run re-executed from failure after a crash, or a step running on
another machine all see the same state, and a retried step skips files already finished.

Not every upload is extracted: a file of no supported format ends ``skipped`` at detection (no
worker, no retry, the run succeeds: no alert), and a file with the same bytes as one that succeeded
with the same extractor version gets that file's metadata copied (``shortcuts.py``). ``materialize``
shows both on the partition: an observation for a skipped file, a materialization for a copy.

One bad file fails only that file: permanent failures are recorded per file and the batch goes on;
at the end ``materialize`` raises ``Failure(allow_retries=False)`` naming them (the run fails and
the alert sensor announces it), while the other files are materialized. Transient failures make
the step raise after the whole batch was tried, and the retried step redoes only those files.

Those per-file rules are plain code in ``batch.py`` (no Dagster there, tested on SQLite and
PostgreSQL without a run); the ops here adapt them: they describe the step attempt (run group,
retry number, the op's ``RetryPolicy``: its ``max_retries`` and ``calculate_delay`` are the only
source of the attempt limit and of ``next_retry_at``), log and raise from the outcomes.

What the Dagster UI shows (see ``summary.py``): each materialized file's partition carries the key
facts of its format and the full metadata as JSON. A file that failed gets an ``AssetObservation``
on its partition with its name, error code and message: Dagster 1.13 keeps no "failed to
materialize" event in open-source storage and shows a failure's metadata only in the run log, so
the observation is what the partition's page has ("View all historical events" on the partition,
the asset's Events tab, or the partition's metadata table when it was materialized before).
"""

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from extraction_pipeline.orchestration import batch
from extraction_pipeline.orchestration.batch import MATERIALIZE_CHUNK
from extraction_pipeline.orchestration.dagster_internals import BACKFILL_ID_TAG, CODE_VERSION_TAG
from extraction_pipeline.orchestration.partitions import PARTITIONS_NAME, cloud_files_partitions, file_id_of
from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.orchestration.summary import (
    code_span,
    failure_description,
    failure_line,
    failure_metadata,
    job_summary,
    materialization_metadata,
    preview_metadata,
    skipped_description,
)
from extraction_pipeline.settings import Settings

ASSET_KEY = dg.AssetKey("cloud_file_metadata")
JOB_NAME = "extract_cloud_files"


def extractor_code_version() -> str:
    """Follows the extractors' versions: any change marks the materialized partitions stale."""
    from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

    versions = EXTRACTOR_VERSIONS
    joined = ",".join(f"{fmt}={version}" for fmt, version in sorted(versions.items()))
    return f"extractors-{hashlib.sha256(joined.encode()).hexdigest()[:12]}"


# Partition keys registered per call: Dagster checks which of them exist with one IN query each.
PARTITIONS_PER_CALL = 10_000


def launch_asset_backfill(
    instance: dg.DagsterInstance,
    asset_graph: Any,
    keys: list[str],
    *,
    title: str,
    description: str,
    backfill_id: str | None = None,
) -> str:
    """Register ``keys`` as partitions (Dagster skips those it has) and create an asset backfill of
    them for the daemon (the ``backfill`` command, the API and a burst of uploads); its id."""
    from extraction_pipeline.orchestration.dagster_internals import add_asset_partition_backfill

    for start in range(0, len(keys), PARTITIONS_PER_CALL):
        instance.add_dynamic_partitions(PARTITIONS_NAME, keys[start : start + PARTITIONS_PER_CALL])
    return add_asset_partition_backfill(
        instance,
        asset_graph,
        [ASSET_KEY],
        keys,
        title=title,
        description=description,
        backfill_id=backfill_id,
    )


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
    """Cancel the run's unfinished files; say which of its files ended cancelled (``batch``)."""
    ended = batch.cancel_unfinished(extraction.repository, _file_ids(context), _run_group(context))
    if not ended:
        return "the run was terminated; none of its files was cancelled (they had finished)"
    shown = ", ".join(f"{row.id} {code_span(row.filename)}" for row in ended[:50])
    more = f" and {len(ended) - 50} more" if len(ended) > 50 else ""
    return f"the run was terminated: {len(ended)} file(s) cancelled: {shown}{more}"


def _count_by_format(formats: Iterable[str]) -> str:
    counts = Counter(formats)
    return ", ".join(f"{fmt} {count}" for fmt, count in sorted(counts.items()))


def run_attempt(
    context: dg.OpExecutionContext, policy: dg.RetryPolicy, *, with_ancestors: bool = False
) -> batch.RunAttempt:
    """This step attempt for ``batch``: the run group, and the retries of the op's own policy."""
    return batch.RunAttempt(
        run_id=context.run_id,
        run_ids=frozenset(_run_group(context)),
        retry_number=context.retry_number,
        max_retries=policy.max_retries,
        retry_delay=policy.calculate_delay,
        ancestor_run_ids=frozenset(_ancestor_runs(context)) if with_ancestors else frozenset(),
    )


def _log_outcome(context: dg.OpExecutionContext, item: batch.FileOutcome) -> None:
    """The per-file line of a recorded failure: an error when final, a warning when retried."""
    if item.outcome in (batch.Outcome.FAILED, batch.Outcome.RETRYING):
        if not item.recorded or item.error is None:
            return
        code, message = item.error["code"], item.error["message"]
        if item.outcome == batch.Outcome.FAILED:
            context.log.error(f"file {item.file_id}: {code}: {message}")
        else:
            context.log.warning(f"file {item.file_id}: {code} (will retry): {message}")


def _log_not_extracted(context: dg.OpExecutionContext, result: batch.StepResult) -> None:
    """One line each for the files skipped (no supported format) and deduplicated (copied)."""
    skipped = [item.file_id for item in result.of(batch.Outcome.SKIPPED)]
    if skipped:
        context.log.info(
            f"skipped {len(skipped)} file(s) of no supported format (unsupported_format): {skipped[:20]}"
        )
    copied = [f"{item.file_id} <- {item.deduplicated_from}" for item in result.of(batch.Outcome.DEDUPLICATED)]
    if copied:
        context.log.info(
            f"deduplicated {len(copied)} file(s), metadata copied from a file with the same bytes: "
            + ", ".join(copied[:20])
        )


def yield_cpu_to_uploads(context: dg.OpExecutionContext, niceness: int) -> None:
    """A backfill run (historic files, or a burst of uploads) lowers its CPU priority to
    ``niceness`` (``EXTRACTION_BACKFILL_NICENESS``), before its extraction worker starts, which
    inherits it: on a machine busy with a backfill, a single upload's run gets the CPU first."""
    if niceness <= 0 or not context.run.tags.get(BACKFILL_ID_TAG) or not hasattr(os, "nice"):
        return
    current = os.nice(0)
    if current < niceness:
        os.nice(niceness - current)
        context.log.info(f"a backfill run: CPU priority lowered to niceness {niceness}, uploads go first")


def add_preview(
    context: dg.OpExecutionContext,
    extraction: ExtractionResource,
    metadata: dict[str, Any],
    envelope: dict[str, Any],
) -> None:
    """Put the file's stored preview on its materialization (``preview``), when it has one that the
    UI can show; a preview that cannot be read is only logged (the metadata is what counts)."""
    uri = envelope.get("preview_uri")
    if not uri:
        return
    try:
        with extraction.blob_store.open(uri) as handle:
            shown = preview_metadata(handle.read())
    except Exception as exc:  # noqa: BLE001 - a missing picture never fails the file
        context.log.warning(
            f"the preview of {code_span(envelope.get('file', {}).get('name'))} was not read: {type(exc).__name__}"
        )
        return
    if shown is not None:
        metadata["preview"] = shown


def build_extraction_asset(settings: Settings) -> dg.AssetsDefinition:
    """The asset with retry and backfill policies taken from ``settings``."""
    policy = retry_policy(settings)

    @dg.op(retry_policy=policy, out=dg.Out(dg.Nothing))
    def detect_format(context: dg.OpExecutionContext, extraction: ExtractionResource) -> None:
        """Sniff each file's format from its bytes; the file becomes ``running``."""
        from extraction_pipeline.extraction.detect import detect_format as detect

        yield_cpu_to_uploads(context, extraction.settings.backfill_niceness)
        # The worker boots while this step reads the files and Dagster moves on to ``extract``.
        extraction.prestart_worker()

        def detect_row(row: Any) -> str:
            with extraction.local_path(row.storage_uri) as path:
                return str(detect(path, row.filename).format)

        def report(item: batch.FileOutcome) -> None:
            if item.outcome == batch.Outcome.MISSING:
                context.log.warning(f"file {item.file_id} no longer exists; skipped")
            elif item.outcome == batch.Outcome.CANCELLED:
                context.log.info(f"file {item.file_id} was cancelled; skipped")
            else:
                _log_outcome(context, item)

        result = batch.detect_files(
            extraction.repository,
            _file_ids(context),
            run_attempt(context, policy),
            detect_row,
            report=report,
            deduplicate=extraction.settings.deduplicate,
        )
        # One log line for the batch: every event a step logs is a write to Dagster's event log
        # (one connection each on PostgreSQL), per file it added up.
        detected = [item.format or "?" for item in result.of(batch.Outcome.DETECTED)]
        if detected:
            context.log.info(f"detected {len(detected)} file(s): {_count_by_format(detected)}")
        _log_not_extracted(context, result)
        transient = result.transient
        if transient:
            raise TransientBatchFailure(f"{len(transient)} file(s) could not be read: {transient[:20]}")

    @dg.op(retry_policy=policy, ins={"detected": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
    def extract(context: dg.OpExecutionContext, extraction: ExtractionResource) -> None:
        """Extract each detected file in an isolated worker; one ``extraction_jobs`` row per attempt."""

        yield_cpu_to_uploads(context, extraction.settings.backfill_niceness)  # a run resumed here
        # An upload's run makes the preview with the metadata (0.02-1 s); a backfill's runs (historic
        # files, bursts) leave it for the first request of it (``service/previews.py``): made here it
        # cost a 300-file backfill 4x the time of its metadata (bench/run.py, step backfill).
        previews = not context.run.tags.get(BACKFILL_ID_TAG)

        def extract_row(row: Any, attempt: int, max_attempts: int) -> Any:
            with cancel_on_termination(context, extraction), extraction.local_path(row.storage_uri) as path:
                envelope = extraction.extract(
                    path, row.filename, attempt=attempt, max_attempts=max_attempts, preview=previews
                )
            return extraction.store_preview(envelope)

        result = batch.extract_files(
            extraction.repository,
            _file_ids(context),
            run_attempt(context, policy, with_ancestors=True),
            extract_row,
            passthrough=(dg.Failure,),
            report=lambda item: _log_outcome(context, item),
        )
        _log_not_extracted(context, result)
        extracted = {
            item.file_id: (item.format or "?", item.duration_ms)
            for item in result.of(batch.Outcome.EXTRACTED)
        }
        if extracted:
            total_ms = sum(ms for _, ms in extracted.values())
            slowest = max(extracted, key=lambda fid: extracted[fid][1])
            context.log.info(
                f"extracted {len(extracted)} file(s) in {total_ms} ms "
                f"({_count_by_format(fmt for fmt, _ in extracted.values())}); "
                f"slowest: file {slowest}, {extracted[slowest][1]} ms"
            )
        transient = result.transient
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
        plan = batch.plan_materialize(repository, _file_ids(context), _run_group(context), job_summary)
        names = plan.names
        for item in plan.failed:
            # The failed partition's page shows this: name, code and message as plain text.
            yield dg.AssetObservation(
                asset_key=ASSET_KEY,
                partition=str(item.file_id),
                description=failure_description(item.error["code"]),
                metadata=failure_metadata(
                    names.get(item.file_id, str(item.file_id)),
                    item.error,
                    fmt=item.format,
                    attempts=item.attempts,
                ),
            )
        for skipped in plan.skipped:
            # Not a failure: the partition's page says why the file was not extracted.
            yield dg.AssetObservation(
                asset_key=ASSET_KEY,
                partition=str(skipped.file_id),
                description=skipped_description(),
                metadata=failure_metadata(
                    names.get(skipped.file_id, str(skipped.file_id)), skipped.error, status="skipped"
                ),
            )
        for copy in plan.deduplicated:
            # Written at detection; the partition shows the copied metadata and where it came from.
            metadata = materialization_metadata(names.get(copy.file_id, str(copy.file_id)), copy.envelope)
            metadata["deduplicated_from"] = dg.MetadataValue.int(copy.source_id)
            add_preview(context, extraction, metadata, copy.envelope)
            yield dg.AssetMaterialization(
                asset_key=ASSET_KEY,
                partition=str(copy.file_id),
                metadata=metadata,
                tags={CODE_VERSION_TAG: code_version},
            )
        # Batched writes: one transaction per chunk instead of one per file.
        for chunk in batch.write_materialized(repository, plan.ready, MATERIALIZE_CHUNK):
            if chunk.cancelled:
                context.log.info(f"files {chunk.cancelled} were cancelled or deleted; not materialized")
            for ready in chunk.done:
                envelope = ready.envelope
                filename = names.get(ready.file_id, envelope.get("file", {}).get("name", str(ready.file_id)))
                # One event per file with its own metadata; the (optional) output is never yielded, so
                # Dagster adds no second, metadata-less materialization and no IO manager is involved.
                metadata = materialization_metadata(filename, envelope)
                add_preview(context, extraction, metadata, envelope)
                yield dg.AssetMaterialization(
                    asset_key=ASSET_KEY,
                    partition=str(ready.file_id),
                    metadata=metadata,
                    tags={CODE_VERSION_TAG: code_version},
                )
        failed = [(item.file_id, item.error) for item in plan.failed]
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
