"""The routes over real HTTP, on SQLite and on PostgreSQL (one server per backend for the module).

What a host application sees: the documents (identical to the CLI's ``--json``), pagination, each
error status with its JSON body, and that refused or broken uploads leave nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline_tests.api.conftest import TOKEN, Server
from extraction_pipeline_tests.orchestration.conftest import make_pdf

MIB = 1024 * 1024


def upload(server: Server, name: str, data: bytes, content_type: str = "application/pdf") -> dict[str, Any]:
    response = server.client.post("/v1/files", files={"file": (name, data, content_type)})
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error document of ``response``, which must have ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]


def all_ids(server: Server) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = server.client.get("/v1/files", params=params).json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def repository_of(server: Server) -> CloudFileRepository:
    return CloudFileRepository.from_url(server.env.get("EXTRACTION_DATABASE_URL") or _sqlite_url(server))


def _sqlite_url(server: Server) -> str:
    return f"sqlite:///{server.env['EXTRACTION_HOME']}/extraction.db"


def test_upload_status_and_list_are_the_cli_documents(server: Server) -> None:
    data = make_pdf(2)
    created = upload(server, "plan 1.pdf", data)
    assert set(created) == {"id", "filename", "size_bytes", "sha256"}
    assert created["filename"] == "plan 1.pdf"
    assert created["size_bytes"] == len(data)
    assert created["sha256"] == hashlib.sha256(data).hexdigest()

    document = server.client.get(f"/v1/files/{created['id']}").json()
    assert document["status"] == "pending" and document["content_type"] == "application/pdf"
    cli = server.cli("status", str(created["id"]), "--json")
    assert cli.returncode == 0, cli.stderr
    assert document == json.loads(cli.stdout)  # the same document as `status ID --json`

    listed = server.client.get("/v1/files", params={"status": "pending", "limit": 1000}).json()
    cli_list = server.cli("list", "--status", "pending", "--json")
    assert cli_list.returncode == 0, cli_list.stderr
    assert listed["items"] == json.loads(cli_list.stdout)  # the items of `list --json`
    assert created["id"] in [item["id"] for item in listed["items"]]


def test_file_names_are_stored_as_given_and_never_used_as_paths(server: Server) -> None:
    name = "../../escaped-upload/évil name <b>; x=1.pdf"
    created = upload(server, name, make_pdf())
    assert server.client.get(f"/v1/files/{created['id']}").json()["filename"] == name
    blob_root = server.env["EXTRACTION_STORAGE_URL"].removeprefix("file://")
    assert all(str(path).startswith(blob_root) for path in server.blob_files())
    assert not (Path(blob_root) / "../../escaped-upload").resolve().exists()  # nothing written there


def test_pages_follow_the_cursor_until_it_is_null(server: Server) -> None:
    for number in range(5):
        upload(server, f"page-{number}.pdf", make_pdf(text=f"page {number}"))
    expected = all_ids(server)
    assert len(expected) >= 5
    pages: list[list[int]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = server.client.get("/v1/files", params=params).json()
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert [file_id for page in pages for file_id in page] == expected  # every file once, in id order
    assert len(pages) == (len(expected) + 1) // 2 and all(pages)  # no empty last page
    assert all(len(page) == 2 for page in pages[:-1])


def test_bad_list_parameters_are_refused(server: Server) -> None:
    assert "status must be one of" in error_of(server.client.get("/v1/files?status=done"), 400)["message"]
    assert "format must be one of" in error_of(server.client.get("/v1/files?format=docx"), 400)["message"]
    error_of(server.client.get("/v1/files?cursor=abc"), 400)
    assert error_of(server.client.get("/v1/files?limit=0"), 422)["code"] == "invalid_request"
    assert server.client.get("/v1/files?format=pdf").json()["items"] == []  # nothing extracted here


def test_every_route_but_healthz_needs_the_token(server: Server) -> None:
    blobs_before = len(server.blob_files())
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    wrong = httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": "Bearer nope"})
    for client, message in ((anonymous, "missing bearer token"), (wrong, "wrong bearer token")):
        for method, path in (
            ("GET", "/v1/files"),
            ("GET", "/v1/files/1"),
            ("POST", "/v1/files/1/retry"),
            ("POST", "/v1/files/1/cancel"),
            ("DELETE", "/v1/files/1"),
            ("POST", "/v1/backfills"),
            ("GET", "/v1/search?q=pump"),
            ("GET", "/v1/files/1/thumbnail"),
        ):
            response = client.request(method, path)
            assert error_of(response, 401) == {"code": "unauthorized", "message": message}
            assert response.headers["www-authenticate"] == "Bearer"
        refused = client.post("/v1/files", files={"file": ("a.pdf", make_pdf(), "application/pdf")})
        error_of(refused, 401)
    assert len(server.blob_files()) == blobs_before  # a refused upload stores nothing
    assert anonymous.get("/healthz").json()["status"] == "ok"
    spec = anonymous.get("/openapi.json").json()  # the description is open, and names the token
    assert {"/v1/files", "/v1/files/{file_id}", "/v1/backfills", "/healthz"} <= set(spec["paths"])
    assert spec["paths"]["/v1/files"]["post"]["security"] == [{"bearer": []}]
    assert TOKEN not in server.log.read_text()


def test_unknown_files_are_404(server: Server) -> None:
    for method, path in (
        ("GET", "/v1/files/987654"),
        ("POST", "/v1/files/987654/retry"),
        ("POST", "/v1/files/987654/cancel"),
        ("DELETE", "/v1/files/987654"),
    ):
        error = error_of(server.client.request(method, path), 404)
        assert error == {"code": "not_found", "message": "no file with id 987654"}


def test_retry_and_cancel_answer_409_when_the_state_does_not_allow_it(server: Server) -> None:
    repository = repository_of(server)
    try:
        queued = upload(server, "queued.pdf", make_pdf())["id"]
        repository.queue_files([queued])
        error = error_of(server.client.post(f"/v1/files/{queued}/retry"), 409)
        assert error["code"] == "conflict" and "queued" in error["message"]

        done = upload(server, "done.pdf", make_pdf())["id"]
        repository.queue_files([done])
        job = repository.start_attempt(done, run_id="run-done", attempt=1, max_attempts=1, format="pdf")
        assert job is not None
        repository.finish_attempt(job, "succeeded", file_status="succeeded")
        error = error_of(server.client.post(f"/v1/files/{done}/cancel"), 409)
        assert error["message"] == f"file {done} is succeeded: nothing to cancel"
        error_of(server.client.post(f"/v1/files/{done}/retry"), 409)  # succeeded: only with force
        forced = server.client.post(f"/v1/files/{done}/retry", params={"force": "true"})
        assert forced.status_code == 200 and forced.json()["status"] == "pending"

        cancelled = server.client.post(f"/v1/files/{queued}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        error_of(server.client.post(f"/v1/files/{queued}/cancel"), 409)
        retried = server.client.post(f"/v1/files/{queued}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
    finally:
        repository.dispose()


def test_an_upload_over_the_limit_is_413_and_leaves_nothing(server: Server) -> None:
    ids, blobs = all_ids(server), len(server.blob_files())
    # Declared too large by its Content-Length: refused before it is read.
    error = error_of(server.client.post("/v1/files", files={"file": ("big.pdf", b"x" * (2 * MIB))}), 413)
    assert error["code"] == "too_large"
    # Within the framing allowance of the Content-Length: found out while it streams in.
    error_of(server.client.post("/v1/files", files={"file": ("big.pdf", b"x" * (MIB + 1000))}), 413)
    # Sent chunked, without a Content-Length at all.
    chunks = iter(
        [b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.pdf"\r\n\r\n']
        + [b"y" * 65536] * 20
        + [b"\r\n--b--\r\n"]
    )
    chunked = server.client.post(
        "/v1/files", content=chunks, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    error_of(chunked, 413)
    assert all_ids(server) == ids and len(server.blob_files()) == blobs


def test_malformed_requests_are_415_or_422(server: Server) -> None:
    ids, blobs = all_ids(server), len(server.blob_files())
    missing = server.client.post("/v1/files", files={"attachment": ("a.pdf", make_pdf())})
    assert error_of(missing, 422) == {
        "code": "missing_file",
        "message": "the multipart field `file` is missing",
    }
    assert (
        error_of(server.client.post("/v1/files", json={"file": "x"}), 415)["code"] == "unsupported_media_type"
    )
    empty = server.client.post("/v1/files", files={"file": ("empty.pdf", b"")})
    assert error_of(empty, 400)["message"] == "the file is empty (0 bytes)"
    broken = server.client.post(
        "/v1/files", content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=zz"}
    )
    assert error_of(broken, 400)["code"] == "bad_request"
    bad_json = server.client.post(
        "/v1/backfills", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_of(bad_json, 422)["code"] == "invalid_request"
    assert "choose the files" in error_of(server.client.post("/v1/backfills", json={}), 422)["message"]
    error_of(server.client.post("/v1/backfills", json={"status": "done"}), 422)
    error_of(server.client.post("/v1/backfills", json={"uploaded_before": "last week"}), 422)
    error_of(server.client.get("/v1/files/abc"), 422)
    assert all_ids(server) == ids and len(server.blob_files()) == blobs


def test_a_client_that_disconnects_mid_upload_leaves_no_row_and_no_blob(server: Server) -> None:
    ids, blobs = all_ids(server), len(server.blob_files())
    host, port = server.url.removeprefix("http://").split(":")
    head = b'--bb\r\nContent-Disposition: form-data; name="file"; filename="cut.pdf"\r\n\r\n'
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(
            b"POST /v1/files HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=bb\r\nContent-Length: 900000\r\n\r\n"
            + head
            + b"%PDF-1.4\n"
            + b"z" * 300_000
        )
        deadline = time.monotonic() + 10
        while len(server.blob_files()) == blobs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.blob_files()) == blobs + 1  # the server is writing the blob now
        started = time.monotonic()  # a stalled upload holds up nobody else
        assert server.client.get("/v1/files", params={"limit": 1}).status_code == 200
        assert time.monotonic() - started < 2
    deadline = time.monotonic() + 10
    while len(server.blob_files()) != blobs and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(server.blob_files()) == blobs  # the temporary file is gone too
    assert all_ids(server) == ids
    assert server.client.get("/healthz").status_code == 200  # and the server is fine


def test_delete_removes_the_file_and_its_blob(server: Server) -> None:
    created = upload(server, "gone.pdf", make_pdf())
    blobs = len(server.blob_files())
    response = server.client.delete(f"/v1/files/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    error_of(server.client.get(f"/v1/files/{created['id']}"), 404)
    assert created["id"] not in all_ids(server)
    assert len(server.blob_files()) == blobs - 1
    error_of(server.client.delete(f"/v1/files/{created['id']}"), 404)


def test_backfill_needs_the_instance_and_registers_the_files(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in the module: it queues every file."""
    response = server.client.post("/v1/backfills", json={"all": True})
    if "DAGSTER_HOME" not in server.env:  # the SQLite server has no instance: it says so
        assert error_of(response, 503)["code"] == "dagster_unavailable"
        return
    import dagster as dg

    assert response.status_code == 200, response.text
    body = response.json()
    ids = all_ids(server)
    assert body["files"] == len(ids) - body["skipped"] and body["backfill_id"]
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", server.env["DAGSTER_POSTGRES_URL"])  # read by dagster.yaml
    instance = dg.DagsterInstance.from_config(server.env["DAGSTER_HOME"])
    try:
        assert instance.get_backfill(body["backfill_id"]) is not None  # on the UI's backfills page
        key = str(ids[0])
        assert instance.has_dynamic_partition("cloud_files", key)
        assert server.client.get(f"/v1/files/{key}").json()["status"] == "queued"
        assert server.client.delete(f"/v1/files/{key}").status_code == 204
        assert not instance.has_dynamic_partition("cloud_files", key)  # the partition went with it
    finally:
        instance.dispose()
    again = server.client.post("/v1/backfills", json={"status": "failed"})
    assert again.json() == {"backfill_id": None, "files": 0, "skipped": 0}


def test_search_answers_as_the_cli_and_refuses_a_bad_format(server: Server) -> None:
    """The texts are stored as a run stores them (materialize); the server only reads them."""
    housing = upload(server, "housing.pdf", make_pdf(text="pump housing"))
    plan = upload(server, "plan.pdf", make_pdf(text="ground floor"))
    repository = repository_of(server)
    try:
        for item, text in ((housing, "Pump housing P-4711-B"), (plan, "GROUND FLOOR PLAN, pump room")):
            envelope = {"format": "pdf", "extractor": {"version": "1.0.0"}, "metadata": {}, "text": text}
            assert repository.materialize_many([(item["id"], 0, envelope, {})]) == {item["id"]}
    finally:
        repository.dispose()
    found = server.client.get("/v1/search", params={"q": '"P-4711-B" -room'})
    assert found.status_code == 200, found.text
    [hit] = found.json()
    assert set(hit) == {"id", "filename", "format", "rank", "snippet"}
    assert (hit["id"], hit["filename"], hit["format"]) == (housing["id"], "housing.pdf", "pdf")
    both = server.client.get("/v1/search", params={"q": "pump", "format": "pdf", "limit": 5}).json()
    assert {h["id"] for h in both} >= {housing["id"], plan["id"]}
    assert server.client.get("/v1/search", params={"q": "pump", "format": "step"}).json() == []
    assert server.client.get("/v1/search", params={"q": 'x" OR 1=1; -- ' * 1000}).status_code == 200
    error_of(server.client.get("/v1/search", params={"q": "pump", "format": "docx"}), 400)
    assert server.client.get("/v1/search").status_code == 422  # no q


def test_thumbnail_serves_the_stored_preview_and_the_cli_writes_it(server: Server, tmp_path: Path) -> None:
    """The preview is stored as a run stores it (materialize); the server and the CLI only read it."""
    import base64
    import io

    import pymupdf

    from extraction_pipeline.extraction.extract import extract_file
    from extraction_pipeline.persistence.blobs import blob_store_from_url

    drawn = upload(server, "drawn.pdf", make_pdf(text="a drawing"))
    bare = upload(server, "bare.pdf", make_pdf(text="not extracted"))
    local = tmp_path / "drawn.pdf"
    local.write_bytes(make_pdf(text="a drawing"))
    envelope = extract_file(local, preview=True)
    assert envelope.preview_png is not None
    png = base64.b64decode(envelope.preview_png)
    stored = blob_store_from_url(server.env["EXTRACTION_STORAGE_URL"]).put(io.BytesIO(png))
    document = {**envelope.model_dump(mode="json"), "preview_uri": stored.uri}
    repository = repository_of(server)
    try:
        assert repository.materialize_many([(drawn["id"], 0, document, {})]) == {drawn["id"]}
    finally:
        repository.dispose()

    response = server.client.get(f"/v1/files/{drawn['id']}/thumbnail")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    picture = pymupdf.Pixmap(response.content)
    assert response.content == png and max(picture.width, picture.height) == 512
    none = error_of(server.client.get(f"/v1/files/{bare['id']}/thumbnail"), 404)
    assert none == {
        "code": "not_found",
        "message": f"file {bare['id']} has no preview: it has not been extracted",
    }
    assert (
        error_of(server.client.get("/v1/files/987654/thumbnail"), 404)["message"] == "no file with id 987654"
    )

    written = server.cli("thumbnail", str(drawn["id"]), "-o", str(tmp_path / "out.png"), "--json")
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "out.png").read_bytes() == png
    assert json.loads(written.stdout) == {
        "id": drawn["id"],
        "path": str(tmp_path / "out.png"),
        "size_bytes": len(png),
    }
    missing = server.cli("thumbnail", str(bare["id"]), "-o", str(tmp_path / "bare.png"))
    assert missing.returncode == 1 and "has no preview: it has not been extracted" in missing.stderr
    unknown = server.cli("thumbnail", "987654", "-o", str(tmp_path / "unknown.png"))
    assert unknown.returncode == 2 and "no file with id 987654" in unknown.stderr
    assert not (tmp_path / "bare.png").exists() and not (tmp_path / "unknown.png").exists()

    # A file extracted without its preview (as a backfill does): the first request makes it, in the
    # server's isolated worker, and stores it; the next one is served from the store.
    later = upload(server, "later.pdf", make_pdf(text="drawn on request"))
    by_cli = upload(server, "by-cli.pdf", make_pdf(text="drawn by the command"))
    repository = repository_of(server)
    try:
        without = {**envelope.model_dump(mode="json"), "preview_uri": None}
        assert repository.materialize_many(
            [(later["id"], 0, without, {}), (by_cli["id"], 0, without, {})]
        ) == {
            later["id"],
            by_cli["id"],
        }
        first = server.client.get(f"/v1/files/{later['id']}/thumbnail")
        assert first.status_code == 200 and first.headers["content-type"] == "image/png", first.text
        stored_later = repository.metadata_for(later["id"])
        assert stored_later is not None and stored_later.preview_uri is not None
    finally:
        repository.dispose()
    assert server.client.get(f"/v1/files/{later['id']}/thumbnail").content == first.content
    assert pymupdf.Pixmap(first.content).color_count() > 1
    made = server.cli("thumbnail", str(by_cli["id"]), "-o", str(tmp_path / "by-cli.png"))
    assert made.returncode == 0, made.stderr
    assert (
        server.client.get(f"/v1/files/{by_cli['id']}/thumbnail").content
        == (tmp_path / "by-cli.png").read_bytes()
    )

    # Deleting the file removes its blob and its preview.
    blobs = len(server.blob_files())
    assert server.client.delete(f"/v1/files/{drawn['id']}").status_code == 204
    assert len(server.blob_files()) == blobs - 2
    error_of(server.client.get(f"/v1/files/{drawn['id']}/thumbnail"), 404)
