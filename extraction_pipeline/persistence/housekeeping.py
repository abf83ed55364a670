"""Housekeeping: what a file deleted directly in ``cloud_files`` leaves behind, found and removed.

The host application may delete a row with plain SQL instead of ``extraction-pipeline delete``. Its
attempts and metadata then stay behind wherever the foreign keys are not enforced (a SQLite
connection without ``PRAGMA foreign_keys``; PostgreSQL cascades them), and its blob and its dynamic
partition always stay. The queries here find those orphans and remove them, a bounded number per
call, so that a caller on a timer (``orchestration/housekeeping.py``, a sensor) never does unbounded
work in one go. No Dagster here: the partitions are passed in as keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, select

from extraction_pipeline.persistence.blobs import ListableBlobStore
from extraction_pipeline.persistence.database import Store, translate_db_errors
from extraction_pipeline.persistence.models import CloudFile, CloudFileMetadata, CloudFileText, ExtractionJob
from extraction_pipeline.persistence.state import JobStatus

log = logging.getLogger(__name__)

# Most orphans of each kind removed per call.
MAX_DELETIONS = 500
# Most partition keys or blobs examined per call; a pass over more continues where the last stopped.
SCAN_LIMIT = 50_000
# An unreferenced blob younger than this is left alone: an upload writes its blob before it inserts
# its row (``service/uploads.py``, the API's streamed upload), so a blob whose row is still being
# committed must never look like an orphan.
BLOB_GRACE_S = 600.0
# An unfinished upload's temporary file not written to for this long belongs to a killed upload.
STALE_UPLOAD_S = 24 * 3600.0
# Values per IN (...) list: below SQLite's 32766 bound parameters and PostgreSQL's 65535. Each list of
# storage URIs costs one scan of cloud_files (the column has no index), so the lists are long.
_CHUNK = 10_000


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class OrphanRows:
    """How many attempt and metadata rows of files that no longer exist were deleted."""

    jobs: int = 0
    metadata: int = 0
    texts: int = 0


def orphan_row_file_ids(store: Store, *, limit: int = MAX_DELETIONS) -> list[int]:
    """File ids that attempts or metadata rows name but ``cloud_files`` no longer holds (at most ``limit``)."""
    no_file_for_job = ~exists().where(CloudFile.id == ExtractionJob.cloud_file_id)
    no_file_for_metadata = ~exists().where(CloudFile.id == CloudFileMetadata.cloud_file_id)
    no_file_for_text = ~exists().where(CloudFile.id == CloudFileText.cloud_file_id)
    with translate_db_errors(store.url), store.sessions() as session:
        from_jobs = session.scalars(
            select(ExtractionJob.cloud_file_id).where(no_file_for_job).distinct().limit(limit)
        ).all()
        from_metadata = session.scalars(
            select(CloudFileMetadata.cloud_file_id).where(no_file_for_metadata).limit(limit)
        ).all()
        from_texts = session.scalars(
            select(CloudFileText.cloud_file_id).where(no_file_for_text).limit(limit)
        ).all()
    return sorted(set(from_jobs) | set(from_metadata) | set(from_texts))[:limit]


def delete_orphan_rows(store: Store, *, limit: int = MAX_DELETIONS) -> OrphanRows:
    """Delete the attempts, metadata and text of at most ``limit`` files that no longer exist."""
    ids = orphan_row_file_ids(store, limit=limit)
    if not ids:
        return OrphanRows()
    with translate_db_errors(store.url), store.sessions.begin() as session:
        # The NOT EXISTS again: a row inserted with one of these ids meanwhile keeps its rows.
        jobs = session.execute(
            delete(ExtractionJob).where(
                ExtractionJob.cloud_file_id.in_(ids),
                ~exists().where(CloudFile.id == ExtractionJob.cloud_file_id),
            )
        )
        metadata = session.execute(
            delete(CloudFileMetadata).where(
                CloudFileMetadata.cloud_file_id.in_(ids),
                ~exists().where(CloudFile.id == CloudFileMetadata.cloud_file_id),
            )
        )
        texts = session.execute(
            delete(CloudFileText).where(
                CloudFileText.cloud_file_id.in_(ids),
                ~exists().where(CloudFile.id == CloudFileText.cloud_file_id),
            )
        )
    return OrphanRows(
        jobs=cast(CursorResult[Any], jobs).rowcount or 0,
        metadata=cast(CursorResult[Any], metadata).rowcount or 0,
        texts=cast(CursorResult[Any], texts).rowcount or 0,
    )


def existing_file_ids(store: Store, ids: Iterable[int]) -> set[int]:
    """The ids of ``ids`` that ``cloud_files`` holds (primary key lookups, in chunks)."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    with translate_db_errors(store.url), store.sessions() as session:
        for chunk in _chunks(wanted):
            found.update(session.scalars(select(CloudFile.id).where(CloudFile.id.in_(chunk))))
    return found


def orphan_partition_keys(store: Store, keys: Sequence[str], *, limit: int = MAX_DELETIONS) -> list[str]:
    """The partition keys of ``keys`` whose file no longer exists, in the order given, at most ``limit``.

    A key that is not a file id (never written by this project) is not an orphan: it is left alone.
    """
    numeric = {key: int(key) for key in keys if key.isdigit()}
    found = existing_file_ids(store, numeric.values())
    orphans = [key for key in keys if key in numeric and numeric[key] not in found]
    return orphans[:limit]


def referenced_uris(store: Store, uris: Iterable[str]) -> set[str]:
    """The URIs of ``uris`` that some ``cloud_files.storage_uri`` or ``cloud_file_metadata.preview_uri``
    names (a file's bytes or its preview)."""
    asked = set(uris)
    wanted = sorted(asked)
    found: set[str] = set()
    with translate_db_errors(store.url), store.sessions() as session:
        for chunk in _chunks(wanted):
            found.update(
                session.scalars(select(CloudFile.storage_uri).where(CloudFile.storage_uri.in_(chunk)))
            )
            found.update(
                uri
                for uri in session.scalars(
                    select(CloudFileMetadata.preview_uri).where(CloudFileMetadata.preview_uri.in_(chunk))
                )
                if uri is not None
            )
        # A preview stored by an extraction that ``materialize`` has not written yet (a long batch
        # can take longer than the grace period): its attempt row, still ``extracted``, names it.
        waiting = session.scalars(
            select(ExtractionJob.result).where(ExtractionJob.status == JobStatus.EXTRACTED.value)
        )
        found.update(uri for result in waiting if (uri := (result or {}).get("preview_uri")) in asked)
    return found


def newest_storage_uri(store: Store) -> str | None:
    """The blob URI of the newest file (None without files)."""
    with translate_db_errors(store.url), store.sessions() as session:
        return session.scalars(select(CloudFile.storage_uri).order_by(CloudFile.id.desc()).limit(1)).first()


@dataclass
class BlobSweep:
    """One bounded step of a pass over the blob store."""

    deleted: list[str] = field(default_factory=list)
    # Blobs that could not be removed (one line each): tried again on the next pass.
    leftovers: list[str] = field(default_factory=list)
    examined: int = 0
    # Where the next step starts (the last key examined); None: the pass is complete, start over.
    next_after: str | None = None


def sweep_blobs(
    store: Store,
    blobs: ListableBlobStore,
    *,
    now: float,
    after: str | None = None,
    grace_s: float = BLOB_GRACE_S,
    scan_limit: int = SCAN_LIMIT,
    limit: int = MAX_DELETIONS,
) -> BlobSweep:
    """Delete blobs that no row references and that are older than ``grace_s``.

    Examines at most ``scan_limit`` blobs, from the first key after ``after``, and deletes at most
    ``limit``; ``next_after`` says where the next call continues. The grace period is what makes
    this safe against uploads in flight: a blob is written before its row is inserted, and only a
    blob that stayed unreferenced for ``grace_s`` after it was written is an orphan.
    """
    sweep = BlobSweep()
    newest = newest_storage_uri(store)
    if newest is not None and not blobs.owns(newest):
        # The rows name blobs elsewhere (another root, another mount path of the same folder): every
        # blob here would look unreferenced. Sweep nothing rather than everything.
        sweep.leftovers.append("the newest file's blob is not in this blob store: blobs not swept")
        return sweep
    entries = list(blobs.list_blobs(after=after, limit=scan_limit))
    sweep.examined = len(entries)
    old = [entry for entry in entries if entry.modified_at <= now - grace_s]
    referenced = referenced_uris(store, [entry.uri for entry in old]) if old else set()
    last_key = entries[-1].key if len(entries) >= scan_limit else None
    for entry in old:
        if entry.uri in referenced:
            continue
        if len(sweep.deleted) >= limit:
            # This step's deletions are used up: the next one starts right before this blob.
            index = [item.key for item in entries].index(entry.key)
            last_key = entries[index - 1].key if index > 0 else after
            break
        try:
            blobs.delete(entry.uri)
        except Exception as exc:  # noqa: BLE001 - a blob that cannot go now is tried on the next pass
            log.warning("orphan blob %s was not removed: %s", entry.key, type(exc).__name__)
            sweep.leftovers.append(f"blob {entry.key}: not removed ({type(exc).__name__})")
            continue
        sweep.deleted.append(entry.uri)
    sweep.next_after = last_key
    return sweep
