"""Smoke test of bench/extract_overhead.py: it runs end to end and reports sensible figures.

No timing is asserted (the machine may be busy); only that the benchmark produces its JSON keys,
positive numbers, and that its raw loops read the same facts as the project's extractors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import extract_overhead, generate, overhead, raw, report
from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline_tests.corpus import CORPUS_DIR


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("bench")
    files = generate.generate_files(folder, "tiny")
    dwg = CORPUS_DIR / "dwg" / "sample_2000.dwg"
    if dwg.is_file():
        files.append(dwg)
    return files


def test_json_output_has_the_figures(tiny_files: list[Path], capsys, tmp_path: Path) -> None:
    # The CLI with no corpus, tiny generated files and a single pass.
    status = extract_overhead.main(
        ["--json", "--scale", "tiny", "--repeat", "1", "--corpus", str(tmp_path / "none")]
    )
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert {"per_format", "median_ratio", "worker_peak_rss_mb"} <= result.keys()
    # Every generated file (one per format) is measured.
    assert result["per_format"].keys() == {"pdf", "dxf", "ifc", "step"}
    assert result["skipped"] == [] and result["failures"] == []
    assert sum(row["files"] for row in result["per_format"].values()) == len(generate.GENERATORS)
    for row in result["per_format"].values():
        assert row["project_ms"] > 0 and row["raw_ms"] > 0 and row["ratio"] > 0
    assert result["median_ratio"] > 0
    assert result["worker_peak_rss_mb"] > 10  # a worker with the libraries loaded
    # The one-shot CLI in fresh processes: the console script of this environment, 5 timed runs.
    cold = result["extract_cold"]
    assert result["extract_cold_ms"] == cold["median_ms"] > 0
    assert len(cold["runs_ms"]) == 5 and all(ms > 0 for ms in cold["runs_ms"])
    assert Path(cold["script"]) == Path(sys.executable).parent / "extraction-pipeline"
    assert cold["target_ms"] == 800 and cold["target_met"] == (cold["median_ms"] <= 800)


def test_measure_counts_a_corpus_dwg(tiny_files: list[Path]) -> None:
    dwg = [path for path in tiny_files if path.suffix == ".dwg"]
    if not dwg:
        pytest.skip(f"no corpus at {CORPUS_DIR}")
    result = overhead.measure(dwg, repeat=1)
    assert result["per_format"]["dwg"]["files"] == 1
    assert result["per_format"]["dwg"]["raw_ms"] > 0
    assert report.render_overhead(result).startswith("format")


def test_raw_loops_read_the_facts_the_project_reports(tiny_files: list[Path]) -> None:
    shared = {
        "pdf": ("page_count", "text_chars", "pages_without_text", "image_count", "annotation_count"),
        "dxf": ("entity_counts", "text_count", "layout_names", "recovered"),
        "dwg": ("dwg_version", "layer_names", "entity_counts"),
        "ifc": (
            "schema",
            "project_name",
            "sites",
            "buildings",
            "storeys",
            "element_counts",
            "property_set_count",
        ),
        "step": ("solid_count", "face_count", "edge_count"),
    }
    compared = set()
    for path in tiny_files:
        envelope = extract_file(path)
        assert envelope.succeeded, (path.name, envelope.error)
        facts = raw.RAW_EXTRACTORS[envelope.format](path)
        for key in shared[envelope.format]:
            assert facts[key] == envelope.metadata[key], (path.name, key)
        compared.add(envelope.format)
    dwg = {"dwg"} if (CORPUS_DIR / "dwg" / "sample_2000.dwg").is_file() else set()
    assert compared == {"pdf", "dxf", "ifc", "step"} | dwg
