"""A burst of uploads under the pipeline's daemon on PostgreSQL: 30 files dropped at once are
extracted by one backfill of multi-file runs (not a run each), and an upload made right after
still gets a run of its own (backfill runs leave it a run slot)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.samples import write_pdf
from extraction_pipeline_tests.e2e.conftest import cli, fresh_deployment, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BURST = 30


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_deployment(tmp_path, "ep_burst") as env:
        env["EXTRACTION_BACKFILL_BATCH_SIZE"] = "10"  # 30 files: 3 runs
        assert cli(env, "db", "upgrade").returncode == 0
        yield env


def test_a_dropped_folder_is_extracted_in_batches_and_a_single_upload_keeps_its_own_run(
    deployment: dict[str, str],
    daemon: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "dropped"
    folder.mkdir()
    paths = [write_pdf(folder / f"sheet_{n:02d}.pdf", pages=1, text=f"sheet {n}") for n in range(BURST)]
    done = cli(deployment, "upload", *map(str, paths), "--json")  # one command: one commit per file
    assert done.returncode == 0, done.stderr
    burst_ids = sorted(item["id"] for item in json.loads(done.stdout))
    repository = CloudFileRepository.from_url(deployment["EXTRACTION_DATABASE_URL"])
    log = tmp_path / "daemon.log"

    def statuses() -> dict[int, dict]:
        return {row.id: row.extraction_status or {} for row in repository.list_files(ids=burst_ids)}

    # Once the sensor has taken the whole burst (none of its files pending), one more upload.
    wait_for(lambda: all(statuses().values()), "the sensor to take the burst", daemon, log, interval_s=0.2)
    single_path = write_pdf(tmp_path / "single.pdf", pages=1, text="one more")
    single = cli(deployment, "upload", str(single_path), "--json")
    assert single.returncode == 0, single.stderr
    [single_id] = [item["id"] for item in json.loads(single.stdout)]

    def all_final() -> dict[int, dict] | None:
        states = {
            row.id: row.extraction_status or {} for row in repository.list_files(ids=[*burst_ids, single_id])
        }
        finished = all(
            s.get("status") in ("succeeded", "failed", "skipped", "cancelled") for s in states.values()
        )
        return states if finished else None

    try:
        states = wait_for(all_final, "the burst and the single upload to finish", daemon, log)
    finally:
        repository.dispose()
    assert {file_id: s["status"] for file_id, s in states.items()} == dict.fromkeys(
        [*burst_ids, single_id], "succeeded"
    )
    assert all(s["format"] == "pdf" for s in states.values())

    monkeypatch.setenv("DAGSTER_POSTGRES_URL", deployment["DAGSTER_POSTGRES_URL"])
    with dg.DagsterInstance.from_config(deployment["DAGSTER_HOME"]) as instance:
        backfills = instance.get_backfills()
        runs = instance.get_runs()
        burst_runs = {states[i]["run_id"] for i in burst_ids}
        single_run = instance.get_run_by_id(states[single_id]["run_id"])
        burst_logs = [entry.user_message for run_id in burst_runs for entry in instance.all_logs(run_id)]
        single_logs = [entry.user_message for entry in instance.all_logs(states[single_id]["run_id"])]
    # The burst: a few backfills (the CLI commits the rows one by one, so a sensor tick may fall
    # inside the upload and take part of them) and a few runs, not one run per file.
    assert 1 <= len(backfills) <= 3, [b.title for b in backfills]
    assert all("uploads at once" in (b.title or "") for b in backfills)
    assert len(burst_runs) <= 6, f"{len(burst_runs)} runs for {BURST} files"
    in_backfills = {r.run_id for r in runs if r.run_id in burst_runs and r.tags.get("dagster/backfill")}
    assert sum(states[i]["run_id"] in in_backfills for i in burst_ids) >= BURST - 10
    # The single upload: a run of its own, not part of a backfill.
    assert single_run is not None and single_run.tags.get("dagster/partition") == str(single_id)
    assert "dagster/backfill" not in single_run.tags
    # The burst's runs yield the CPU to the single upload's run.
    lowered = "CPU priority lowered to niceness 10"
    assert sum(lowered in message for message in burst_logs) == len(in_backfills), burst_logs[:20]
    assert not any(lowered in message for message in single_logs)
