"""One dynamic partition per uploaded file; the key is ``cloud_files.id`` as a string."""

from __future__ import annotations

import dagster as dg

PARTITIONS_NAME = "cloud_files"
cloud_files_partitions = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)


def file_id_of(key: str) -> int:
    return int(key)


def run_key_for(file_id: int, generation: int) -> str:
    """The Dagster run key of a file's request: Dagster starts at most one run per key, and the
    request generation (counted by persistence) makes the key of each new request of a file new.

    Stored as ``extraction_status.run_key`` by ``queue_files``: a file queued before a change of
    this format would be requested again under a different key, so it does not change.
    """
    return f"cloud-file-{file_id}-{generation}"
