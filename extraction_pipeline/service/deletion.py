"""``delete``: a file and everything the pipeline keeps of it (row, attempts, metadata, text, blob,
preview, partition).

Order matters: a file still on its way is cancelled first (its single-file run terminated, as
``cancel`` does), so that no run extracts a file that is going; then the rows go in one
transaction; then the blob and the dynamic partition, which are only reachable through the row and
whose removal cannot be rolled back. A blob or a partition that cannot be removed is logged and
left (an orphan costs disk or a UI entry, never a wrong answer); the file is gone either way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from extraction_pipeline.persistence.blobs import BlobStore
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.service.operations import cancel_files

log = logging.getLogger(__name__)


@dataclass
class DeleteOutcome:
    deleted: list[int]
    not_found: list[int]
    # runs terminated because they extracted a deleted file
    terminated_runs: list[str]
    # what could not be cleaned up outside the database (one line each); the rows are gone anyway
    leftovers: list[str]


def delete_files(
    repository: CloudFileRepository,
    store: BlobStore,
    instance: Any | None,
    file_ids: Iterable[int],
    *,
    by: str,
) -> DeleteOutcome:
    """Remove the files of ``file_ids`` that exist. ``instance``: the Dagster instance that holds
    their partitions and runs (None: there is none, nothing to terminate or unregister there)."""
    wanted = sorted(set(file_ids))
    cancelled = cancel_files(repository, instance, wanted, by=by)
    gone = repository.delete_files(wanted)
    leftovers: list[str] = []
    for item in gone:
        for what, uri in (("blob", item.storage_uri), ("preview", item.preview_uri)):
            if uri is None:
                continue
            try:
                store.delete(uri)
            except Exception as exc:  # noqa: BLE001 - the row is gone; a leftover blob is reported, not fatal
                log.warning("file %s: its %s was not removed: %s", item.id, what, type(exc).__name__)
                leftovers.append(f"file {item.id}: {what} not removed ({type(exc).__name__})")
    if instance is not None and gone:
        leftovers.extend(_delete_partitions(instance, [str(item.id) for item in gone]))
    return DeleteOutcome(
        deleted=[item.id for item in gone],
        not_found=sorted(set(wanted) - {item.id for item in gone}),
        terminated_runs=cancelled.terminated_runs,
        leftovers=leftovers,
    )


def _delete_partitions(instance: Any, keys: list[str]) -> list[str]:
    from extraction_pipeline.orchestration.partitions import cloud_files_partitions

    name = cloud_files_partitions.name
    if name is None:  # a DynamicPartitionsDefinition built from a function: never ours
        return []
    leftovers: list[str] = []
    for key in keys:
        try:
            if instance.has_dynamic_partition(name, key):
                instance.delete_dynamic_partition(name, key)
        except Exception as exc:  # noqa: BLE001 - same as a blob: the file is gone regardless
            log.warning("file %s: its partition was not removed: %s", key, type(exc).__name__)
            leftovers.append(f"file {key}: partition not removed ({type(exc).__name__})")
    return leftovers
