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


class ExtractorError(PermanentError):
    """The installation or the extractor's own code failed, not the file (an ImportError, a
    library symbol that is missing). Retrying with backoff cannot repair an installation, so it
    is not retried automatically; once fixed (``extraction-pipeline doctor`` says so),
    ``retry --failed`` extracts such files again."""

    code = "extractor_error"


class StorageUnavailable(TransientError):
    code = "storage_unavailable"


# Failures of the isolated worker. They are transient until the configured number of
# attempts is used up (a hang may be load, a crash may be a bad worker), permanent after.
WORKER_FAILURE_CODES = ("timeout", "out_of_memory", "crashed")

PERMANENT_CODES = ("unsupported_format", "corrupt", "encrypted", "too_large", "extractor_error")

# Permanent failures that are the file's fault: extracting the same bytes again with the same
# installation can only fail again (``retry --failed`` leaves them out unless forced).
FILE_FAULT_CODES = ("unsupported_format", "corrupt", "encrypted", "too_large")

# Exceptions that say the code or the installation is broken, whatever the file: a module that
# cannot be imported, a name that does not exist, code that cannot be compiled.
_EXTRACTOR_FAULTS: tuple[type[BaseException], ...] = (ImportError, NameError, SyntaxError)


def is_extractor_fault(exc: BaseException) -> bool:
    """True when ``exc`` blames the installation or the extractor rather than the file.

    Besides import, name and syntax errors, an ``AttributeError`` raised on a *module* (``module
    'OCP.X' has no attribute 'Y'``: a library release without a symbol the extractor uses) counts;
    an AttributeError on an object parsed from the file does not (damaged files cause those).
    """
    if isinstance(exc, _EXTRACTOR_FAULTS):
        return True
    if isinstance(exc, AttributeError):
        import types

        return isinstance(getattr(exc, "obj", None), types.ModuleType) or str(exc).startswith("module ")
    return False


def extractor_fault_message(cause: str) -> str:
    """The message of an ``extractor_error``; ``cause`` is ``"ExceptionType: what it said"``."""
    return (
        f"the installation or the extractor failed, not the file ({cause}); "
        "run `extraction-pipeline doctor`, fix the installation, then `extraction-pipeline retry --failed`"
    )[:2000]


def worker_failure_kind(attempt: int, max_attempts: int) -> ErrorKind:
    """A timeout, out-of-memory or crash is transient while attempts remain."""
    return "transient" if attempt < max_attempts else "permanent"
