"""Every PostgreSQL URL form the contract allows works, for the app database and the Dagster instance.

``postgresql://`` (what users write, and what the README's Production section shows),
``postgresql+psycopg2://`` and ``postgresql+psycopg://``. SQLAlchemy 2.1 maps the plain form to
psycopg 3, with which dagster-postgres 0.29 cannot store an event (its NOTIFY takes a server-side
parameter): the committed dagster.yaml therefore names ``orchestration.instance_storage``. The
end-to-end form of this (plain URLs, plain ``dagster-daemon run``, the whole corpus) is
e2e/test_corpus_daemon.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from extraction_pipeline.orchestration.instance_storage import psycopg2_url
from extraction_pipeline_tests.conftest import create_pg_database, drop_pg_database, require_postgres
from extraction_pipeline_tests.orchestration.conftest import App, _app, make_pdf, run

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
FORMS = ["postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"]


def in_form(url: str, form: str) -> str:
    assert url.startswith("postgresql+psycopg2://"), url
    return form + url[len("postgresql+psycopg2://") :]


@pytest.fixture
def pg_database() -> Iterator[str]:
    require_postgres()
    url = create_pg_database("ep_forms")
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("form", FORMS)
def test_the_app_database_works_through_every_url_form(
    form: str, pg_database: str, tmp_path: Path
) -> None:
    url = in_form(pg_database, form)
    apps = _app(url, tmp_path)
    app: App = next(apps)
    try:
        file_id = app.upload("plan.pdf", make_pdf(pages=2))
        with dg.instance_for_test() as instance:
            result = run(app, instance, [file_id])
        assert result.success
        status = app.status(file_id)
        assert (status["status"], status["format"]) == ("succeeded", "pdf")
        stored = app.repository.metadata_for(file_id)
        assert stored is not None and stored.metadata_["page_count"] == 2
    finally:
        apps.close()


def _production_instance(home: Path) -> dg.DagsterInstance:
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")  # the committed production file
    return dg.DagsterInstance.from_config(str(home))


@dg.asset
def probe() -> int:
    return 1


@pytest.mark.parametrize("form", FORMS)
def test_the_production_instance_works_through_every_url_form(
    form: str, pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", in_form(pg_database, form))
    instance = _production_instance(tmp_path / "dagster_home")
    try:
        # A run stores events, and storing an event is what failed with psycopg 3.
        result = dg.materialize([probe], instance=instance)
        assert result.success
        assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    finally:
        instance.dispose()


def test_dagster_postgres_alone_still_fails_on_a_plain_url(pg_database: str, tmp_path: Path) -> None:
    """Why the committed dagster.yaml names its own storage class.

    If this starts to pass after an upgrade of dagster-postgres or SQLAlchemy, the adapter in
    orchestration/instance_storage.py may go: dagster.yaml can then use ``storage: postgres``.
    """
    home = tmp_path / "plain_home"
    home.mkdir()
    config = {"storage": {"postgres": {"postgres_url": in_form(pg_database, "postgresql://")}}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        with pytest.raises(Exception, match=r"syntax error"):
            dg.materialize([probe], instance=instance)
    finally:
        instance.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg2://u:p@h:5432/d"),
        ("postgres://u@h/d?sslmode=require", "postgresql+psycopg2://u@h/d?sslmode=require"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_the_instance_always_connects_through_psycopg2(given: str, expected: str) -> None:
    assert psycopg2_url(given) == expected
