"""The file:// blob store: atomic writes, names never taken from the client, streaming reads."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from extraction_pipeline.extraction.errors import StorageUnavailable, TooLarge
from extraction_pipeline.persistence.blobs import FileBlobStore, blob_store_from_url


def test_put_records_size_and_sha256_and_reads_back(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    payload = b"%PDF-1.7 hello" * 100_000
    blob = store.put(io.BytesIO(payload))
    assert blob.size_bytes == len(payload)
    assert blob.sha256 == hashlib.sha256(payload).hexdigest()
    with store.open(blob.uri) as handle:
        assert handle.read() == payload
    with store.local_path(blob.uri) as path:
        assert path.is_relative_to(tmp_path / "blobs")
        assert path.read_bytes() == payload


def test_two_uploads_of_the_same_name_never_collide(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    first = store.put(io.BytesIO(b"first"))
    second = store.put(io.BytesIO(b"second"))
    assert first.uri != second.uri
    with store.open(first.uri) as a, store.open(second.uri) as b:
        assert (a.read(), b.read()) == (b"first", b"second")


def test_uris_outside_the_root_are_refused(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    for uri in (secret.as_uri(), (tmp_path / "blobs" / ".." / "secret.txt").as_uri(), "file:///etc/passwd"):
        with pytest.raises(ValueError, match="outside the storage root"):
            store.open(uri)


def test_a_write_over_the_limit_leaves_no_file_behind(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(TooLarge):
        store.put(io.BytesIO(b"x" * 5000), max_bytes=4096)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_failing_source_leaves_no_temp_file(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise OSError(5, "Input/output error")

    store = FileBlobStore(tmp_path)
    with pytest.raises(StorageUnavailable):
        store.put(Broken())  # type: ignore[arg-type]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_unwritable_root_is_a_transient_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(StorageUnavailable):
        FileBlobStore(blocker / "blobs").put(io.BytesIO(b"data"))


def test_store_from_url() -> None:
    store = blob_store_from_url("file:///srv/extraction/blobs")
    assert isinstance(store, FileBlobStore)
    assert store.root == Path("/srv/extraction/blobs")
    with pytest.raises(ValueError, match="unsupported storage URL scheme"):
        blob_store_from_url("ftp://example/blobs")
