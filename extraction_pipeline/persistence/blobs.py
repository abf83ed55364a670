"""The blob store: where uploaded bytes live. ``file://`` is implemented; callers only see ``BlobStore``.

Keys are generated here (random, sharded), never derived from the client's file name, so two
uploads of ``a.pdf`` never collide and a name like ``../../etc/passwd`` cannot steer a write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from extraction_pipeline.extraction.errors import StorageUnavailable, TooLarge

_CHUNK = 1024 * 1024
# What put() names a blob (uuid4().hex); anything else in the store's folders is not a blob.
_KEY = re.compile(r"[0-9a-f]{32}")
# Name prefix of the temporary file of an upload in flight (in ``<root>/.tmp``).
_UPLOAD_PREFIX = "upload-"


@dataclass(frozen=True)
class StoredBlob:
    uri: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class BlobEntry:
    """A stored blob as a listing sees it (housekeeping): its key, URI and last modification."""

    key: str
    uri: str
    modified_at: float  # POSIX seconds


class BlobStore(Protocol):
    """What the rest of the project may ask of a blob store."""

    def put(self, source: BinaryIO, *, max_bytes: int | None = None) -> StoredBlob: ...

    def open(self, uri: str) -> BinaryIO: ...

    def local_path(self, uri: str) -> contextlib.AbstractContextManager[Path]: ...

    def delete(self, uri: str) -> None: ...


@runtime_checkable
class ListableBlobStore(BlobStore, Protocol):
    """A blob store that can list what it holds (housekeeping looks there for orphans)."""

    def list_blobs(self, *, after: str | None = None, limit: int | None = None) -> Iterator[BlobEntry]: ...

    def owns(self, uri: str) -> bool: ...

    def remove_stale_uploads(self, *, older_than: float, limit: int) -> int: ...


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
        handle, temp_name = tempfile.mkstemp(dir=self.root / ".tmp", prefix=_UPLOAD_PREFIX)
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

    def owns(self, uri: str) -> bool:
        """Whether ``uri`` names a blob of this store (under its root, as ``put`` writes them)."""
        try:
            self.path_of(uri)
        except ValueError:
            return False
        return True

    def list_blobs(self, *, after: str | None = None, limit: int | None = None) -> Iterator[BlobEntry]:
        """The stored blobs in key order, from the first key after ``after``, at most ``limit``.

        Only finished blobs (``<root>/<2 hex>/<key>``); uploads still being written live in ``.tmp``
        and are never listed. A blob removed while the listing runs is left out.
        """
        if not self.root.is_dir():
            return
        shards = sorted(
            entry.name
            for entry in os.scandir(self.root)
            if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False)
        )
        listed = 0
        for shard in shards:
            if after is not None and shard < after[:2]:
                continue
            try:
                entries = sorted(os.scandir(self.root / shard), key=lambda entry: entry.name)
            except FileNotFoundError:
                continue
            # The URI of each blob as put() wrote it; keys are hex, nothing to escape (pathlib's as_uri
            # per blob was most of a listing's time).
            prefix = (self.root / shard).as_uri() + "/"
            for entry in entries:
                if (after is not None and entry.name <= after) or not _KEY.fullmatch(entry.name):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield BlobEntry(key=entry.name, uri=prefix + entry.name, modified_at=stat.st_mtime)
                listed += 1
                if limit is not None and listed >= limit:
                    return

    def remove_stale_uploads(self, *, older_than: float, limit: int) -> int:
        """Delete at most ``limit`` unfinished uploads (``.tmp/upload-*``) last written before the
        time ``older_than``: what a killed upload left (a live one writes its file as bytes arrive,
        and ``put`` removes it on any error it sees). Returns how many went."""
        try:
            entries = list(os.scandir(self.root / ".tmp"))
        except FileNotFoundError:
            return 0
        removed = 0
        for entry in entries:
            if removed >= limit:
                break
            if not entry.name.startswith(_UPLOAD_PREFIX):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.st_mtime < older_than and entry.is_file(follow_symlinks=False):
                _remove_quietly(Path(entry.path))
                removed += 1
        return removed

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
