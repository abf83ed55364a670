"""The blob store: where uploaded bytes live. ``file://`` is implemented; callers only see ``BlobStore``.

Keys are generated here (random, sharded), never derived from the client's file name, so two
uploads of ``a.pdf`` never collide and a name like ``../../etc/passwd`` cannot steer a write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from extraction_pipeline.extraction.errors import StorageUnavailable, TooLarge

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredBlob:
    uri: str
    size_bytes: int
    sha256: str


class BlobStore(Protocol):
    """What the rest of the project may ask of a blob store."""

    def put(self, source: BinaryIO, *, max_bytes: int | None = None) -> StoredBlob: ...

    def open(self, uri: str) -> BinaryIO: ...

    def local_path(self, uri: str) -> contextlib.AbstractContextManager[Path]: ...

    def delete(self, uri: str) -> None: ...



class FileBlobStore:
    """Blobs as files under one root folder, written atomically (temp file, fsync, rename)."""

    scheme = "file"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _ensure_root(self) -> None:
        try:
            (self.root / ".tmp").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(
                f"blob store folder {self.root} cannot be created: {exc.strerror}"
            ) from exc

    def put(self, source: BinaryIO, *, max_bytes: int | None = None) -> StoredBlob:
        self._ensure_root()
        key = uuid.uuid4().hex
        target = self.root / key[:2] / key
        digest = hashlib.sha256()
        size = 0
        handle, temp_name = tempfile.mkstemp(dir=self.root / ".tmp", prefix="upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := source.read(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"the file is larger than the limit of {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            target.parent.mkdir(exist_ok=True)
            os.replace(temp_name, target)
        except OSError as exc:
            _remove_quietly(Path(temp_name))
            raise StorageUnavailable(f"the blob store could not write: {exc.strerror or exc}") from exc
        except BaseException:
            _remove_quietly(Path(temp_name))
            raise
        return StoredBlob(uri=target.as_uri(), size_bytes=size, sha256=digest.hexdigest())

    def path_of(self, uri: str) -> Path:
        """The file behind ``uri``; refuses anything outside the root."""
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise ValueError(f"not a file:// URI: {uri!r}")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError("blob URI points outside the storage root")
        return path

    def open(self, uri: str) -> BinaryIO:
        path = self.path_of(uri)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageUnavailable(f"the blob store could not read: {exc.strerror}") from exc

    @contextlib.contextmanager
    def local_path(self, uri: str) -> Iterator[Path]:
        path = self.path_of(uri)
        if not path.is_file():
            if not self.root.is_dir():
                raise StorageUnavailable(f"blob store folder {self.root} is not available")
            raise FileNotFoundError(f"blob {uri} does not exist")
        yield path

    def delete(self, uri: str) -> None:
        _remove_quietly(self.path_of(uri))

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless a blob could be written now (the API's ``/healthz``)."""
        self._ensure_root()
        if not os.access(self.root / ".tmp", os.W_OK | os.X_OK):
            raise StorageUnavailable(f"blob store folder {self.root} is not writable")


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def blob_store_from_url(url: str) -> BlobStore:
    """The store for a storage URL. An ``s3://`` store would be one more branch here."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore(Path(unquote(parsed.netloc + parsed.path)))
    raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r}: use file:///absolute/path")
