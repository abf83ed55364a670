"""The human output of both scripts: tables, targets and whether they hold, failures."""

from __future__ import annotations

import math
from typing import Any

from bench.api import TARGET_API_RATIO, render_details
from bench.common import TARGET_COLD_MS, TARGET_RATIO
from bench.overhead import STAGES

TARGETS: dict[str, tuple[str, float] | None] = {
    "extract_overhead_ratio": ("<=", 1.15),
    "backfill_files_per_s": None,
    "backfill_ratio_vs_raw": ("<=", 1.5),
    "latency_p50_s": None,
    "latency_p95_s": ("<=", 10.0),
    "sensor_tick_s_at_100k": ("<=", 1.0),
    "code_location_load_s": None,
    "extract_cold_ms": ("<=", TARGET_COLD_MS),
    "worker_peak_rss_mb": None,
    "partitions_100k": None,
    "api_overhead_ratio": ("<=", TARGET_API_RATIO),
    "api_upload_files_per_s": None,
    "api_status_p95_ms": None,
    "skipped_files_per_s": None,
    "dedupe_files_per_s": None,
    "burst_ratio_vs_raw": ("<=", 1.5),
    "latency_p95_during_burst_s": ("<=", 10.0),
    "text_overhead_ratio": None,
    "preview_ms_p50": None,
    "search_ms_at_100k": ("<=", 50.0),
}


def render_breakdown(rows: dict[str, dict[str, float]]) -> str:
    lines = [f"{'format':<7}" + "".join(f"{name:>11}" for name in (*STAGES, "raw"))]
    for fmt, row in rows.items():
        lines.append(f"{fmt:<7}" + "".join(f"{row[name]:>11.2f}" for name in (*STAGES, "raw")))
    return "\n".join(lines)


def render_overhead(result: dict[str, Any], verbose: bool = False) -> str:
    lines = [f"{'format':<7}{'files':>6}{'project ms':>13}{'raw ms':>11}{'ratio':>8}"]
    for fmt, row in result["per_format"].items():
        lines.append(
            f"{fmt:<7}{row['files']:>6}{row['project_ms']:>13.1f}{row['raw_ms']:>11.1f}{row['ratio']:>8.3f}"
        )
    if verbose:
        lines.append("")
        for row in result["files"]:
            ratio = row["project_ms"] / row["raw_ms"] if row["raw_ms"] else math.inf
            lines.append(
                f"  {row['format']:<5}{row['file']:<40}{row['project_ms']:>10.1f}{row['raw_ms']:>10.1f}{ratio:>8.2f}"
            )
    lines.append("")
    median = result["median_ratio"]
    verdict = "met" if result["target_met"] else "NOT met"
    lines.append(
        f"median ratio over formats: {median} (target <= {TARGET_RATIO}: {verdict}; per file: {result['statistic']})"
    )
    lines.append(f"worker peak RSS: {result['worker_peak_rss_mb']} MB")
    cold = result.get("extract_cold")
    if cold:
        verdict = "met" if cold["target_met"] else "NOT met"
        lines.append(
            f"cold extract (`extraction-pipeline extract` on a {cold['pdf_pages']}-page PDF, fresh process): "
            f"{cold['median_ms']} ms, median of {len(cold['runs_ms'])} (target <= {cold['target_ms']:g} ms: "
            f"{verdict}; runs {cold['runs_ms']}, untimed first run {cold['first_ms']} ms)"
        )
    for note in result["skipped"]:
        lines.append(f"left out: {note}")
    for note in result.get("failures", []):
        lines.append(f"FAILED: {note}")
    return "\n".join(lines)


def holds(key: str, value: Any) -> bool | None:
    target = TARGETS.get(key)
    if target is None or value is None:
        return None
    op, limit = target
    return value <= limit if op == "<=" else value >= limit


def render_run(result: dict[str, Any]) -> str:
    lines = [f"{'figure':<26}{'value':>24}  {'target':<10}{'holds':<6}"]
    for key, target in TARGETS.items():
        value = result.get(key)
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {v}" for k, v in value.items())
        else:
            shown = "-" if value is None else str(value)
        met = result.get("targets_met") or {}
        verdict = {True: "yes", False: "NO", None: "-"}[met[key] if key in met else holds(key, value)]
        lines.append(
            f"{key:<26}{shown:>24}  {(f'{target[0]} {target[1]}' if target else 'report'):<10}{verdict:<6}"
        )
    details = result["details"]
    lines.append("")
    if "backfill" in details:
        b = details["backfill"]
        lines.append(
            f"backfill: {b['files']} files ({b['bytes'] / 1e6:.1f} MB), {b['runs']} runs, "
            f"{b['wall_s']} s through the daemon vs {b['raw_s']} s raw (before {b['raw_before_s']}, "
            f"after {b['raw_after_s']}); {b['failed']} failed, {b['taken_by_sensor']} taken by the sensor"
        )
        lines.append(
            f"  first run started {b['first_run_started_after_s']} s after the launch (Dagster's backfill "
            f"daemon polls every 30 s); from there {b['runs_wall_s']} s, {b['runs_ratio_vs_raw']} x raw"
        )
    if "latency" in details:
        lat = details["latency"]
        lines.append(f"latency: {lat['uploads']} uploads every {lat['pace_s']} s, max {lat['max_s']} s")
    if "burst" in details:
        b = details["burst"]
        singles = b["singles"]
        lines.append(
            f"burst: {b['files']} files ({b['bytes'] / 1e6:.1f} MB) uploaded at once in {b['upload_s']} s, "
            f"{b['wall_s']} s to the last final vs {b['raw_s']} s raw (before {b['raw_before_s']}, after "
            f"{b['raw_after_s']}); {b['files'] - b['succeeded']} failed; {b['runs']} runs "
            f"({b['runs_of_backfills']} of backfills), {b['backfills']} backfills"
        )
        lines.append(
            f"  {singles['uploads']} single uploads every {singles['pace_s']} s during a second burst: p50 "
            f"{singles['p50_s']} s, max {singles['max_s']} s ({singles['after_burst']} made after it ended)"
        )
    if "sensor" in details:
        lines.append(f"sensor ticks (s): {details['sensor']['ticks_s']}")
    if "extract_cold" in details:
        cold = details["extract_cold"]
        lines.append(
            f"cold extract (ms, fresh processes): {cold['runs_ms']}, untimed first run {cold['first_ms']}"
        )
    if "api" in details:
        lines.append(render_details(details["api"]))
    if "extract_overhead" in details:
        per = details["extract_overhead"]["per_format"]
        lines.append("overhead per format: " + ", ".join(f"{f} {r['ratio']}" for f, r in per.items()))
        for note in details["extract_overhead"]["skipped"]:
            lines.append(f"  left out: {note}")
    lines.append(f"load average before/after: {details['load_before']} / {details['load_after']}")
    for note in result.get("failures", []):
        lines.append(f"FAILED: {note}")
    for name, error in result.get("errors", {}).items():
        lines.append(f"ERROR in {name}: {error}")
    return "\n".join(lines)
