"""Security: blobs stay under the storage root, SQL is bound, the UI escapes, secrets never leak.

The secrets test runs the real thing (dagster-daemon, PostgreSQL with a password-bearing URL for
the app and for the Dagster instance, a webhook URL with ``user:password@`` and a token) and then
searches every place a secret could end up: every row of both databases (Dagster's event log, runs,
ticks, ...), every file under DAGSTER_HOME and EXTRACTION_HOME (compute logs), the daemon's
output (daemon, code server and run workers) and the CLI's output and error messages.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from markdown_it import MarkdownIt

import extraction_pipeline
from extraction_pipeline.cli import cli as cli_group
from extraction_pipeline.cli.quickstart import quickstart
from extraction_pipeline.orchestration.assets import ASSET_KEY
from extraction_pipeline.persistence.blobs import FileBlobStore
from extraction_pipeline.persistence.repository import CloudFileRepository, NewFile
from extraction_pipeline_tests.conftest import PG_ADMIN_URL, drop_pg_database, require_postgres
from extraction_pipeline_tests.e2e.conftest import (
    REPO_ROOT,
    cli,
    deployment_env,
    start_daemon,
    stop_daemon,
    wait_for,
)
from extraction_pipeline_tests.orchestration import conftest as orchestration
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run

# The orchestration tests' fixtures: a migrated SQLite app database, a blob store, a Dagster instance.
app = orchestration.app
instance = orchestration.instance

SQL_INJECTION = "x'); DROP TABLE cloud_files;--.pdf"
HTML_MARKDOWN = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) *b* _i_ `c` | # <b>.pdf"
NEWLINE = "two\nlines.pdf"


def render(markdown: str) -> str:
    """HTML as a Markdown renderer that even lets raw HTML through would show it."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def test_hostile_names_are_stored_verbatim_blobs_stay_under_the_root_and_the_ui_escapes_them(
    app: App, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTION_DATABASE_URL", app.url)
    monkeypatch.setenv("EXTRACTION_STORAGE_URL", app.storage_url)
    folder = tmp_path / "upload"
    folder.mkdir()
    for pages, name in enumerate((SQL_INJECTION, HTML_MARKDOWN, NEWLINE), start=1):
        (folder / name).write_bytes(make_pdf(pages=pages))
    runner = CliRunner()
    uploaded = runner.invoke(cli_group, ["upload", str(folder), "--json"])
    assert uploaded.exit_code == 0, uploaded.output
    ids = {item["filename"]: item["id"] for item in json.loads(uploaded.stdout)}
    assert set(ids) == {SQL_INJECTION, HTML_MARKDOWN, NEWLINE}
    # The host application may register any name: a path traversal, and a broken file named with HTML.
    ids["../../../outside.pdf"] = app.upload("../../../outside.pdf", make_pdf(pages=4))
    bad = app.upload("<script>alert(1)</script>.pdf", b"%PDF-1.4\n not a pdf body\n" * 10)  # corrupt

    listed = runner.invoke(cli_group, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {item["filename"] for item in json.loads(listed.stdout)} == set(ids) | {
        "<script>alert(1)</script>.pdf"
    }
    assert app.repository.count_files() == 5  # the table is still there, with every row

    result = run(app, instance, sorted([*ids.values(), bad]))
    assert not result.success  # the broken file
    root = FileBlobStore(Path(unquote(urlparse(app.storage_url).path))).root
    for name, file_id in ids.items():
        row = app.repository.get_file(file_id)
        assert row.filename == name and row.extraction_status["status"] == "succeeded", name
        blob = Path(unquote(urlparse(row.storage_uri).path)).resolve()
        assert blob.is_relative_to(root) and blob.is_file()
        assert name not in row.storage_uri and "outside" not in row.storage_uri
    assert not (root / "../../../outside.pdf").resolve().exists()
    stray = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(root)]
    assert {p.name for p in stray if p.parent != folder} <= {"app.db", "app.db-wal", "app.db-shm"}

    # What the UI shows: the Markdown summary renders the name as text, no tag, link or emphasis.
    for name in (HTML_MARKDOWN, SQL_INJECTION, NEWLINE):
        event = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[str(ids[name])]), limit=1
        ).records[0]
        metadata = event.asset_materialization.metadata
        assert metadata["file"].value == name  # plain text metadata: the UI shows it as text
        html = render(metadata["summary"].value)
        assert "<img" not in html and "<a " not in html and "<em>" not in html and "<b>" not in html, html
        assert "<code>" not in html and "<h1>" not in html, html
    html = render(
        metadata_summary := instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[str(ids[HTML_MARKDOWN])]), limit=1
        )
        .records[0]
        .asset_materialization.metadata["summary"]
        .value
    )
    assert "&lt;img src=x onerror=alert" in html and "javascript:alert" in html, metadata_summary
    # The run's failure message (shown as Markdown on the run page) escapes the broken file's name.
    failure = next(
        e.dagster_event
        for e in instance.all_logs(result.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"
    )
    description = failure.step_failure_data.user_failure_data.description
    assert "alert(1)" in description.replace("\\", "")
    assert "<script" not in render(description)


def test_a_blob_uri_outside_the_storage_root_is_never_read(
    app: App, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.pdf"  # a readable PDF next to, not inside, the blob root
    outside.write_bytes(make_pdf(pages=7))
    root = Path(unquote(urlparse(app.storage_url).path))
    root.mkdir(parents=True, exist_ok=True)
    file_id = app.repository.add_file(
        NewFile(
            filename="a.pdf",
            size_bytes=1,
            sha256="0" * 64,
            storage_uri=(root / ".." / "outside.pdf").as_uri(),
        )
    ).id
    result = run(app, instance, [file_id])
    assert not result.success
    status = app.status(file_id)
    assert status["status"] == "failed" and status["error"]["code"] == "storage_unavailable"
    assert "outside the storage root" in status["error"]["message"]
    assert app.repository.metadata_for(file_id) is None  # the 7 pages were never extracted


def test_sql_is_only_built_from_bound_parameters() -> None:
    """No SQL string in the package is assembled from values: f-strings, %, + or .format()."""
    package = Path(extraction_pipeline.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in ("execute", "exec_driver_sql", "text", "executescript"):
                continue
            first = node.args[0]
            built = isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call) and getattr(first.func, "attr", "") == "format"
            )
            if built:
                offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []


def test_the_webserver_binds_localhost_unless_told_otherwise() -> None:
    host = next(p for p in quickstart.params if p.name == "host")
    assert host.default == "127.0.0.1"
    shown = CliRunner().invoke(cli_group, ["quickstart", "--help"]).output
    assert "127.0.0.1" in shown
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "0.0.0.0" not in readme.replace("not 0.0.0.0", "")
    commands = [line for line in readme.splitlines() if re.search(r"dagster(-webserver| dev)\b", line)]
    assert commands and all(re.search(r"(-h|--host) 127\.0\.0\.1", line) for line in commands), commands
    production = readme[readme.index("## Production") :]
    assert re.search(r"authenticat", production, re.I) and re.search(r"reverse proxy", production, re.I)


# --------------------------------------------------------------------------------------------
# Secrets: a real deployment with passwords, searched everywhere afterwards
# --------------------------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[tuple[int, list[dict]]]:
    with orchestration.webhook_receiver() as received:
        yield received


@pytest.fixture
def secret_deployment(
    tmp_path: Path, webhook: tuple[int, list[dict]]
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Databases owned by a role with a password; every URL carries a secret."""
    require_postgres()
    tag = uuid.uuid4().hex[:10]
    role, secrets = (
        f"ep_sec_{tag}",
        {
            "db_password": f"DbPw{tag}x",
            "webhook_password": f"HookPw{tag}y",
            "webhook_token": f"HookTok{tag}z",
        },
    )
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    urls = []
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{secrets['db_password']}'"))
        for kind in ("app", "dagster"):
            name = f"ep_sec_{kind}_{tag}"
            conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER {role}'))
            url = sa.make_url(PG_ADMIN_URL).set(username=role, password=secrets["db_password"], database=name)
            urls.append(url.render_as_string(hide_password=False))
    port, _ = webhook
    env = deployment_env(tmp_path, urls[0], urls[1])
    env["EXTRACTION_NOTIFY_WEBHOOK_URL"] = (
        f"http://alerts:{secrets['webhook_password']}@127.0.0.1:{port}/hook?token={secrets['webhook_token']}"
    )
    env["EXTRACTION_MAX_RETRIES"] = "0"
    try:
        yield env, secrets
    finally:
        for url in urls:
            drop_pg_database(url)
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def dump_database(url: str) -> str:
    """Every row of every table, as JSON text."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            ).scalars()
            return "\n".join(
                row
                for table in list(tables)
                for row in conn.execute(sa.text(f'SELECT row_to_json(t)::text FROM "{table}" t')).scalars()
            )
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_no_secret_appears_in_logs_run_metadata_event_logs_rows_or_error_messages(
    secret_deployment: tuple[dict[str, str], dict[str, str]], webhook: tuple[int, list[dict]], tmp_path: Path
) -> None:
    env, secrets = secret_deployment
    _, received = webhook
    outputs: list[str] = []

    def run_cli(*args: str, environment: dict[str, str] = env, code: int = 0) -> str:
        done = cli(environment, *args)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode == code, (args, done.stderr)
        return done.stdout

    run_cli("db", "upgrade")
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "plan.pdf").write_bytes(make_pdf(pages=2))
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4\n not a pdf body\n" * 10)  # corrupt: an alert
    ids = {item["filename"]: item["id"] for item in json.loads(run_cli("upload", str(folder), "--json"))}
    # Error messages: an unknown database and an unreachable server, both with the password in the URL.
    for broken in (
        env["EXTRACTION_DATABASE_URL"].rsplit("/", 1)[0] + "/ep_no_such_database",
        env["EXTRACTION_DATABASE_URL"].replace(":5432/", ":1/"),
    ):
        failed = cli({**env, "EXTRACTION_DATABASE_URL": broken}, "list")
        assert failed.returncode != 0 and failed.stderr.strip()
        assert "Traceback" not in failed.stderr
        outputs.extend([failed.stdout, failed.stderr])

    log = tmp_path / "daemon.log"
    daemon = start_daemon(env, log)
    repository = CloudFileRepository.from_url(env["EXTRACTION_DATABASE_URL"])
    try:

        def finished() -> bool:
            states = {row.id: (row.extraction_status or {}).get("status") for row in repository.list_files()}
            return states == {ids["plan.pdf"]: "succeeded", ids["notes.pdf"]: "failed"}

        wait_for(finished, "both files to finish", daemon, log)
        # The alert sensor (run failure sensors tick every 30 s) posts to the webhook with its credentials.
        wait_for(lambda: received, "the webhook alert", daemon, log, timeout_s=120)
        expected = base64.b64encode(f"alerts:{secrets['webhook_password']}".encode()).decode()
        assert received[0]["authorization"] == f"Basic {expected}"
        assert received[0]["path"] == f"/hook?token={secrets['webhook_token']}"
        assert received[0]["body"]["files"][0]["id"] == ids["notes.pdf"]
        run_cli("list", "--json")
        run_cli("status", str(ids["notes.pdf"]), "--json", code=1)  # 1: the file's extraction failed
    finally:
        repository.dispose()
        stop_daemon(daemon)

    haystacks = {
        "app database rows": dump_database(env["EXTRACTION_DATABASE_URL"]),
        "Dagster database rows (runs, event log, ticks, ...)": dump_database(env["DAGSTER_POSTGRES_URL"]),
        "daemon, code server and run worker output": log.read_text(errors="replace"),
        "CLI output": "\n".join(outputs),
    }
    for home in (env["DAGSTER_HOME"], env["EXTRACTION_HOME"]):
        for path in Path(home).rglob("*"):
            if path.is_file():
                haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert (
        "ASSET_MATERIALIZATION" in haystacks["Dagster database rows (runs, event log, ticks, ...)"]
    )  # searched the right DB
    assert any("compute_logs" in key or key.endswith((".out", ".err")) for key in haystacks), list(haystacks)
    leaks = [
        (secret, where)
        for secret, value in secrets.items()
        for where, text in haystacks.items()
        if value in text
    ]
    assert leaks == []
