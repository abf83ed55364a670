"""Smoke test of bench/api.py: a real ``serve``, real HTTP, a few tiny files, one-second load phases.

No timing is asserted (the machine may be busy): the three figures exist, every upload and status
read was answered as expected, and ``run.py --only api`` puts them into its one JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import api, run
from extraction_pipeline_tests.conftest import require_postgres


def tiny_corpus(folder: Path) -> Path:
    """Upload only stores bytes (nothing is extracted), so any non-empty files do; plus the
    JSON and Markdown beside the format folders, which are left out."""
    for fmt, name, size in (("pdf", "a.pdf", 3000), ("dxf", "b.dxf", 40), ("step", "c.step", 70_000)):
        (folder / fmt).mkdir(parents=True)
        (folder / fmt / name).write_bytes(bytes(range(256)) * (size // 256) + b"x")
    (folder / "expected.json").write_text("{}")
    (folder / "README.md").write_text("corpus")
    return folder


def test_the_figures_on_sqlite(tmp_path: Path) -> None:
    result = api.measure_api(tiny_corpus(tmp_path / "corpus"), "tiny", clients=4, log=lambda _: None)
    assert result["failures"] == []
    details = result["details"]
    assert details["backend"] == "sqlite" and details["files"] == 3
    assert result["api_overhead_ratio"] > 0 and details["overhead"]["ratio_vs_in_process"] > 0
    assert len(details["overhead"]["cli_runs_s"]) == 1
    assert result["api_upload_files_per_s"] > 0 and details["uploads"]["uploads"] > 0
    assert result["api_status_p95_ms"] > 0 and details["status"]["reads"] > 0
    assert "ids" not in details["overhead"]
    assert "3 corpus files" in api.render(result)


def test_no_corpus_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no corpus files"):
        api.measure_api(tmp_path, "tiny", log=lambda _: None)


@pytest.mark.postgres
def test_run_only_api_on_postgresql(capfd, tmp_path: Path) -> None:
    require_postgres()
    corpus = tiny_corpus(tmp_path / "corpus")
    status = run.main(["--scale", "tiny", "--json", "--only", "api", "--corpus", str(corpus)])
    result = json.loads(capfd.readouterr().out)  # exactly one JSON document on stdout (fd 1)
    assert status == 0, result.get("errors") or result["failures"]
    assert result["details"]["api"]["backend"] == "postgresql"
    assert result["api_upload_files_per_s"] > 0 and result["api_status_p95_ms"] > 0
    assert result["targets_met"]["api_overhead_ratio"] == (result["api_overhead_ratio"] <= 2.0)
    assert result["targets"]["api_overhead_ratio"] == "<= 2.0"
    assert result["sensor_tick_s_at_100k"] is None
