"""The acceptance check of ../shared/corpus, run the way a user runs it: `extraction-pipeline extract --json`.

Every file, plus a copy with no extension and one with a `.txt` extension, goes through one CLI call
(one warm worker). The rules are those of the corpus README.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from extraction_pipeline.extraction.formats import dwg, dxf, ifc, pdf, step
from extraction_pipeline_tests.corpus import CORPUS_DIR, corpus_entries, corpus_params, mismatches

ENVELOPE_KEYS = {
    "file",
    "format",
    "variant",
    "extension_matches",
    "status",
    "extractor",
    "warnings",
    "error",
    "metadata",
    "duration_ms",
}
METADATA_MODELS = {
    "pdf": pdf.PdfMetadata,
    "dxf": dxf.DxfMetadata,
    "dwg": dwg.DwgMetadata,
    "ifc": ifc.IfcMetadata,
    "step": step.StepMetadata,
}


def required_keys(fmt: str) -> set[str]:
    model = METADATA_MODELS[fmt]
    return {field.alias or name for name, field in model.model_fields.items()}


def run_extract(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", "extract", "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def envelopes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """file -> {"original": envelope, "noext": envelope, "txt": envelope}, from one CLI call."""
    entries = corpus_entries()
    if not entries:
        pytest.skip(f"no corpus at {CORPUS_DIR}")
    copies = tmp_path_factory.mktemp("renamed")
    paths: list[Path] = []
    for index, entry in enumerate(entries):
        source = CORPUS_DIR / entry["file"]
        stem = f"{index:02d}_{Path(entry['file']).stem}"
        noext, txt = copies / stem, copies / f"{stem}.txt"
        shutil.copyfile(source, noext)
        shutil.copyfile(source, txt)
        paths += [source, noext, txt]
    done = run_extract(*paths)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    results = json.loads(done.stdout)  # exactly one JSON document
    assert isinstance(results, list) and len(results) == len(paths)
    by_file: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        original, noext, txt = results[3 * index : 3 * index + 3]
        by_file[entry["file"]] = {"original": original, "noext": noext, "txt": txt}
    return by_file


@pytest.mark.parametrize("entry", corpus_params())
def test_corpus_entry(entry: dict[str, Any], envelopes: dict[str, dict[str, Any]]) -> None:
    found = envelopes[entry["file"]]
    envelope = found["original"]
    raw = (CORPUS_DIR / entry["file"]).read_bytes()

    assert set(envelope) >= ENVELOPE_KEYS
    assert envelope["file"]["sha256"] == hashlib.sha256(raw).hexdigest() == entry["sha256"]
    assert envelope["file"]["size_bytes"] == len(raw)
    assert (envelope["format"], envelope["variant"]) == (entry["format"], entry["variant"])
    assert envelope["extension_matches"] is True
    if entry["status"] != "either":
        assert envelope["status"] == entry["status"], envelope["error"]
    if envelope["status"] == "succeeded":
        assert envelope["error"] is None
        missing = required_keys(entry["format"]) - set(envelope["metadata"])
        assert not missing, f"required metadata keys missing: {sorted(missing)}"
        assert not mismatches(envelope["metadata"], entry.get("expect", {}))
        if envelope["metadata"].get("repaired") or envelope["metadata"].get("recovered"):
            assert envelope["warnings"], "a repaired/recovered file must carry a warning"
    else:
        assert envelope["error"]["code"] and envelope["error"]["message"]
        if "error_code" in entry:
            assert envelope["error"]["code"] == entry["error_code"]

    for copy in ("noext", "txt"):
        renamed = found[copy]
        assert (renamed["format"], renamed["variant"], renamed["status"]) == (
            envelope["format"],
            envelope["variant"],
            envelope["status"],
        ), copy
        assert renamed["file"]["sha256"] == envelope["file"]["sha256"]
    assert found["txt"]["extension_matches"] is False
    assert any("extension" in w for w in found["txt"]["warnings"])


def test_exit_codes_follow_the_status() -> None:
    entries = corpus_entries()
    if not entries:
        pytest.skip(f"no corpus at {CORPUS_DIR}")
    succeeded = next(e for e in entries if e["status"] == "succeeded")
    failed = next(e for e in entries if e["status"] == "failed")
    ok = run_extract(CORPUS_DIR / succeeded["file"])
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "succeeded"
    bad = run_extract(CORPUS_DIR / failed["file"])
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == failed["error_code"]
