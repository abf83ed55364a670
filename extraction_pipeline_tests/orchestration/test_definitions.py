"""The code location: it validates, and loading it stays light (no format library imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("pymupdf", "fitz", "ezdxf", "ezdwg", "ifcopenshell", "OCP", "cadquery")


def test_dagster_validates_the_workspace(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "EXTRACTION_HOME": str(tmp_path / "extraction")}
    done = subprocess.run(
        ["dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


# Loaded on first use, not by the code location (every run and sensor tick loads it): the ORM
# models, the worker pool, the envelope machinery.
LAZY_PROJECT_MODULES = (
    "extraction_pipeline.extraction.formats",
    "extraction_pipeline.persistence.models",
    "extraction_pipeline.extraction.worker.pool",
)


def test_loading_the_code_location_imports_no_format_library(tmp_path: Path) -> None:
    code = (
        "import json, sys; import extraction_pipeline.definitions; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r}"
        f" or m.startswith({LAZY_PROJECT_MODULES!r}))))"
    )
    env = {**os.environ, "EXTRACTION_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
