"""The queries the project needs, in one class: ``CloudFileRepository``.

Each group of queries lives in its own module and the class is only their sum:

- ``files``: ``cloud_files`` uploads, reads and the status transitions of a run;
- ``queueing``: pending files -> ``queued`` with a request generation, re-queueing, retries;
- ``attempts``: ``extraction_jobs`` rows, from an attempt's start to its result, metadata and text;
- ``search``: full-text search over ``cloud_file_text``;
- ``state``: the status rules (how an ``extraction_status`` document is written and read).

The names other packages used from here stay importable from here.
"""

from __future__ import annotations

from extraction_pipeline.persistence.attempts import Attempts
from extraction_pipeline.persistence.files import FileQueries, NewFile
from extraction_pipeline.persistence.queueing import QueuedFile, Queueing
from extraction_pipeline.persistence.search import TextSearch
from extraction_pipeline.persistence.state import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    STATUSES,
    new_status,
    status_of,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "STATUSES",
    "CloudFileRepository",
    "NewFile",
    "QueuedFile",
    "new_status",
    "status_of",
]


class CloudFileRepository(FileQueries, Queueing, Attempts, TextSearch):
    """Typed access to ``cloud_files``, ``extraction_jobs``, ``cloud_file_metadata`` and ``cloud_file_text``."""
