"""Smoke test of bench/run.py: its cheap parts run end to end on real PostgreSQL.

No timing is asserted (the machine may be busy): the sensor tick on a small table queues what the
sensor would, the code location loads in a fresh interpreter, the partition status query answers,
and ``--json`` prints one object with every key of the performance table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import generate, report, run
from extraction_pipeline.settings import Settings
from extraction_pipeline_tests.conftest import require_postgres

pytestmark = pytest.mark.postgres

KEYS = {
    "extract_overhead_ratio",
    "backfill_files_per_s",
    "backfill_ratio_vs_raw",
    "latency_p50_s",
    "latency_p95_s",
    "sensor_tick_s_at_100k",
    "code_location_load_s",
    "extract_cold_ms",
    "worker_peak_rss_mb",
    "partitions_100k",
    "api_overhead_ratio",
    "api_upload_files_per_s",
    "api_status_p95_ms",
    "skipped_files_per_s",
    "dedupe_files_per_s",
    "burst_ratio_vs_raw",
    "latency_p95_during_burst_s",
    "text_overhead_ratio",
    "preview_ms_p50",
    "search_ms_at_100k",
}


def test_the_text_preview_and_search_steps_measure_on_the_tiny_plan(capfd, tmp_path: Path) -> None:
    require_postgres()
    status = run.main(
        ["--scale", "tiny", "--json", "--only", "text,preview,search", "--corpus", str(tmp_path / "none")]
    )
    assert status == 0
    result = json.loads(capfd.readouterr().out)
    assert "errors" not in result, result.get("errors")
    text = result["details"]["text"]
    assert result["text_overhead_ratio"] == text["median_ratio"] > 0
    assert {"pdf", "dxf", "ifc", "step"} <= set(text["per_format"])
    assert all(row["text_chars"] > 0 for row in text["per_format"].values())
    # Every generated PDF, DXF and STEP template gets its preview, and what it cost is reported.
    previews = result["details"]["preview"]
    assert result["preview_ms_p50"] == {fmt: row["p50_ms"] for fmt, row in previews.items()}
    for fmt in ("pdf", "dxf", "step"):
        assert previews[fmt]["with_preview"] == previews[fmt]["files"] > 0
        assert previews[fmt]["max_ms"] >= previews[fmt]["p50_ms"] >= 0
    search = result["details"]["search"]
    assert search["texts"] == 2000 and len(search["per_query_ms"]) == 20 and search["median_ms"] > 0
    assert search["hits"]["w1"] == 20  # the commonest word is in every text
    assert result["search_ms_at_100k"] is None  # 2,000 texts are not the key's 100k


def test_json_has_every_key_and_the_cheap_figures(capfd, tmp_path: Path) -> None:
    require_postgres()
    status = run.main(
        [
            "--quick",
            "--json",
            "--only",
            "sensor_tick,partitions,code_location,extract_cold",
            "--pending",
            "300",
            "--partitions",
            "1500",
            "--corpus",
            str(tmp_path / "none"),
        ]
    )
    assert status == 0
    result = json.loads(capfd.readouterr().out)  # exactly one JSON document on stdout (fd 1)
    assert result.keys() >= KEYS
    assert "errors" not in result, result.get("errors")
    assert result["failures"] == []
    # The measured ones have figures; the skipped steps are reported as null, not left out.
    assert result["sensor_tick_s_at_100k"] > 0
    assert result["code_location_load_s"] > 0
    assert result["extract_cold_ms"] > 0 and len(result["details"]["extract_cold"]["runs_ms"]) == 5
    assert result["targets_met"]["extract_cold_ms"] == (result["extract_cold_ms"] <= 800)
    assert result["partitions_100k"]["add_1k_s"] > 0 and result["partitions_100k"]["status_query_s"] > 0
    assert result["backfill_ratio_vs_raw"] is None and result["latency_p95_s"] is None
    assert result["api_overhead_ratio"] is None and "api" not in result["details"]
    assert result["burst_ratio_vs_raw"] is None and "burst" not in result["details"]
    # Each tick requested one run per file, at most the sensor's batch size.
    sensor = result["details"]["sensor"]
    assert sensor["runs_requested_per_tick"] == Settings.from_env({}).sensor_batch_size
    # Every registered partition and the 1k added on top of them.
    assert result["details"]["partitions"]["registered"] == 1500 + 1000
    assert isinstance(result["targets_met"]["sensor_tick_s_at_100k"], bool)


def test_a_file_the_project_fails_but_the_raw_library_reads_fails_the_run(
    capfd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The project's workers (fresh interpreters, they inherit the environment) import a stub OCP
    # that raises ImportError; this process, where the raw loop runs, keeps the real one.
    require_postgres()
    package = tmp_path / "stub" / "OCP"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('OCP made unimportable by the bench test')\n")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(tmp_path / "stub"), os.environ.get("PYTHONPATH")) if p)
    )
    status = run.main(
        ["--scale", "tiny", "--json", "--only", "extract_overhead", "--corpus", str(tmp_path / "none")]
    )
    captured = capfd.readouterr()
    assert status == 1
    result = json.loads(captured.out)
    assert len(result["failures"]) == 1, result["failures"]
    failure = result["failures"][0]
    assert failure.startswith("extract_overhead: step_2.step (step): the project failed (")
    assert "ImportError: OCP made unimportable by the bench test" in failure
    assert failure.endswith("but the raw library reads it")
    assert "step" not in result["details"]["extract_overhead"]["per_format"]
    assert result["targets_met"]["extract_overhead_ratio"] is False
    assert "bench FAILED" in captured.err and "step_2.step" in captured.err
    assert "FAILED: extract_overhead: step_2.step" in report.render_run(result)


def test_the_backfill_mix_follows_the_weights(tmp_path: Path) -> None:
    small, large = tmp_path / "small.pdf", tmp_path / "large.pdf"
    templates = [generate.Template(small, "pdf", 3), generate.Template(large, "pdf", 1)]
    mix = generate.backfill_mix(templates, 400)
    assert len(mix) == 400
    assert sum(1 for t in mix if t.path == small) == 300


def test_the_table_says_which_targets_hold() -> None:
    result = {key: None for key in KEYS}
    result.update(
        extract_overhead_ratio=1.1,
        latency_p95_s=12.0,
        api_overhead_ratio=2.5,
        api_status_p95_ms=40.0,
        partitions_100k={"add_1k_s": 0.05, "status_query_s": 1.2},
        burst_ratio_vs_raw=2.4,
        latency_p95_during_burst_s=6.5,
        details={"load_before": [0.1, 0.1, 0.1], "load_after": [0.2, 0.2, 0.2], "burst": BURST_DETAILS},
    )
    table = report.render_run(result)
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert rows["extract_overhead_ratio"].rstrip().endswith("yes")
    assert rows["latency_p95_s"].rstrip().endswith("NO")
    assert "status_query_s 1.2" in rows["partitions_100k"]
    assert rows["api_overhead_ratio"].rstrip().endswith("NO")
    assert "report" in rows["api_status_p95_ms"]
    assert rows["burst_ratio_vs_raw"].rstrip().endswith("NO")
    assert rows["latency_p95_during_burst_s"].rstrip().endswith("yes")
    assert (
        "burst: 300 files (1.5 MB) uploaded at once in 2.1 s, 48.0 s to the last final vs 20.0 s raw" in table
    )
    assert "6 single uploads every 5.0 s during a second burst" in table


BURST_DETAILS = {
    "files": 300,
    "succeeded": 300,
    "wall_s": 48.0,
    "upload_s": 2.1,
    "raw_before_s": 19.0,
    "raw_after_s": 21.0,
    "raw_s": 20.0,
    "runs": 3,
    "runs_of_backfills": 3,
    "backfills": 1,
    "bytes": 1_500_000,
    "singles": {"uploads": 6, "after_burst": 0, "pace_s": 5.0, "p50_s": 4.1, "p95_s": 6.5, "max_s": 6.6},
}


def test_the_burst_step_is_a_step_after_shortcuts_with_its_targets() -> None:
    assert run.STEPS.index("burst") == run.STEPS.index("shortcuts") + 1
    assert report.TARGETS["burst_ratio_vs_raw"] == ("<=", 1.5)
    assert report.TARGETS["latency_p95_during_burst_s"] == ("<=", 10.0)
    assert report.holds("burst_ratio_vs_raw", 1.4) and not report.holds("latency_p95_during_burst_s", 12.0)
    assert (run.PLANS["quick"].burst_files, run.PLANS["full"].burst_files) == (300, 1000)
    assert run.PLANS["quick"].burst_singles_pace_s == 5.0


def test_only_accepts_the_burst_step(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        run.main(["--only", "burst,no_such_step"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown steps: ['no_such_step']" in err  # burst is one of the steps


@pytest.mark.slow
def test_the_shortcuts_step_measures_skipped_and_deduplicated_uploads(capfd, tmp_path: Path) -> None:
    """Images end skipped and copies of a succeeded PDF deduplicated, through a real daemon."""
    require_postgres()
    status = run.main(
        ["--scale", "tiny", "--json", "--only", "shortcuts", "--corpus", str(tmp_path / "none")]
    )
    result = json.loads(capfd.readouterr().out)
    assert status == 0, result.get("failures") or result.get("errors")
    assert result["skipped_files_per_s"] > 0 and result["dedupe_files_per_s"] > 0
    shortcuts = result["details"]["shortcuts"]
    assert shortcuts["skipped"]["files"] == shortcuts["dedupe"]["files"] == run.PLANS["tiny"].shortcut_files
    assert result["extract_overhead_ratio"] is None  # the other steps did not run
