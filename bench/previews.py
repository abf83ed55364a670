"""What a preview costs: ``preview_ms_p50`` per format.

Per template, ``extract_file`` with the preview (as the pipeline asks for it) against the same
without, best of ``repeat`` each, in this process (the library imports paid before timing); the
difference is the preview's time. Per format: the median over its files, how many got a preview,
and the slowest file. A file the preview is refused for (too big, nothing to draw) counts with
what the refusal cost.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


def measure_previews(paths: list[Path], repeat: int) -> dict[str, Any]:
    from extraction_pipeline.extraction.extract import extract_file

    by_format: dict[str, list[tuple[str, float, bool]]] = defaultdict(list)
    for path in paths:
        first = extract_file(path, preview=True)  # imports, caches, font lists
        if first.status != "succeeded":
            continue
        plain_s, with_preview_s = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            extract_file(path)
            plain_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            extract_file(path, preview=True)
            with_preview_s.append(time.perf_counter() - started)
        cost_ms = max(0.0, (min(with_preview_s) - min(plain_s)) * 1000)
        by_format[first.format].append((path.name, cost_ms, first.preview_png is not None))
    per_format: dict[str, Any] = {}
    for fmt, rows in sorted(by_format.items()):
        slowest = max(rows, key=lambda row: row[1])
        per_format[fmt] = {
            "files": len(rows),
            "with_preview": sum(1 for row in rows if row[2]),
            "p50_ms": round(statistics.median(row[1] for row in rows), 1),
            "max_ms": round(slowest[1], 1),
            "slowest": slowest[0],
        }
    return {"p50_ms": {fmt: row["p50_ms"] for fmt, row in per_format.items()}, "per_format": per_format}
