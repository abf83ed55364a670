"""Environment -> typed settings. Every knob of the project is read here and nowhere else."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(
    env: dict[str, str], name: str, default: float, minimum: float = 0.0, maximum: float | None = None
) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1/true/yes/on or 0/false/no/off, got {raw!r}")


def normalize_database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg2, which is what we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_url: str
    # Upload and extraction limits.
    max_file_bytes: int
    extraction_timeout_s: float
    extraction_memory_bytes: int
    extraction_workers: int
    # Orchestration. The sensor daemon wakes every 5 s (fixed in Dagster); a minimum interval of
    # 5 s too made it skip every other wake-up (ticks 5 or 10 s apart, measured by bench/run.py),
    # so the default is 1 s: a tick on every wake-up.
    sensor_interval_s: int
    sensor_batch_size: int
    retry_delay_s: float
    max_retries: int
    notify_webhook_url: str | None
    # Partitions per run of a batched backfill (BackfillPolicy.multi_run), chosen with bench/run.py
    # on 2 cores (300 mixed files; the runs' wall time over the raw library loop): 25 -> 12 runs,
    # 50 -> 1.7x, 100 -> 1.26x. Each run pays a process launch and the worker's cold library imports.
    backfill_batch_size: int
    # A file queued this long without a run is requested again (same run_key) by the sensor.
    requeue_grace_s: int
    # How often `extraction-pipeline daemon` looks for new backfills. Dagster's own backfill daemon
    # looks every 30 s (fixed), which was 28.7 of a 300-file backfill's 44.6 s (bench/run.py --quick).
    backfill_poll_s: float
    # `extraction-pipeline daemon` runs `doctor` before it starts (quickstart runs it once for both).
    doctor_at_start: bool

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("EXTRACTION_HOME") or ".extraction").expanduser().resolve()
        database_url = env.get("EXTRACTION_DATABASE_URL") or f"sqlite:///{home / 'extraction.db'}"
        storage_url = env.get("EXTRACTION_STORAGE_URL") or (home / "blobs").as_uri()
        return cls(
            home=home,
            database_url=normalize_database_url(database_url),
            storage_url=storage_url,
            max_file_bytes=_int(env, "EXTRACTION_MAX_FILE_MB", 512, minimum=1) * MIB,
            extraction_timeout_s=_float(env, "EXTRACTION_TIMEOUT_S", 120.0, minimum=0.1),
            extraction_memory_bytes=_int(env, "EXTRACTION_MEMORY_LIMIT_MB", 2048, minimum=64) * MIB,
            extraction_workers=_int(env, "EXTRACTION_WORKERS", 1, minimum=1),
            sensor_interval_s=_int(env, "EXTRACTION_SENSOR_INTERVAL_S", 1, minimum=1),
            sensor_batch_size=_int(env, "EXTRACTION_SENSOR_BATCH_SIZE", 50, minimum=1),
            retry_delay_s=_float(env, "EXTRACTION_RETRY_DELAY_S", 30.0, minimum=0.0),
            max_retries=_int(env, "EXTRACTION_MAX_RETRIES", 3, minimum=0),
            notify_webhook_url=env.get("EXTRACTION_NOTIFY_WEBHOOK_URL") or None,
            backfill_batch_size=_int(env, "EXTRACTION_BACKFILL_BATCH_SIZE", 100, minimum=1),
            requeue_grace_s=_int(env, "EXTRACTION_REQUEUE_GRACE_S", 300, minimum=1),
            backfill_poll_s=_float(env, "EXTRACTION_BACKFILL_POLL_S", 2.0, minimum=0.5, maximum=30.0),
            doctor_at_start=_bool(env, "EXTRACTION_DOCTOR_AT_START", True),
        )

    @property
    def is_embedded(self) -> bool:
        return self.database_url.startswith("sqlite")
