"""The acceptance check of ../shared/corpus: every entry of expected.json, by the rules of its README.

Twice: the way a user runs it (`extraction-pipeline extract --json`, one CLI call for every file
and its renamed copies, through the isolated worker), and in this process (`extract_file`), which
is also what measures the extractors' coverage.
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

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline_tests.corpus import (
    CORPUS_DIR,
    check_envelope,
    check_renamed_copy,
    corpus_entries,
    corpus_params,
)

ENVELOPE_KEYS = {
    "file", "format", "variant", "extension_matches", "status", "extractor", "warnings", "error", "metadata",
    "duration_ms",
}  # fmt: skip


def renamed_copies(source: Path, folder: Path, stem: str) -> tuple[Path, Path]:
    """A copy with no extension and one with `.txt`."""
    noext, txt = folder / stem, folder / f"{stem}.txt"
    shutil.copyfile(source, noext)
    shutil.copyfile(source, txt)
    return noext, txt


def run_extract(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", "extract", "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def cli_envelopes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """file -> [original, no extension, .txt] envelopes, from a single CLI call."""
    entries = corpus_entries()
    if not entries:
        pytest.skip(f"no corpus at {CORPUS_DIR}")
    copies = tmp_path_factory.mktemp("renamed")
    paths: list[Path] = []
    for index, entry in enumerate(entries):
        source = CORPUS_DIR / entry["file"]
        paths += [source, *renamed_copies(source, copies, f"{index:02d}_{Path(entry['file']).stem}")]
    done = run_extract(*paths)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    results = json.loads(done.stdout)  # exactly one JSON document
    assert isinstance(results, list) and len(results) == len(paths)
    return {entry["file"]: results[3 * i : 3 * i + 3] for i, entry in enumerate(entries)}


@pytest.mark.parametrize("entry", corpus_params())
def test_corpus_entry_through_the_cli(entry: dict[str, Any], cli_envelopes: dict[str, list[dict]]) -> None:
    original, noext, txt = cli_envelopes[entry["file"]]
    raw = (CORPUS_DIR / entry["file"]).read_bytes()
    assert set(original) >= ENVELOPE_KEYS
    assert original["file"]["sha256"] == hashlib.sha256(raw).hexdigest() == entry["sha256"]
    assert original["file"]["size_bytes"] == len(raw)
    assert original["extension_matches"] is True
    check_envelope(original, entry)
    check_renamed_copy(original, noext)
    check_renamed_copy(original, txt)


@pytest.mark.parametrize("entry", corpus_params())
def test_corpus_entry_in_process(entry: dict[str, Any], tmp_path: Path) -> None:
    source = CORPUS_DIR / entry["file"]
    original = extract_file(source).model_dump(mode="json")
    check_envelope(original, entry)
    for copy in renamed_copies(source, tmp_path, "upload"):
        check_renamed_copy(original, extract_file(copy).model_dump(mode="json"))


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
