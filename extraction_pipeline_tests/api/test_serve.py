"""``extraction-pipeline serve`` itself: when it refuses to start, ``--no-auth``, ``--workers``, and
what it answers while the database is down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from extraction_pipeline_tests.api.conftest import (
    TOKEN,
    free_port,
    running_server,
    sqlite_env,
)
from extraction_pipeline_tests.conftest import create_pg_database, drop_pg_database, require_postgres, run_cli
from extraction_pipeline_tests.e2e.conftest import REPO_ROOT
from extraction_pipeline_tests.orchestration.conftest import make_pdf


def test_serve_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    del env["EXTRACTION_API_TOKEN"]
    result = run_cli(env, "serve", "--port", str(free_port()), cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "EXTRACTION_API_TOKEN is not set" in result.stderr


def test_no_auth_is_refused_on_a_public_address(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    result = run_cli(env, "serve", "--no-auth", "--host", "0.0.0.0", cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "only allowed on a loopback host" in result.stderr


def test_no_auth_on_loopback_with_two_worker_processes(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    del env["EXTRACTION_API_TOKEN"]
    with running_server(env, tmp_path / "serve.log", "--no-auth", "--workers", "2") as server:
        anonymous = httpx.Client(base_url=server.url, timeout=30)
        created = anonymous.post("/v1/files", files={"file": ("a.pdf", make_pdf())})
        assert created.status_code == 201, created.text
        for _ in range(4):  # whichever process answers, it sees the same database
            assert [item["id"] for item in anonymous.get("/v1/files").json()["items"]] == [
                created.json()["id"]
            ]
    assert server.log.read_text().count("Started server process") == 2


def test_database_down_is_503_without_secrets_and_leaves_no_blob(tmp_path: Path) -> None:
    secret = "hunter2-db-password"
    env = sqlite_env(tmp_path)
    env["EXTRACTION_DATABASE_URL"] = f"postgresql://app:{secret}@127.0.0.1:{free_port()}/app"
    with running_server(env, tmp_path / "serve.log") as server:
        health = httpx.get(f"{server.url}/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json() == {
            "status": "unavailable",
            "checks": {"database": "unavailable", "blob_store": "ok"},
        }
        listed = server.client.get("/v1/files")
        assert listed.status_code == 503
        assert listed.json()["error"]["code"] == "database_unavailable"
        uploaded = server.client.post("/v1/files", files={"file": ("a.pdf", make_pdf())})
        assert uploaded.status_code == 503  # the blob was stored, the row could not be: blob removed
        assert server.blob_files() == []
        for response in (health, listed, uploaded):
            assert secret not in response.text and "Traceback" not in response.text
    log = server.log.read_text()
    assert "503 (until it answers)" in log or "serving anyway" in log
    assert secret not in log and TOKEN not in log


def test_an_unwritable_blob_store_is_503_and_leaves_no_row(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("a file where the blob folder should be")
    env = sqlite_env(tmp_path)
    env["EXTRACTION_STORAGE_URL"] = (tmp_path / "not-a-folder" / "blobs").as_uri()
    with running_server(env, tmp_path / "serve.log") as server:
        health = httpx.get(f"{server.url}/healthz", timeout=30)
        assert health.status_code == 503 and health.json()["checks"] == {
            "database": "ok",
            "blob_store": "unavailable",
        }
        uploaded = server.client.post("/v1/files", files={"file": ("a.pdf", make_pdf())})
        assert uploaded.status_code == 503 and uploaded.json()["error"]["code"] == "storage_unavailable"
        assert server.client.get("/v1/files").json() == {"items": [], "next_cursor": None}


def test_serve_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    require_postgres()
    url = create_pg_database("ep_api_noschema")
    try:
        env = sqlite_env(tmp_path)
        env["EXTRACTION_DATABASE_URL"] = url
        result = run_cli(env, "serve", "--port", str(free_port()), cwd=REPO_ROOT, timeout=60)
    finally:
        drop_pg_database(url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "run `extraction-pipeline db upgrade` first" in result.stderr


def test_other_commands_and_the_code_location_do_not_load_fastapi() -> None:
    probe = (
        "import sys, extraction_pipeline.definitions, extraction_pipeline.cli.operations, "
        "extraction_pipeline.cli.delete, extraction_pipeline.cli.status, extraction_pipeline.cli.listing; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
