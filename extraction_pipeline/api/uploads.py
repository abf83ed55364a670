"""``POST /v1/files``: a multipart body streamed into the blob store as it arrives.

FastAPI's ``UploadFile`` would spool the whole body to a temporary file before the route runs and
check the size limit only afterwards. Here the event loop parses the body chunk by chunk
(python-multipart's push parser) and hands the bytes of the ``file`` field to ``store_blob``,
which runs in a worker thread and reads them through a bounded queue (``StreamPipe``): memory stays
at a few chunks, the limit is enforced while the bytes arrive (413 as soon as it is passed), and
the database is touched only after the whole body has arrived. A client that goes away mid-upload
or a malformed body aborts the thread's ``put``, which removes its temporary file: no blob, no row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from extraction_pipeline.api.errors import ApiError
from extraction_pipeline.extraction.errors import TooLarge
from extraction_pipeline.persistence.blobs import BlobStore, StoredBlob
from extraction_pipeline.service.uploads import check_filename, store_blob

FIELD = "file"
# Multipart framing around the file's bytes (boundaries, part headers, other small fields): a
# declared Content-Length beyond the limit plus this is refused before a byte is read.
FRAMING_ALLOWANCE = 64 * 1024
# Chunks in flight between the event loop and the writing thread.
QUEUE_CHUNKS = 8
# Threads that write blobs. Their own pool: an upload holds its thread as long as the client takes
# to send, and slow uploads must not use up the pool that runs the other (sync) routes.
UPLOAD_THREADS = 64
_writers = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="upload")


class UploadAborted(Exception):
    """Raised inside the writing thread: the request ended before the file did."""


class StreamPipe(io.RawIOBase):
    """A file object for the blob store's thread, fed by the event loop through a bounded queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(QUEUE_CHUNKS)
        self._buffer = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of what has arrived (waits for the next chunk); ``b""`` at the end."""
        while not self._buffer and not self._eof:
            item = asyncio.run_coroutine_threadsafe(self.queue.get(), self.loop).result()
            if item is None:
                self._eof = True
            elif isinstance(item, BaseException):
                raise item
            else:
                self._buffer = item
        if size is None or size < 0 or size >= len(self._buffer):
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def abort(self) -> None:
        """From the event loop: drop what is queued and make the thread's next read raise."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(UploadAborted())


@dataclass
class _Parts:
    """What the parser's callbacks saw, handed to the event loop after each ``write``."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[bytes, bytes] = field(default_factory=dict)
    in_file: bool = False
    ended: bool = False

    def callbacks(self) -> dict[str, Any]:
        def on_part_begin() -> None:
            self.headers, self.in_file = {}, False

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self.header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self.header_value += data[start:end]

        def on_header_end() -> None:
            self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
            self.header_field, self.header_value = bytearray(), bytearray()

        def on_headers_finished() -> None:
            _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
            if params.get(b"name") == FIELD.encode():
                self.in_file = True
                name = params.get(b"filename")
                claimed = self.headers.get(b"content-type")
                self.events.append(
                    (
                        "begin",
                        (
                            name.decode("utf-8", "replace") if name is not None else "",
                            claimed.decode("latin-1").strip() if claimed else None,
                        ),
                    )
                )

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if self.in_file and end > start:
                self.events.append(("data", bytes(data[start:end])))

        def on_part_end() -> None:
            if self.in_file:
                self.events.append(("end", None))
            self.in_file = False

        def on_end() -> None:
            self.ended = True

        return {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        }


@dataclass
class ReceivedFile:
    blob: StoredBlob
    filename: str
    content_type: str | None


def _boundary(request: Request, max_bytes: int) -> bytes:
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise ApiError(415, "send the file as multipart/form-data in the field `file`")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "the multipart Content-Type has no boundary")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FRAMING_ALLOWANCE:
        raise TooLarge(f"the file is larger than the limit of {max_bytes} bytes")
    return boundary


class _Receiver:
    """One upload in flight: the parser, the pipe and the thread that writes the blob."""

    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        self.store, self.max_bytes = store, max_bytes
        self.pipe = StreamPipe(asyncio.get_running_loop())
        self.writer: asyncio.Future[StoredBlob] | None = None
        self.filename = ""
        self.content_type: str | None = None

    async def push(self, item: bytes | None) -> None:
        """Queue ``item`` for the thread; if the thread stopped (e.g. too large), raise its error."""
        assert self.writer is not None
        put: asyncio.Future[Any] = asyncio.ensure_future(self.pipe.queue.put(item))
        waiting: set[asyncio.Future[Any]] = {put, self.writer}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            self.writer.result()  # raises the thread's error
            raise ApiError(400, "the file part ended early")

    async def handle(self, kind: str, value: Any) -> None:
        if kind == "begin":
            if self.writer is not None:
                raise ApiError(400, f"more than one `{FIELD}` field")
            self.filename = check_filename(value[0])
            self.content_type = value[1]
            source = cast(BinaryIO, self.pipe)  # a readable binary stream: all `put` calls is read()
            write = functools.partial(store_blob, source, self.store, max_bytes=self.max_bytes)
            self.writer = asyncio.get_running_loop().run_in_executor(_writers, write)
        elif kind == "data":
            await self.push(value)
        else:
            await self.push(None)

    async def cleanup(self) -> None:
        """After a failure: stop the thread (its temporary file goes) and remove a finished blob."""
        if self.writer is None:
            return
        if not self.writer.done():
            self.pipe.abort()
        with contextlib.suppress(BaseException):
            await asyncio.wait({self.writer})
        if not self.writer.cancelled() and self.writer.exception() is None:
            blob = self.writer.result()
            await run_in_threadpool(self.store.delete, blob.uri)


async def receive_upload(request: Request, store: BlobStore, max_bytes: int) -> ReceivedFile:
    """The ``file`` field of the request, stored as a blob (the caller registers it)."""
    boundary = _boundary(request, max_bytes)
    parts = _Parts()
    parser = MultipartParser(boundary, cast(Any, parts.callbacks()))
    receiver = _Receiver(store, max_bytes)
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                events, parts.events = parts.events, []
                for kind, value in events:
                    await receiver.handle(kind, value)
        except (ClientDisconnect, ApiError, TooLarge):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("python_multipart"):
                raise ApiError(400, "the multipart body is malformed") from exc
            raise
        parser.finalize()
        if not parts.ended:
            raise ApiError(400, "the multipart body ended early")
        if receiver.writer is None:
            raise ApiError(422, f"the multipart field `{FIELD}` is missing", code="missing_file")
        blob = await receiver.writer
    except BaseException:
        await receiver.cleanup()
        raise
    return ReceivedFile(blob=blob, filename=receiver.filename, content_type=receiver.content_type)
