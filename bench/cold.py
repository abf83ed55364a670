"""Fresh processes: the one-shot CLI on a small PDF (``extract_cold_ms``) and the code location's import."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO, TARGET_COLD_MS, short
from bench.generate import make_pdf


def console_script() -> Path:
    """The ``extraction-pipeline`` script of the environment this interpreter belongs to."""
    script = Path(sys.executable).parent / "extraction-pipeline"
    if not script.is_file():
        raise FileNotFoundError(
            f"no console script {script}: install the project into the environment of {sys.executable}"
        )
    return script


def measure_cold_extract(repeats: int = 5, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """``extraction-pipeline extract small.pdf --json`` in a fresh process: median of ``repeats`` runs.

    The console script is the one next to ``sys.executable`` (what a user of this environment runs);
    the PDF is generated (2 pages); the environment is the caller's without ``EXTRACTION_*`` and
    ``DAGSTER_*`` settings. One untimed run first fills the page cache and writes any stale
    bytecode (``first_ms``). Every run must exit 0 with a succeeded envelope of the 2 pages, or
    this raises ``RuntimeError`` with the command's exit status and output.
    """
    script = console_script()
    with tempfile.TemporaryDirectory(prefix="extract-cold-") as tmp:
        folder = Path(tmp)
        pdf = make_pdf(folder / "small.pdf", 2)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
        env["EXTRACTION_HOME"] = str(folder / "home")
        command = [str(script), "extract", str(pdf), "--json"]

        def once() -> float:
            started = time.perf_counter()
            done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
            elapsed_ms = (time.perf_counter() - started) * 1000
            envelope: Any = None
            with contextlib.suppress(ValueError):
                envelope = json.loads(done.stdout)
            if (
                done.returncode != 0
                or not isinstance(envelope, dict)
                or envelope.get("status") != "succeeded"
                or (envelope.get("metadata") or {}).get("page_count") != 2
            ):
                raise RuntimeError(
                    f"`extraction-pipeline extract small.pdf --json` exited {done.returncode} without the "
                    f"2-page PDF's succeeded envelope: stdout {short(done.stdout, 600)!r}, "
                    f"stderr {short(done.stderr, 1500)!r}"
                )
            return elapsed_ms

        log(f"cold extract: {script} extract small.pdf --json, 1 + {repeats} fresh processes")
        first = once()
        runs = [once() for _ in range(repeats)]
        size = pdf.stat().st_size
    median = statistics.median(runs)
    return {
        "median_ms": round(median, 1),
        "runs_ms": [round(r, 1) for r in runs],
        "first_ms": round(first, 1),
        "script": str(script),
        "pdf_pages": 2,
        "pdf_bytes": size,
        "target_ms": TARGET_COLD_MS,
        "target_met": median <= TARGET_COLD_MS,
    }


def measure_code_location(repeats: int) -> dict[str, Any]:
    code = (
        "import time; t = time.perf_counter(); import extraction_pipeline.definitions; "
        "print(time.perf_counter() - t)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
    env["EXTRACTION_HOME"] = tempfile.gettempdir() + "/ep-bench-codeloc"
    inner: list[float] = []
    outer: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
        )
        outer.append(time.perf_counter() - started)
        inner.append(float(done.stdout.strip().splitlines()[-1]))
    return {
        "import_s": round(statistics.median(inner), 3),
        "interpreter_s": round(statistics.median(outer), 3),
    }
