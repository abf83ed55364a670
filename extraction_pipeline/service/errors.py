"""What a use case refuses to do, in words both front doors map (exit code 2 or 1, HTTP 404 or 409)."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the use case cannot carry out; ``message`` is one line for a person."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FileNotFound(ServiceError):
    code = "not_found"

    def __init__(self, file_id: int) -> None:
        super().__init__(f"no file with id {file_id}")
        self.file_id = file_id


class WrongState(ServiceError):
    """The file's state does not allow the operation (retry a queued file, cancel a finished one)."""

    code = "conflict"


class BadRequest(ServiceError):
    code = "bad_request"


class EmptyUpload(BadRequest):
    def __init__(self) -> None:
        super().__init__("the file is empty (0 bytes)")


class NoDagsterInstance(ServiceError):
    """The operation needs the Dagster instance and this installation has none configured."""

    code = "dagster_unavailable"
