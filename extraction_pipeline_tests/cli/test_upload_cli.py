"""``db upgrade``, ``upload``, ``list`` and ``status`` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from extraction_pipeline.cli import cli
from extraction_pipeline.persistence.models import CloudFile
from extraction_pipeline_tests.conftest import run_cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def rows(url: str) -> list[tuple[int, str, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.select(CloudFile.id, CloudFile.filename, CloudFile.storage_uri)).all()
    engine.dispose()
    return [tuple(r) for r in found]


def blobs(home: Path) -> list[Path]:
    root = home / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "samples"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.pdf").write_bytes(b"%PDF-1.4\n%fake\n")
    (folder / "nested" / "a.pdf").write_bytes(b"%PDF-1.4\n%another one with the same name\n")
    (folder / "drawing.dxf").write_bytes(b"  0\nSECTION\n  2\nENTITIES\n  0\nENDSEC\n  0\nEOF\n")
    return folder


def test_upload_then_list_and_status_on_the_embedded_default(extraction_env: Path, sample_dir: Path) -> None:
    code, out, _ = run("upload", str(sample_dir), "--json")
    assert code == 0
    uploaded = json.loads(out)
    assert [u["filename"] for u in uploaded] == ["a.pdf", "drawing.dxf", "a.pdf"]
    assert {tuple(sorted(u)) for u in uploaded} == {("filename", "id", "sha256", "size_bytes")}
    assert len({u["id"] for u in uploaded}) == 3
    # The embedded default was created on first use, under EXTRACTION_HOME.
    assert (extraction_env / "extraction.db").is_file()
    assert len(blobs(extraction_env)) == 3
    # Two uploads named a.pdf are two blobs, neither stored under the client's name.
    assert all(p.name != "a.pdf" for p in blobs(extraction_env))

    code, out, _ = run("list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(f["id"], f["status"], f["attempts"], f["error"]) for f in listed] == [
        (u["id"], None, 0, None) for u in uploaded
    ]
    assert set(listed[0]) == {"id", "filename", "format", "status", "attempts", "error"}

    code, out, _ = run("list", "--status", "pending", "--limit", "2", "--json")
    assert code == 0 and [f["id"] for f in json.loads(out)] == [u["id"] for u in uploaded[:2]]
    code, out, _ = run("list", "--status", "succeeded", "--json")
    assert code == 0 and json.loads(out) == []

    code, out, _ = run("status", str(uploaded[1]["id"]), "--json")
    assert code == 0
    status = json.loads(out)
    assert status["filename"] == "drawing.dxf"
    assert status["status"] == "pending"
    assert status["extraction_status"] is None
    assert status["jobs"] == [] and status["metadata"] is None


def test_status_of_an_unknown_id_is_an_input_error(extraction_env: Path) -> None:
    code, out, err = run("status", "424242")
    assert code == 2
    assert out == ""
    assert "no file with id 424242" in err


BAD_INPUTS = ["missing", "empty_file", "empty_dir", "too_large", "unreadable"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_leaves_nothing_behind(
    case: str, extraction_env: Path, sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = sample_dir / "drawing.dxf"
    if case == "missing":
        bad = tmp_path / "does-not-exist.pdf"
    elif case == "empty_file":
        bad = tmp_path / "empty.pdf"
        bad.write_bytes(b"")
    elif case == "empty_dir":
        bad = tmp_path / "nothing-here"
        (bad / "sub").mkdir(parents=True)
    elif case == "too_large":
        monkeypatch.setenv("EXTRACTION_MAX_FILE_MB", "1")
        bad = tmp_path / "big.pdf"
        bad.write_bytes(b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 1))
    else:
        if os.geteuid() == 0:
            # root reads any file whatever its mode; a FIFO is an entry that cannot be read as a file.
            bad = tmp_path / "unreadable.pdf"
            os.mkfifo(bad)
        else:
            bad = tmp_path / "unreadable.pdf"
            bad.write_bytes(b"%PDF-1.4")
            bad.chmod(0)
    # The good file comes first: it must not be uploaded either when a later argument is bad.
    code, out, err = run("upload", str(good), str(bad), "--json")
    assert code == 2, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert blobs(extraction_env) == []
    db = extraction_env / "extraction.db"
    assert not db.exists() or rows(f"sqlite:///{db}") == []


def test_a_failed_database_insert_leaves_no_blob(extraction_env: Path, sample_dir: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    engine = sa.create_engine(f"sqlite:///{extraction_env / 'extraction.db'}")
    with engine.begin() as conn:  # a constraint that makes every insert fail
        conn.execute(
            sa.text(
                "CREATE TRIGGER refuse BEFORE INSERT ON cloud_files BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    engine.dispose()
    code, out, err = run("upload", str(sample_dir / "a.pdf"))
    assert code == 1
    assert "refused" in err and len(err.strip().splitlines()) == 1
    assert blobs(extraction_env) == []


def test_a_failed_blob_write_leaves_no_row(extraction_env: Path, sample_dir: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    # The blob folder cannot be created: a file stands where it should be.
    (extraction_env / "blobs").write_text("not a folder")
    code, out, err = run("upload", str(sample_dir / "a.pdf"))
    assert code == 1
    assert "blob store" in err
    assert rows(f"sqlite:///{extraction_env / 'extraction.db'}") == []


def test_upload_on_postgresql_from_a_folder_outside_the_repo(
    pg_url: str, tmp_path: Path, sample_dir: Path
) -> None:
    """The installed command, run from elsewhere: db upgrade, then upload, on PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTRACTION_")}
    env |= {
        "EXTRACTION_DATABASE_URL": pg_url.replace("postgresql+psycopg2://", "postgresql://"),
        "EXTRACTION_STORAGE_URL": (tmp_path / "pgblobs").as_uri(),
    }
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()

    def cli_run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(env, *args, cwd=workdir, timeout=120)

    before = cli_run("upload", str(sample_dir))
    assert before.returncode == 1 and "db upgrade" in before.stderr  # no schema yet: told what to do
    assert cli_run("db", "upgrade").returncode == 0
    assert cli_run("db", "upgrade").returncode == 0  # idempotent
    done = cli_run("upload", str(sample_dir), "--json")
    assert done.returncode == 0, done.stderr
    uploaded = json.loads(done.stdout)
    assert len(uploaded) == 3
    assert sorted(r[0] for r in rows(pg_url)) == sorted(u["id"] for u in uploaded)
    assert all(uri.startswith((tmp_path / "pgblobs").as_uri()) for _, _, uri in rows(pg_url))
    assert not (workdir / ".extraction").exists()  # nothing embedded was created


def test_many_files_show_a_progress_bar_on_stderr(extraction_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(12):
        (folder / f"f{i:02}.pdf").write_bytes(b"%PDF-1.4\n" + bytes([i]))
    code, out, err = run("upload", str(folder))
    assert code == 0
    assert "uploading" in err
    assert len(out.strip().splitlines()) == 12


def test_bad_settings_are_a_usage_error(
    extraction_env: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTION_MAX_FILE_MB", "lots")
    code, _, err = run("upload", str(sample_dir))
    assert code == 2
    assert "EXTRACTION_MAX_FILE_MB must be an integer" in err


@pytest.mark.parametrize("as_json", [False, True])
def test_every_bad_path_is_reported_and_nothing_is_uploaded(
    extraction_env: Path, sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    monkeypatch.setenv("EXTRACTION_MAX_FILE_MB", "1")
    missing = tmp_path / "missing.pdf"
    empty = tmp_path / "empty.dxf"
    empty.write_bytes(b"")
    empty_dir = tmp_path / "nothing-here"
    empty_dir.mkdir()
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "ok.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / "huge.pdf").write_bytes(b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 1))
    good = sample_dir / "drawing.dxf"
    args = [str(good), str(missing), str(empty), str(empty_dir), str(folder)]
    code, out, err = run("upload", *args, *(["--json"] if as_json else []))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"error: {missing}: no such file or directory",
        f"error: {empty}: the file is empty (0 bytes)",
        f"error: {empty_dir}: the directory has no files in it",
        f"error: {folder / 'huge.pdf'}: 1048586 bytes is over the maximum upload size of 1 MiB "
        "(EXTRACTION_MAX_FILE_MB)",
    ]
    assert blobs(extraction_env) == []
    db = extraction_env / "extraction.db"
    assert not db.exists() or rows(f"sqlite:///{db}") == []
