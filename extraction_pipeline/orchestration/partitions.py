"""One dynamic partition per uploaded file; the key is ``cloud_files.id`` as a string."""

from __future__ import annotations

import dagster as dg

cloud_files_partitions = dg.DynamicPartitionsDefinition(name="cloud_files")


def file_id_of(key: str) -> int:
    return int(key)
