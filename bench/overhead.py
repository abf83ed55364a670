"""The overhead measurement: the project's warm, isolated extraction against the raw loops.

``measure`` compares both sides file by file on an untimed pass (``compare_sides``: counted, left
out or a failure, see bench/README.md), then times ``repeat`` interleaved passes; ``summarise``
makes the per-format figures, ``breakdown`` splits the project's time into stages.
"""

from __future__ import annotations

import math
import re
import statistics
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import FORMATS, TARGET_RATIO, short, timed
from bench.raw import RAW_EXTRACTORS


@dataclass
class FileTiming:
    path: Path
    fmt: str
    project_s: list[float]
    raw_s: list[float]


# Error codes by which the project blames the file itself. Any other failure of the project
# (``extractor_error``, ``crashed``, ``timeout``, ``out_of_memory``, ...) is the project's or the
# installation's, even when the raw loop cannot read the file either.
FILE_FAULT_CODES = frozenset({"unsupported_format", "corrupt", "encrypted", "too_large"})
# A "corrupt" whose message is one of these exceptions is a broken installation, not a broken file.
_INSTALLATION_MESSAGE = re.compile(r"^(ImportError|ModuleNotFoundError|NameError|SyntaxError)\b")
SUFFIX_FORMATS = {
    ".pdf": "pdf",
    ".dxf": "dxf",
    ".dwg": "dwg",
    ".ifc": "ifc",
    ".ifczip": "ifc",
    ".stp": "step",
    ".step": "step",
    ".p21": "step",
}


def installation_fault(exc: BaseException) -> bool:
    """True when the raw loop's exception blames the environment (a missing module, ...), not the file."""
    if isinstance(exc, ImportError | NameError | SyntaxError):
        return True
    if isinstance(exc, AttributeError):  # ``module 'OCP.X' has no attribute 'Y'``: a library release
        return isinstance(getattr(exc, "obj", None), types.ModuleType) or str(exc).startswith("module ")
    return False


def raw_format(envelope: Any, path: Path) -> str | None:
    """Which raw loop reads ``path``: the detected format, else the suffix or the corpus folder."""
    if envelope.format in RAW_EXTRACTORS:
        return str(envelope.format)
    return SUFFIX_FORMATS.get(path.suffix.lower()) or (
        path.parent.name if path.parent.name in RAW_EXTRACTORS else None
    )


@dataclass(frozen=True)
class Comparison:
    """What the two sides made of one file: ``counted``, ``left_out`` (both reject it) or ``failure``."""

    path: Path
    fmt: str | None
    outcome: str
    reason: str | None = None


def compare_sides(path: Path, envelope: Any, fmt: str | None, raw_error: BaseException | None) -> Comparison:
    """Classify one file from the project's envelope and the raw loop's exception (None: it read it)."""
    label = f"{path.name} ({fmt or envelope.format})"
    project_ok = bool(envelope.succeeded)
    if project_ok and raw_error is None:
        return Comparison(path, fmt, "counted")
    raw_reason = f"{type(raw_error).__name__}: {short(str(raw_error))}" if raw_error is not None else None
    error = envelope.error
    code = error.code if error is not None else "failed"
    project_reason = f"{code}: {short(error.message if error is not None else envelope.status)}"
    if not project_ok and raw_error is None:
        return Comparison(
            path,
            fmt,
            "failure",
            f"{label}: the project failed ({project_reason}) but the raw library reads it",
        )
    if project_ok:
        return Comparison(
            path, fmt, "failure", f"{label}: the raw loop failed ({raw_reason}) but the project extracts it"
        )
    both = f"project {project_reason}; raw {raw_reason}"
    message = error.message if error is not None else ""
    file_fault = code in FILE_FAULT_CODES and not _INSTALLATION_MESSAGE.match(message)
    if file_fault and raw_error is not None and not installation_fault(raw_error):
        return Comparison(path, fmt, "left_out", f"{label}: both sides reject the file ({both})")
    return Comparison(path, fmt, "failure", f"{label}: both sides failed, not because of the file ({both})")


def read_both(pool: Any, path: Path) -> Comparison:
    """One untimed pass of each side over ``path`` (the warm-up), classified by ``compare_sides``."""
    envelope = pool.extract(path)
    fmt = raw_format(envelope, path)
    raw_error: BaseException | None = None
    if fmt is None:
        raw_error = LookupError(f"no raw reader for format {envelope.format!r}")
    else:
        try:
            RAW_EXTRACTORS[fmt](path)
        except Exception as exc:
            raw_error = exc
    return compare_sides(path, envelope, fmt, raw_error)


def measure(
    files: list[Path], repeat: int, log: Callable[[str], None] = lambda _: None, stat: str = "median"
) -> dict[str, Any]:
    """Warm up both sides on ``files``, time ``repeat`` passes and summarise (see the module doc).

    ``failures`` in the result names every file one side reads and the other does not (and every
    file both fail on for a reason other than the file): the run has failed when it is not empty.
    """
    from extraction_pipeline.extraction.workers import WorkerPool

    timings: list[FileTiming] = []
    skipped: list[str] = []
    failures: list[str] = []
    with WorkerPool(size=1, timeout_s=600) as pool:
        # Warm-up pass (untimed): starts the worker, imports everything, compares the two sides.
        for path in files:
            checked = read_both(pool, path)
            if checked.outcome == "counted" and checked.fmt is not None:
                timings.append(FileTiming(path, checked.fmt, [], []))
            elif checked.outcome == "left_out":
                skipped.append(str(checked.reason))
                log(f"left out: {checked.reason}")
            else:
                failures.append(str(checked.reason))
                log(f"FAILED: {checked.reason}")
        # Paired and interleaved (file by file, alternating which side goes first), so that load
        # from other processes hits both sides alike.
        for number in range(repeat):
            log(f"pass {number + 1}/{repeat}")
            for timing in timings:
                raw = RAW_EXTRACTORS[timing.fmt]
                if number % 2:
                    timing.raw_s.append(timed(lambda t=timing, f=raw: f(t.path)))
                timing.project_s.append(timed(lambda t=timing: pool.extract(t.path)))
                if not number % 2:
                    timing.raw_s.append(timed(lambda t=timing, f=raw: f(t.path)))
        peak = pool.peak_rss_bytes()
    return summarise(timings, skipped, peak, stat, failures)


STAGES = ("hash", "detect", "extractor", "envelope", "ipc")


def breakdown(files: list[Path], repeat: int) -> dict[str, dict[str, float]]:
    """Where the project's time goes, per format (ms, summed over files, median of ``repeat`` runs).

    The stages of ``extract_file`` are replayed in this process: sha256 (``hash``), ``detect``, the
    format module (``extractor``), building the envelope plus its JSON dump and validation
    (``envelope``, what crosses the pipe). ``ipc`` is what the worker adds on top: the pool's time
    minus the in-process ``extract_file`` time. ``raw`` is the raw loop, for comparison.
    """
    from extraction_pipeline.extraction.context import ExtractionContext
    from extraction_pipeline.extraction.detect import detect_format
    from extraction_pipeline.extraction.envelope import Envelope, ExtractorInfo
    from extraction_pipeline.extraction.extract import extract_file, file_info
    from extraction_pipeline.extraction.registry import extractor_for
    from extraction_pipeline.extraction.workers import WorkerPool

    def stages(path: Path) -> dict[str, float]:
        clock = time.perf_counter
        t0 = clock()
        info = file_info(path, path.name)
        t1 = clock()
        detection = detect_format(path, path.name)
        t2 = clock()
        module = extractor_for(detection.format)
        result = module.extract(path, ExtractionContext(detection=detection, filename=path.name))
        t3 = clock()
        envelope = Envelope(
            file=info,
            format=str(detection.format),
            variant=result.variant or detection.variant,
            extension_matches=detection.extension_matches,
            status="succeeded",
            extractor=ExtractorInfo(name=module.NAME, version=module.VERSION),
            warnings=[*detection.warnings, *result.warnings],
            metadata=result.metadata.model_dump(mode="json", by_alias=True),
        )
        Envelope.model_validate(envelope.model_dump(mode="json"))
        t4 = clock()
        return {"hash": t1 - t0, "detect": t2 - t1, "extractor": t3 - t2, "envelope": t4 - t3}

    totals: dict[str, dict[str, float]] = {}
    with WorkerPool(size=1, timeout_s=600) as pool:
        for path in files:
            envelope = pool.extract(path)
            raw = RAW_EXTRACTORS.get(envelope.format)
            if not envelope.succeeded or raw is None:  # ``measure`` reported it (failure or left out)
                continue
            try:
                raw(path)
                stages(path)
                extract_file(path)
                runs = [stages(path) for _ in range(repeat)]
                local = statistics.median(timed(lambda p=path: extract_file(p)) for _ in range(repeat))
                pooled = statistics.median(timed(lambda p=path: pool.extract(p)) for _ in range(repeat))
                direct = statistics.median(timed(lambda p=path, f=raw: f(p)) for _ in range(repeat))
                row = totals.setdefault(envelope.format, dict.fromkeys((*STAGES, "raw"), 0.0))
                for stage in STAGES[:-1]:
                    row[stage] += statistics.median(r[stage] for r in runs) * 1000
                row["ipc"] += (pooled - local) * 1000
                row["raw"] += direct * 1000
            except Exception as exc:  # never silently: a stage that fails here is a finding
                raise RuntimeError(f"breakdown of {path.name}: {type(exc).__name__}: {exc}") from exc
    return {fmt: {k: round(v, 2) for k, v in row.items()} for fmt, row in totals.items()}


def summarise(
    timings: list[FileTiming],
    skipped: list[str],
    peak_rss_bytes: int,
    stat: str = "median",
    failures: list[str] | None = None,
) -> dict[str, Any]:
    pick: Callable[[list[float]], float] = min if stat == "min" else statistics.median
    per_format: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    for fmt in FORMATS:
        mine = [t for t in timings if t.fmt == fmt]
        if not mine:
            continue
        project_ms = sum(pick(t.project_s) for t in mine) * 1000
        raw_ms = sum(pick(t.raw_s) for t in mine) * 1000
        per_format[fmt] = {
            "files": len(mine),
            "project_ms": round(project_ms, 2),
            "raw_ms": round(raw_ms, 2),
            "ratio": round(project_ms / raw_ms, 3) if raw_ms > 0 else math.inf,
        }
        for t in mine:
            p, r = pick(t.project_s) * 1000, pick(t.raw_s) * 1000
            files.append(
                {"file": t.path.name, "format": fmt, "project_ms": round(p, 2), "raw_ms": round(r, 2)}
            )
    ratios = [v["ratio"] for v in per_format.values()]
    median_ratio = round(statistics.median(ratios), 3) if ratios else None
    return {
        "per_format": per_format,
        "median_ratio": median_ratio,
        "target_ratio": TARGET_RATIO,
        # A file one side reads and the other does not fails the figure, whatever the ratio.
        "target_met": not failures and median_ratio is not None and median_ratio <= TARGET_RATIO,
        "worker_peak_rss_mb": round(peak_rss_bytes / (1024 * 1024), 1),
        "statistic": stat,
        "files": files,
        "skipped": skipped,
        "failures": list(failures or []),
    }
