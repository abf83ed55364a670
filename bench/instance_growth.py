"""How much the Dagster instance database grows per file, measured on a real deployment.

A production-like deployment (``bench/deploy.py``: PostgreSQL for the app and for the instance, the
committed ``dagster.yaml``, the pipeline's daemon) extracts small generated PDFs (each one distinct)
two ways, and the size of every table of the instance database (``pg_total_relation_size``: rows,
indexes and TOAST) is read before and after each:

- **backfill**: ``--backfill-files`` files in one ``extraction-pipeline backfill`` (100 per run, the
  default batch);
- **sensor**: ``--sensor-files`` uploads picked up by the sensor, one run per file (what the host
  application's uploads cost).

Sensor ticks (``job_ticks``) are reported apart: their number depends on time, not on files, and
the retention in ``dagster.yaml`` bounds them. Figures are extrapolated linearly to 100k files.

    python3 bench/instance_growth.py            # about 3 minutes on 2 cores
    python3 bench/instance_growth.py --json
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python3 bench/instance_growth.py: put the repository root first on sys.path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench.common import log  # noqa: E402
from bench.deploy import Deployment, deployment, upload, wait_until_final  # noqa: E402

PER = 100_000
TICK_TABLES = ("job_ticks",)


def table_sizes(url: str) -> dict[str, int]:
    """Bytes of every table of the instance database, indexes and TOAST included."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind = 'r'"
                )
            ).all()
    finally:
        engine.dispose()
    return {name: int(size) for name, size in rows}


def row_count(url: str, table: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def make_files(folder: Path, count: int, prefix: str) -> list[Path]:
    """``count`` distinct one-page PDFs (distinct bytes: no two are the same upload)."""
    from extraction_pipeline.samples import pdf_bytes

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"{prefix}-{index}.pdf"
        path.write_bytes(pdf_bytes(1, text=f"{prefix} drawing {index}", outline=(), metadata=None))
        paths.append(path)
    return paths


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        name: after.get(name, 0) - before.get(name, 0)
        for name in sorted(after)
        if after.get(name, 0) != before.get(name, 0)
    }


def per_file(delta: dict[str, int], files: int) -> dict[str, Any]:
    files_bytes = sum(size for name, size in delta.items() if name not in TICK_TABLES)
    return {
        "files": files,
        "bytes_per_file": round(files_bytes / files),
        "mb_per_100k_files": round(files_bytes / files * PER / 1e6),
        "by_table_per_file": {
            name: round(size / files)
            for name, size in sorted(delta.items(), key=lambda kv: -kv[1])
            if name not in TICK_TABLES
        },
    }


def measure(deploy: Deployment, root: Path, backfill_files: int, sensor_files: int) -> dict[str, Any]:
    from extraction_pipeline.persistence.repository import CloudFileRepository

    url = deploy.dagster_url
    repository = CloudFileRepository.from_url(deploy.app_url)
    try:
        with deploy.instance():  # creates the instance's tables
            pass
        empty = table_sizes(url)
        result: dict[str, Any] = {"empty_instance_bytes": sum(empty.values())}

        # Backfill: rows first, then one backfill for all of them, then the daemon runs it.
        log(f"backfill: {backfill_files} files")
        historic = [
            upload(deploy, repository, path) for path in make_files(root / "historic", backfill_files, "h")
        ]
        before = table_sizes(url)
        launched = deploy.cli("backfill", "--all", "--json")
        if launched.returncode != 0:
            raise RuntimeError(f"backfill failed: {launched.stderr[-2000:]}")
        started = time.monotonic()
        deploy.start_daemon()
        ticks_before, tick_clock = row_count(url, "job_ticks"), time.monotonic()
        wait_until_final(deploy, repository, historic, 600, "backfill")
        after = table_sizes(url)
        result["backfill"] = per_file(growth(before, after), backfill_files)
        result["backfill"]["seconds"] = round(time.monotonic() - started, 1)

        log(f"sensor: {sensor_files} uploads")
        # Sensor: one upload at a time as the host application makes them, one run per file.
        before = after
        started = time.monotonic()
        uploads = [
            upload(deploy, repository, path) for path in make_files(root / "uploads", sensor_files, "u")
        ]
        wait_until_final(deploy, repository, uploads, 900, "sensor uploads")
        after = table_sizes(url)
        result["sensor"] = per_file(growth(before, after), sensor_files)
        result["sensor"]["seconds"] = round(time.monotonic() - started, 1)

        ticks = row_count(url, "job_ticks") - ticks_before
        elapsed = time.monotonic() - tick_clock
        tick_bytes = after.get("job_ticks", 0) - empty.get("job_ticks", 0)
        per_tick = tick_bytes / max(ticks, 1)
        per_day = ticks / elapsed * 86_400
        result["ticks"] = {
            "ticks": ticks,
            "seconds": round(elapsed, 1),
            "ticks_per_day": round(per_day),
            "bytes_per_tick": round(per_tick),
            # Nearly all ticks are "skipped", kept one day by dagster.yaml's retention.
            "mb_kept_with_one_day_retention": round(per_day * per_tick / 1e6, 1),
        }
        result["statuses"] = {
            status: sum(
                1 for row in repository.list_files() if (row.extraction_status or {}).get("status") == status
            )
            for status in ("succeeded", "failed")
        }
        return result
    finally:
        repository.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backfill-files", type=int, default=1000)
    parser.add_argument("--sensor-files", type=int, default=80)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    overrides = {"EXTRACTION_DOCTOR_AT_START": "0"}
    with (
        tempfile.TemporaryDirectory(prefix="ep-growth-") as folder,
        deployment(Path(folder), overrides) as deploy,
    ):
        try:
            result = measure(deploy, Path(folder), args.backfill_files, args.sensor_files)
        finally:
            deploy.stop_daemon()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for path in ("backfill", "sensor"):
        item = result[path]
        print(
            f"{path}: {item['files']} files in {item['seconds']} s, {item['bytes_per_file']} bytes per file "
            f"-> {item['mb_per_100k_files']} MB per 100k files; by table: {item['by_table_per_file']}"
        )
    ticks = result["ticks"]
    print(
        f"ticks: {ticks['ticks']} in {ticks['seconds']} s ({ticks['ticks_per_day']} a day), "
        f"{ticks['bytes_per_tick']} bytes each -> {ticks['mb_kept_with_one_day_retention']} MB kept "
        "with one day of retention"
    )
    print(f"files: {result['statuses']}; empty instance {result['empty_instance_bytes']} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
