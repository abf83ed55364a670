"""bench/extract_overhead.py fails the run on a file one side reads and the other does not.

A file the project fails while the raw library reads it (or the other way round) must not drop out
of the figure: the script exits with 1 and names the file and both reasons. Files both sides reject
because of the file itself are left out and listed with the reasons.

Nothing of the measured code is mocked. The project side is broken for real: a folder on
PYTHONPATH holds a stub ``OCP`` package that raises ImportError. PYTHONPATH is read when an
interpreter starts, so set in this process it reaches only the project's worker processes, which
inherit the environment; this process (the raw loop) keeps the real OpenCascade.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import extract_overhead, generate, raw
from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline_tests.corpus import CORPUS_DIR, REPO_ROOT

BENCH = REPO_ROOT / "bench" / "extract_overhead.py"
STUB_MESSAGE = "OCP made unimportable by the bench test"


@pytest.fixture(scope="module")
def pdf_and_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus folder (pdf/, step/) with one small generated file each."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "pdf").mkdir()
    (root / "step").mkdir()
    generate.make_pdf(root / "pdf" / "small.pdf", 2)
    generate.make_step(root / "step" / "parts.step", 2)
    return root


def ocp_stub(folder: Path) -> Path:
    package = folder / "OCP"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise ImportError({STUB_MESSAGE!r})\n")
    return folder


def with_pythonpath(folder: Path) -> str:
    return os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)


def run_main(corpus: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    status = extract_overhead.main(
        ["--json", "--no-generated", "--no-cold", "--repeat", "1", "--corpus", str(corpus)]
    )
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def test_a_format_the_project_cannot_import_fails_the_run(
    pdf_and_step: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The raw side (this process) reads the STEP file.
    raw.raw_step(pdf_and_step / "step" / "parts.step")
    monkeypatch.setenv("PYTHONPATH", with_pythonpath(ocp_stub(tmp_path / "stub")))

    status, result, err = run_main(pdf_and_step, capsys)

    assert status == 1
    assert len(result["failures"]) == 1, result["failures"]
    failure = result["failures"][0]
    assert failure.startswith("parts.step (step): the project failed (")
    assert STUB_MESSAGE in failure and "ImportError" in failure
    assert failure.endswith("but the raw library reads it")
    # Not left out quietly, and the figure says so.
    assert result["skipped"] == []
    assert result["per_format"].keys() == {"pdf"}
    assert result["target_met"] is False
    assert "bench FAILED: 1 failure(s)" in err and "parts.step (step)" in err


def test_a_file_only_the_project_reads_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = CORPUS_DIR / "dwg" / "sample_2000.dwg"
    if not source.is_file():
        pytest.skip(f"no corpus at {CORPUS_DIR}")
    # A DWG cut after its header: the project still reports the header's facts, ezdwg cannot read it.
    (tmp_path / "dwg").mkdir()
    cut = tmp_path / "dwg" / "cut_2000.dwg"
    cut.write_bytes(source.read_bytes()[:4000])
    assert extract_file(cut).succeeded
    with pytest.raises(Exception) as raw_error:
        raw.raw_dwg(cut)

    status, result, err = run_main(tmp_path, capsys)

    assert status == 1
    assert result["failures"] == [
        f"cut_2000.dwg (dwg): the raw loop failed ({type(raw_error.value).__name__}: {raw_error.value}) "
        "but the project extracts it"
    ]
    assert result["per_format"] == {}
    assert "cut_2000.dwg" in err


def test_files_both_sides_reject_are_listed_and_do_not_fail_the_run(
    pdf_and_step: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(pdf_and_step, corpus)
    pymupdf = raw._pymupdf()
    with pymupdf.open(corpus / "pdf" / "small.pdf") as doc:
        doc.save(
            corpus / "pdf" / "locked.pdf",
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            user_pw="user",
            owner_pw="owner",
        )

    status, result, _ = run_main(corpus, capsys)

    assert status == 0
    assert result["failures"] == []
    assert len(result["skipped"]) == 1
    note = result["skipped"][0]
    assert note.startswith("locked.pdf (pdf): both sides reject the file (project encrypted: ")
    assert "raw ValueError: password needed" in note
    assert result["per_format"]["pdf"]["files"] == 1 and result["per_format"]["step"]["files"] == 1


def test_a_broken_installation_fails_the_script_even_when_both_sides_fail(
    pdf_and_step: Path, tmp_path: Path
) -> None:
    # The whole script runs with OCP unimportable: both sides fail on the STEP file, but with an
    # ImportError, which is the installation, not the file. The real process exits with 1.
    env = {**os.environ, "PYTHONPATH": with_pythonpath(ocp_stub(tmp_path / "stub"))}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--json", "--no-generated", "--no-cold", "--repeat", "1"]
        + ["--corpus", str(pdf_and_step)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert len(result["failures"]) == 1
    failure = result["failures"][0]
    assert failure.startswith("parts.step (step): both sides failed, not because of the file (project ")
    assert f"raw ImportError: {STUB_MESSAGE}" in failure
    assert result["skipped"] == []
    assert "bench FAILED" in done.stderr and "parts.step (step)" in done.stderr
