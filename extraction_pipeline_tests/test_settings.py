"""Settings: defaults, bounds, one line for every bad variable, no secret in it, read once per resource."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.settings import MIB, Settings, SettingsError, normalize_database_url

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULTS = {
    "max_file_bytes": 512 * MIB,
    "extraction_timeout_s": 120.0,
    "extraction_memory_bytes": 2048 * MIB,
    "extraction_workers": 1,
    "sensor_interval_s": 1,
    "sensor_batch_size": 50,
    "retry_delay_s": 30.0,
    "max_retries": 3,
    "notify_webhook_url": None,
    "backfill_batch_size": 100,
    "requeue_grace_s": 300,
    "backfill_poll_s": 2.0,
    "doctor_at_start": True,
}

# variable, attribute, a value in bounds, that value on the object (MiB become bytes)
NUMBERS = [
    ("EXTRACTION_MAX_FILE_MB", "max_file_bytes", "20", 20 * MIB),
    ("EXTRACTION_TIMEOUT_S", "extraction_timeout_s", "7.5", 7.5),
    ("EXTRACTION_MEMORY_LIMIT_MB", "extraction_memory_bytes", "100", 100 * MIB),
    ("EXTRACTION_WORKERS", "extraction_workers", "3", 3),
    ("EXTRACTION_SENSOR_INTERVAL_S", "sensor_interval_s", "10", 10),
    ("EXTRACTION_SENSOR_BATCH_SIZE", "sensor_batch_size", "20", 20),
    ("EXTRACTION_RETRY_DELAY_S", "retry_delay_s", "2", 2.0),
    ("EXTRACTION_MAX_RETRIES", "max_retries", "7", 7),
    ("EXTRACTION_BACKFILL_BATCH_SIZE", "backfill_batch_size", "25", 25),
    ("EXTRACTION_REQUEUE_GRACE_S", "requeue_grace_s", "60", 60),
    ("EXTRACTION_BACKFILL_POLL_S", "backfill_poll_s", "0.75", 0.75),
]

# variable, lowest value accepted, the value just under it, expected message
LOWER_BOUNDS = [
    ("EXTRACTION_MAX_FILE_MB", "1", "0", "an integer >= 1"),
    ("EXTRACTION_TIMEOUT_S", "0.1", "0.09", "a finite number >= 0.1"),
    ("EXTRACTION_MEMORY_LIMIT_MB", "64", "63", "an integer >= 64"),
    ("EXTRACTION_WORKERS", "1", "0", "an integer >= 1"),
    ("EXTRACTION_SENSOR_INTERVAL_S", "1", "0", "an integer >= 1"),
    ("EXTRACTION_SENSOR_BATCH_SIZE", "1", "0", "an integer >= 1"),
    ("EXTRACTION_RETRY_DELAY_S", "0", "-0.5", "a finite number >= 0"),
    ("EXTRACTION_MAX_RETRIES", "0", "-1", "an integer >= 0"),
    ("EXTRACTION_BACKFILL_BATCH_SIZE", "1", "0", "an integer >= 1"),
    ("EXTRACTION_REQUEUE_GRACE_S", "1", "0", "an integer >= 1"),
    ("EXTRACTION_BACKFILL_POLL_S", "0.5", "0.49", "a finite number from 0.5 to 30"),
]

PASSWORD = "hunter2-s3cret"


def bad(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    return str(caught.value)


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    home = tmp_path.resolve() / ".extraction"
    assert settings.home == home and isinstance(settings.home, Path)
    assert settings.database_url == f"sqlite:///{home / 'extraction.db'}"
    assert settings.storage_url == (home / "blobs").as_uri()
    assert settings.is_embedded
    for name, value in DEFAULTS.items():
        got = getattr(settings, name)
        assert got == value and type(got) is type(value), name


def test_empty_or_blank_means_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = [n for n, *_ in NUMBERS] + [
        "EXTRACTION_HOME",
        "EXTRACTION_DATABASE_URL",
        "EXTRACTION_STORAGE_URL",
        "EXTRACTION_NOTIFY_WEBHOOK_URL",
        "EXTRACTION_DOCTOR_AT_START",
        "EXTRACTION_API_TOKEN",
        "EXTRACTION_DEDUPLICATE",
    ]
    for blank in ("", "   "):
        assert Settings.from_env(dict.fromkeys(names, blank)) == Settings.from_env({})


@pytest.mark.parametrize(("name", "attribute", "raw", "expected"), NUMBERS)
def test_each_variable_reaches_its_attribute_in_its_unit(
    name: str, attribute: str, raw: str, expected: object
) -> None:
    value = getattr(Settings.from_env({name: f" {raw} "}), attribute)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("name", "lowest", "under", "expected"), LOWER_BOUNDS)
def test_each_lower_bound(name: str, lowest: str, under: str, expected: str) -> None:
    Settings.from_env({name: lowest})
    assert bad({name: under}) == f"bad settings: {name} must be {expected}, got {under!r}"


def test_backfill_poll_upper_bound() -> None:
    assert Settings.from_env({"EXTRACTION_BACKFILL_POLL_S": "30"}).backfill_poll_s == 30.0
    assert bad({"EXTRACTION_BACKFILL_POLL_S": "30.01"}) == (
        "bad settings: EXTRACTION_BACKFILL_POLL_S must be a finite number from 0.5 to 30, got '30.01'"
    )


@pytest.mark.parametrize(
    "name", ["EXTRACTION_TIMEOUT_S", "EXTRACTION_RETRY_DELAY_S", "EXTRACTION_BACKFILL_POLL_S"]
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "soon"])
def test_numbers_are_finite(name: str, value: str) -> None:
    assert bad({name: value}).startswith(f"bad settings: {name} must be a finite number")


@pytest.mark.parametrize("value", ["x", "1.5", "0x10", "nan"])
def test_integers(value: str) -> None:
    assert bad({"EXTRACTION_WORKERS": value}) == (
        f"bad settings: EXTRACTION_WORKERS must be an integer >= 1, got {value!r}"
    )


def test_doctor_at_start_words() -> None:
    for word in ("1", "true", "Yes", " ON "):
        assert Settings.from_env({"EXTRACTION_DOCTOR_AT_START": word}).doctor_at_start is True
    for word in ("0", "false", "NO", "off"):
        assert Settings.from_env({"EXTRACTION_DOCTOR_AT_START": word}).doctor_at_start is False
    for word in ("t", "y", "2", "maybe"):
        assert bad({"EXTRACTION_DOCTOR_AT_START": word}) == (
            "bad settings: EXTRACTION_DOCTOR_AT_START must be one of 1/true/yes/on or 0/false/no/off, "
            f"got {word!r}"
        )


def test_every_bad_variable_in_one_line() -> None:
    message = bad(
        {
            "EXTRACTION_WORKERS": "x",
            "EXTRACTION_TIMEOUT_S": "nan",
            "EXTRACTION_MAX_RETRIES": "3",  # fine: not mentioned
            "EXTRACTION_BACKFILL_POLL_S": "31",
            "EXTRACTION_MAX_FILE_MB": "y" * 200,
        }
    )
    assert message == (
        "bad settings: EXTRACTION_MAX_FILE_MB must be an integer >= 1, got '" + "y" * 40 + "...'; "
        "EXTRACTION_TIMEOUT_S must be a finite number >= 0.1, got 'nan'; "
        "EXTRACTION_WORKERS must be an integer >= 1, got 'x'; "
        "EXTRACTION_BACKFILL_POLL_S must be a finite number from 0.5 to 30, got '31'"
    )
    assert "\n" not in bad({"EXTRACTION_WORKERS": "1\n2", "EXTRACTION_TIMEOUT_S": "a\nb"})


def test_secrets_are_never_in_an_error() -> None:
    environ = {
        "EXTRACTION_DATABASE_URL": f"postgresql://extraction:{PASSWORD}@db.internal/extraction",
        "EXTRACTION_STORAGE_URL": f"s3://key:{PASSWORD}@bucket/blobs",
        "EXTRACTION_NOTIFY_WEBHOOK_URL": f"https://hooks.example/{PASSWORD}",
        "EXTRACTION_WORKERS": "many",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    error = caught.value
    assert isinstance(error, ValueError)
    assert str(error) == "bad settings: EXTRACTION_WORKERS must be an integer >= 1, got 'many'"
    assert PASSWORD not in repr(error) and PASSWORD not in str(error.args)
    # Nothing chained behind it that could repeat the input.
    assert error.__cause__ is None and error.__context__ is None
    # Good values: the settings hold the URLs as given (normalized), of course.
    settings = Settings.from_env({k: v for k, v in environ.items() if k.endswith("_URL")})
    assert settings.database_url == f"postgresql+psycopg2://extraction:{PASSWORD}@db.internal/extraction"
    assert not settings.is_embedded


def test_home_urls_and_normalization(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"EXTRACTION_HOME": "data/here"})
    assert settings.home == tmp_path.resolve() / "data" / "here"
    assert settings.database_url == f"sqlite:///{settings.home / 'extraction.db'}"
    assert settings.storage_url == (settings.home / "blobs").as_uri()
    given = Settings.from_env(
        {"EXTRACTION_DATABASE_URL": "postgres://u@h/d", "EXTRACTION_STORAGE_URL": "file:///srv/blobs"}
    )
    assert given.database_url == "postgresql+psycopg2://u@h/d" and given.storage_url == "file:///srv/blobs"
    assert normalize_database_url("postgresql://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_only_the_given_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("EXTRACTION_WORKERS=7\n")  # a .env file is never read
    monkeypatch.setenv("EXTRACTION_WORKERS", "5")
    monkeypatch.setenv("extraction_max_retries", "9")  # names are exact: no case folding
    assert Settings.from_env({}).extraction_workers == 1
    assert Settings.from_env().extraction_workers == 5
    assert Settings.from_env().max_retries == 3


def test_settings_are_immutable() -> None:
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_retries = 0  # type: ignore[misc]
    changed = dataclasses.replace(settings, max_retries=0)
    assert (changed.max_retries, settings.max_retries) == (0, 3)


def test_resource_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = Settings.from_env.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Settings], environ: dict[str, str] | None = None) -> Settings:
        calls.append(environ)
        return original(cls, environ)

    monkeypatch.setattr(Settings, "from_env", classmethod(counting))
    monkeypatch.setenv("EXTRACTION_MAX_RETRIES", "5")
    monkeypatch.setenv("EXTRACTION_SENSOR_BATCH_SIZE", "7")
    resource = ExtractionResource(database_url="postgres://u@h/d", retry_delay_s=0.0)
    first = resource.settings
    monkeypatch.setenv("EXTRACTION_SENSOR_BATCH_SIZE", "8")
    for _ in range(3):
        assert resource.settings is first
    assert len(calls) == 1
    assert (first.sensor_batch_size, first.max_retries, first.retry_delay_s) == (7, 5, 0.0)
    assert first.database_url == "postgresql+psycopg2://u@h/d"  # the field wins over the environment
    # Another instance (Dagster builds one per run) reads the environment as it is then.
    assert ExtractionResource(max_retries=1).settings.sensor_batch_size == 8
    assert ExtractionResource(max_retries=1).settings.max_retries == 1
    assert len(calls) == 3


def test_each_dagster_run_reads_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    @dg.asset
    def probe(extraction: ExtractionResource) -> None:
        seen.extend([extraction.settings.sensor_batch_size, extraction.settings is extraction.settings])

    resource = ExtractionResource(isolated=False)
    for size in ("7", "8"):
        monkeypatch.setenv("EXTRACTION_SENSOR_BATCH_SIZE", size)
        assert dg.materialize([probe], resources={"extraction": resource}).success
    assert seen == [7, True, 8, True]


def test_resource_reports_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACTION_WORKERS", "0")
    with pytest.raises(SettingsError, match="EXTRACTION_WORKERS must be an integer >= 1, got '0'"):
        ExtractionResource().settings  # noqa: B018


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_HOME"))}
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", *args],
        env={**environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_reports_every_bad_variable_in_one_line_and_exits_2() -> None:
    result = cli(
        "list",
        EXTRACTION_TIMEOUT_S="nan",
        EXTRACTION_WORKERS="x",
        EXTRACTION_DATABASE_URL=f"postgresql://extraction:{PASSWORD}@127.0.0.1:1/extraction",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: bad settings: EXTRACTION_TIMEOUT_S must be a finite number >= 0.1, got 'nan'; "
        "EXTRACTION_WORKERS must be an integer >= 1, got 'x'\n"
    )
    result = cli(
        "db", "upgrade", EXTRACTION_DATABASE_URL=f"postgresql://u:{PASSWORD}@h/d", EXTRACTION_MAX_RETRIES="-1"
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert PASSWORD not in result.stderr + result.stdout


def test_the_api_token_is_read_once_and_never_shown() -> None:
    settings = Settings.from_env({"EXTRACTION_API_TOKEN": "s3cret-token"})
    assert settings.api_token == "s3cret-token"
    assert "s3cret-token" not in repr(settings)
    assert Settings.from_env({}).api_token is None
