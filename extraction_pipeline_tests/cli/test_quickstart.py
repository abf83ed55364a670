"""The quick start's preparation: schema, generated samples that every extractor reads, an instance."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from extraction_pipeline.cli.quickstart import prepare_quickstart
from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.persistence.repository import CloudFileRepository
from extraction_pipeline.samples import write_samples
from extraction_pipeline.settings import Settings


def test_every_generated_sample_extracts_successfully(tmp_path: Path) -> None:
    paths = write_samples(tmp_path)
    envelopes = {p.name: extract_file(p) for p in paths}
    assert {e.format for e in envelopes.values()} == {"pdf", "dxf", "dwg", "ifc", "step"}
    assert all(e.status == "succeeded" for e in envelopes.values()), {
        n: e.error for n, e in envelopes.items()
    }
    assert envelopes["specification.pdf"].metadata["page_count"] == 2
    assert envelopes["plant-room.dxf"].metadata["title_block_attributes"]["SHEET"] == "A-101"
    assert [
        s["name"] if isinstance(s, dict) else s for s in envelopes["building.ifc"].metadata["storeys"]
    ] == [
        "Ground floor",
        "First floor",
    ]
    assert envelopes["bracket.step"].metadata["solid_count"] == 1
    drawing = envelopes["plant-room.dwg"].metadata
    assert (drawing["dwg_version"], drawing["content_readable"]) == ("AC1015", True)
    assert {"WALLS", "EQUIPMENT", "TITLE"} <= set(drawing["layer_names"])
    assert drawing["entity_counts"] == {"LINE": 4, "CIRCLE": 1, "TEXT": 1}


def test_prepare_uploads_samples_once_and_writes_an_embedded_instance(
    extraction_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = Settings.from_env()
    dagster_home = prepare_quickstart(settings, samples=True)
    assert dagster_home == extraction_env / "dagster"
    config = yaml.safe_load((dagster_home / "dagster.yaml").read_text())
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert "storage" not in config  # SQLite inside DAGSTER_HOME, nothing to configure

    repository = CloudFileRepository.from_url(settings.database_url)
    try:
        names = sorted(row.filename for row in repository.list_files())
        assert names == [
            "bracket.step",
            "building.ifc",
            "plant-room.dwg",
            "plant-room.dxf",
            "specification.pdf",
        ]
        prepare_quickstart(settings, samples=True)  # a second start uploads nothing more
        assert repository.count_files() == 5  # one sample per format
    finally:
        repository.dispose()


def test_supervise_stops_the_other_child_when_one_ends(capfd: pytest.CaptureFixture[str]) -> None:
    import os
    import sys
    import uuid

    import psutil

    from extraction_pipeline.cli.quickstart import supervise

    marker = f"still-running-{uuid.uuid4().hex}"
    commands = {
        "webserver": [sys.executable, "-c", "import sys; sys.exit(3)"],
        "daemon": [sys.executable, "-c", f"import time; time.sleep(120)  # {marker}"],
    }
    assert supervise(commands, dict(os.environ), grace_s=10) == 1
    assert "error: the webserver stopped (exit code 3); stopping" in capfd.readouterr().err
    left = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    assert left == []
