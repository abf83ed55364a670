"""The failures of the application database, in the core's taxonomy (``extraction.errors``)."""

from __future__ import annotations

from extraction_pipeline.extraction.errors import TransientError


class DatabaseUnavailable(TransientError):
    """The database server is unreachable: the step is retried with backoff."""

    code = "database_unavailable"
