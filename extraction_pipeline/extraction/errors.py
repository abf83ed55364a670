"""The error taxonomy: which failures are worth retrying (transient) and which are not (permanent)."""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal["permanent", "transient"]


class ExtractionError(Exception):
    """Base of every failure the core reports; ``code`` and ``kind`` end up in the envelope."""

    code: ClassVar[str] = "crashed"
    kind: ClassVar[ErrorKind] = "permanent"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentError(ExtractionError):
    """Retrying cannot help: the file itself is the problem."""

    kind: ClassVar[ErrorKind] = "permanent"


class TransientError(ExtractionError):
    """The environment failed; the same file may well succeed on a later attempt."""

    kind: ClassVar[ErrorKind] = "transient"


class UnsupportedFormat(PermanentError):
    code = "unsupported_format"


class CorruptFile(PermanentError):
    code = "corrupt"


class EncryptedFile(PermanentError):
    code = "encrypted"


class TooLarge(PermanentError):
    code = "too_large"


class StorageUnavailable(TransientError):
    code = "storage_unavailable"


class DatabaseUnavailable(TransientError):
    code = "database_unavailable"


# Failures of the isolated worker. They are transient until the configured number of
# attempts is used up (a hang may be load, a crash may be a bad worker), permanent after.
WORKER_FAILURE_CODES = ("timeout", "out_of_memory", "crashed")

PERMANENT_CODES = ("unsupported_format", "corrupt", "encrypted", "too_large")


def worker_failure_kind(attempt: int, max_attempts: int) -> ErrorKind:
    """A timeout, out-of-memory or crash is transient while attempts remain."""
    return "transient" if attempt < max_attempts else "permanent"
