"""The project's performance in one command, on real PostgreSQL and a real ``dagster-daemon``.

    python3 -m bench.run [--quick] [--json] [--corpus DIR] [--env NAME=VALUE ...] [--keep-going]

It generates a mixed corpus (PDF, DXF, IFC and STEP written with the libraries in several sizes,
DWG copied from ``../shared/corpus`` when present), creates two fresh PostgreSQL databases (the
application's and the Dagster instance's, dropped at the end), a ``DAGSTER_HOME`` with the committed
``dagster.yaml`` in a temporary folder, and measures (see bench/README.md):

- ``extract_overhead_ratio`` and ``worker_peak_rss_mb``: ``overhead.measure`` on the templates;
- ``backfill_files_per_s`` and ``backfill_ratio_vs_raw``: N historic files (1000, quick 300) through
  ``extraction-pipeline backfill`` and the daemon, against a single-process raw library loop;
- ``latency_p50_s`` / ``latency_p95_s``: uploads one at a time at a steady pace, commit -> ``succeeded``;
- ``burst_ratio_vs_raw`` and ``latency_p95_during_burst_s``: N files (1000, quick 300) uploaded at once
  through the sensor path, against the raw loop, and single uploads made while they are extracted;
- ``sensor_tick_s_at_100k``: one evaluation of the upload sensor with 100,000 pending files;
- ``code_location_load_s``: importing ``extraction_pipeline.definitions`` in a fresh interpreter;
- ``extract_cold_ms``: ``extraction-pipeline extract small.pdf --json`` in a fresh process (the console
  script next to ``sys.executable``, a 2-page PDF), median of 5;
- ``text_overhead_ratio``: extraction with the text over extraction without, median over formats;
- ``preview_ms_p50``: per format, the median time a preview adds to an extraction (``previews.py``);
- ``search_ms_at_100k``: median of 20 searches over 100,000 stored texts on PostgreSQL (``text.py``);
- ``partitions_100k``: with 100k registered partitions, adding 1k more and the UI's partition status
  query (GraphQL, in-process);
- ``api_overhead_ratio``, ``api_upload_files_per_s``, ``api_status_p95_ms``: a real
  ``extraction-pipeline serve`` on the deployment's PostgreSQL: the public corpus uploaded over HTTP
  against ``extraction-pipeline upload``, then 16 clients uploading and 16 reading file status.

Progress goes to stderr; stdout gets the table, or with ``--json`` exactly one JSON object.

A missed target is a result, not an error (``targets_met``). The run fails (exit status 1, the
files and reasons under ``failures`` and on stderr) when the project fails a file that the raw
libraries read, or the other way round: in the overhead comparison (see extract_overhead.py), in
the backfill and the burst (every file of the mix went through the raw loop) or in the latency
uploads. It also exits 1 when a step raised and ``--keep-going`` let the run go on (``errors``).

The deployment is in ``deploy``, the generated templates in ``generate``, the measurements in
``overhead``, ``pipeline``, ``cold`` and ``api``, the table in ``report``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python3 bench/run.py: bench/ is first on sys.path,
    # and the package's modules import ``bench.*``: put the repository root there instead
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from bench.api import measure_api  # noqa: E402
from bench.cold import measure_code_location, measure_cold_extract  # noqa: E402
from bench.common import DEFAULT_CORPUS, load_average, log, native_stdout_to_stderr  # noqa: E402
from bench.deploy import deployment, upload, wait_until_final  # noqa: E402
from bench.generate import Template, backfill_mix, build_templates  # noqa: E402
from bench.overhead import measure  # noqa: E402
from bench.pipeline import (  # noqa: E402
    measure_backfill,
    measure_burst,
    measure_latency,
    measure_partitions,
    measure_sensor_tick,
    measure_shortcuts,
)
from bench.previews import measure_previews  # noqa: E402
from bench.raw import raw_loop_s  # noqa: E402
from bench.report import TARGETS, holds, render_run  # noqa: E402
from bench.text import measure_search, measure_text_overhead  # noqa: E402


@dataclass
class Plan:
    scale: str
    backfill_files: int
    repeat: int
    latency_uploads: int
    latency_pace_s: float
    shortcut_files: int = 30
    burst_files: int = 300
    burst_singles_pace_s: float = 5.0
    pending: int = 100_000
    partitions: int = 100_000
    sensor_ticks: int = 5
    graphql_queries: int = 3
    code_location_repeats: int = 5
    cold_extract_repeats: int = 5
    search_texts: int = 100_000


PLANS = {
    "tiny": Plan(
        "tiny",
        backfill_files=8,
        repeat=1,
        latency_uploads=2,
        latency_pace_s=1.0,
        shortcut_files=2,
        burst_files=8,
        burst_singles_pace_s=1.0,
        search_texts=2_000,
    ),
    "quick": Plan(
        "quick", backfill_files=300, repeat=3, latency_uploads=15, latency_pace_s=3.0, burst_files=300
    ),
    "full": Plan(
        "full",
        backfill_files=1000,
        repeat=5,
        latency_uploads=40,
        latency_pace_s=3.0,
        shortcut_files=200,
        burst_files=1000,
    ),
}


STEPS = (
    "extract_overhead",
    "text",
    "preview",
    "backfill",
    "latency",
    "shortcuts",
    "burst",
    "sensor_tick",
    "partitions",
    "api",
    "code_location",
    "extract_cold",
    "search",
)

# The steps that read the generated templates (the others make their own data).
TEMPLATE_STEPS = frozenset(STEPS[: STEPS.index("burst") + 1])

API_KEYS = ("api_overhead_ratio", "api_upload_files_per_s", "api_status_p95_ms")
BURST_KEYS = ("burst_ratio_vs_raw", "latency_p95_during_burst_s")


def run(
    plan: Plan,
    corpus: Path | None,
    overrides: dict[str, str],
    keep_going: bool,
    only: set[str] | None = None,
    logs: Path | None = None,
) -> dict[str, Any]:
    from extraction_pipeline.persistence.repository import CloudFileRepository

    result: dict[str, Any] = {key: None for key in TARGETS}
    details: dict[str, Any] = {"scale": plan.scale, "env": overrides, "load_before": load_average()}
    errors: dict[str, str] = {}
    # Files the project and the raw libraries disagree on (see the module doc), and the figures
    # they make invalid: such a figure's target counts as missed whatever its value.
    failures: list[str] = []
    failed_figures: set[str] = set()

    def fail(figures: tuple[str, ...], notes: list[str]) -> None:
        for note in notes:
            failures.append(note)
            log(f"FAILED: {note}")
        if notes:
            failed_figures.update(figures)

    def step(name: str, function: Callable[[], None]) -> None:
        if only is not None and name not in only:
            return
        started = time.perf_counter()
        try:
            function()
        except Exception as exc:
            if not keep_going:
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"[:1000]
            log(f"{name} failed: {errors[name]}")
        details.setdefault("step_s", {})[name] = round(time.perf_counter() - started, 1)

    with tempfile.TemporaryDirectory(prefix="ep-bench-") as tmp:
        root = Path(tmp)
        (root / "templates").mkdir()
        templates: list[Template] = []
        if only is None or only & TEMPLATE_STEPS:
            log("generating the corpus templates")
            templates = build_templates(root / "templates", plan.scale, corpus)
            details["templates"] = {t.path.name: t.path.stat().st_size for t in templates}

        def do_overhead() -> None:
            measured = measure([t.path for t in templates], plan.repeat, log)
            result["extract_overhead_ratio"] = measured["median_ratio"]
            result["worker_peak_rss_mb"] = measured["worker_peak_rss_mb"]
            details["extract_overhead"] = {
                "per_format": measured["per_format"],
                "skipped": measured["skipped"],
            }
            fail(("extract_overhead_ratio",), [f"extract_overhead: {note}" for note in measured["failures"]])
            # The later steps use the files both sides read (the others are reported above).
            counted = {row["file"] for row in measured["files"]}
            templates[:] = [t for t in templates if t.path.name in counted]

        step("extract_overhead", do_overhead)

        def do_text() -> None:
            measured = measure_text_overhead([t.path for t in templates], plan.repeat)
            details["text"] = measured
            result["text_overhead_ratio"] = measured["median_ratio"]

        step("text", do_text)

        def do_preview() -> None:
            measured = measure_previews([t.path for t in templates], plan.repeat)
            details["preview"] = measured["per_format"]
            result["preview_ms_p50"] = measured["p50_ms"]

        step("preview", do_preview)

        with deployment(root, overrides) as deploy:
            repository = CloudFileRepository.from_url(deploy.app_url)
            deduplicate = deploy.env["EXTRACTION_DEDUPLICATE"]  # the shortcuts step turns it on
            try:

                def do_backfill() -> None:
                    mix = backfill_mix(templates, plan.backfill_files)
                    # The raw floor first, on copies of the same files, while nothing else of ours runs.
                    raw_before = raw_loop_s([(t.path, t.fmt) for t in mix])
                    start_warm_daemon()
                    measured = measure_backfill(deploy, repository, mix)
                    measured["raw_before_s"] = round(raw_before, 2)
                    raw_s = (raw_before + measured["raw_after_s"]) / 2
                    measured["raw_s"] = round(raw_s, 2)
                    details["backfill"] = measured
                    result["backfill_files_per_s"] = round(measured["files"] / measured["wall_s"], 2)
                    result["backfill_ratio_vs_raw"] = round(measured["wall_s"] / raw_s, 3)
                    measured["runs_ratio_vs_raw"] = round(measured["runs_wall_s"] / raw_s, 3)
                    fail(("backfill_files_per_s", "backfill_ratio_vs_raw"), measured["failures"])

                def start_warm_daemon() -> None:
                    if deploy.daemon is not None:
                        return
                    log("starting dagster-daemon; one upload through the sensor path warms it up")
                    deploy.start_daemon()
                    warm = upload(
                        deploy, repository, min(templates, key=lambda t: t.path.stat().st_size).path
                    )
                    wait_until_final(deploy, repository, [warm], timeout_s=600, what="warm-up")

                def do_latency() -> None:
                    start_warm_daemon()
                    measured = measure_latency(
                        deploy, repository, templates, plan.latency_uploads, plan.latency_pace_s
                    )
                    details["latency"] = measured
                    result["latency_p50_s"], result["latency_p95_s"] = measured["p50_s"], measured["p95_s"]
                    fail(("latency_p50_s", "latency_p95_s"), measured["failures"])

                def do_shortcuts() -> None:
                    # The deployment extracts every file (EXTRACTION_DEDUPLICATE=0, see deploy.py);
                    # this step is about the files that are not extracted: a daemon with it on.
                    deploy.stop_daemon()
                    deploy.env["EXTRACTION_DEDUPLICATE"] = "1"
                    start_warm_daemon()
                    source = min(
                        (t for t in templates if t.fmt == "pdf"), key=lambda t: t.path.stat().st_size
                    )
                    measured = measure_shortcuts(
                        deploy, repository, root / "shortcuts", source, plan.shortcut_files
                    )
                    details["shortcuts"] = measured
                    result["skipped_files_per_s"] = measured["skipped"]["files_per_s"]
                    result["dedupe_files_per_s"] = measured["dedupe"]["files_per_s"]
                    fail(("skipped_files_per_s", "dedupe_files_per_s"), measured["failures"])

                def do_burst() -> None:
                    # The raw loops run with the daemon stopped (measure_burst starts it in between).
                    # Every file extracted, as in the backfill: the shortcuts step's daemon would
                    # copy most of the mix's metadata (it cycles through a few templates).
                    deploy.stop_daemon()
                    deploy.env["EXTRACTION_DEDUPLICATE"] = deduplicate
                    measured = measure_burst(
                        deploy,
                        repository,
                        templates,
                        plan.burst_files,
                        plan.burst_singles_pace_s,
                        start_daemon=start_warm_daemon,
                    )
                    details["burst"] = measured
                    result["burst_ratio_vs_raw"] = measured["ratio_vs_raw"]
                    result["latency_p95_during_burst_s"] = measured["singles"]["p95_s"]
                    fail(BURST_KEYS, measured["failures"])

                step("backfill", do_backfill)
                step("latency", do_latency)
                step("shortcuts", do_shortcuts)
                step("burst", do_burst)
                details["load_after_daemon"] = load_average()
                deploy.stop_daemon()
                if logs is not None and deploy.daemon_log is not None:
                    logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(deploy.daemon_log, logs / "daemon.log")

                def do_sensor() -> None:
                    measured = measure_sensor_tick(deploy, plan.pending, plan.sensor_ticks)
                    details["sensor"] = measured
                    result["sensor_tick_s_at_100k"] = measured["median_s"]

                def do_partitions() -> None:
                    # The in-process workspace starts a code server that logs on fd 1: keep stdout JSON.
                    with native_stdout_to_stderr():
                        measured = measure_partitions(deploy, plan.partitions, 1000, plan.graphql_queries)
                    details["partitions"] = measured
                    result["partitions_100k"] = {
                        "add_1k_s": measured["add_1k_s"],
                        "status_query_s": measured["status_query_s"],
                    }

                def do_api() -> None:
                    # After the daemon has stopped: the uploads stay pending, nothing extracts them.
                    measured = measure_api(corpus, plan.scale, deploy.env, "postgresql", log=log)
                    details["api"] = measured["details"]
                    for key in API_KEYS:
                        result[key] = measured[key]
                    fail(API_KEYS, measured["failures"])

                step("sensor_tick", do_sensor)
                step("partitions", do_partitions)
                step("api", do_api)
            finally:
                repository.dispose()

    def do_code_location() -> None:
        measured = measure_code_location(plan.code_location_repeats)
        details["code_location"] = measured
        result["code_location_load_s"] = measured["import_s"]

    def do_extract_cold() -> None:
        measured = measure_cold_extract(plan.cold_extract_repeats, log)
        details["extract_cold"] = measured
        result["extract_cold_ms"] = measured["median_ms"]

    def do_search() -> None:
        measured = measure_search(plan.search_texts)
        details["search"] = measured
        # The key names 100k texts: a smaller plan (tiny) reports its figure under details only.
        if plan.search_texts >= 100_000:
            result["search_ms_at_100k"] = measured["median_ms"]

    step("code_location", do_code_location)
    step("extract_cold", do_extract_cold)
    step("search", do_search)
    details["load_after"] = load_average()
    result["targets"] = {k: f"{v[0]} {v[1]}" for k, v in TARGETS.items() if v}
    result["targets_met"] = {
        k: False if k in failed_figures else holds(k, result[k]) for k, v in TARGETS.items() if v
    }
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    result["details"] = details
    result["failures"] = failures
    if errors:
        result["errors"] = errors
    return result


def exit_status(result: dict[str, Any]) -> int:
    """1 when files failed on one side only (``failures``) or a step raised (``errors``), else 0."""
    return 1 if result.get("failures") or result.get("errors") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300-file backfill, smaller files (< 10 min)")
    parser.add_argument(
        "--scale", choices=tuple(PLANS), help="instead of --quick: tiny (smoke tests), quick or full"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="DWG files from DIR/dwg; the api step: DIR/<fmt>/*",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="setting for the deployment"
    )
    parser.add_argument("--keep-going", action="store_true", help="report a failing step and go on")
    parser.add_argument("--only", help=f"comma-separated steps to run: {', '.join(STEPS)}")
    parser.add_argument("--logs", type=Path, help="copy the daemon's log into this folder")
    parser.add_argument("--pending", type=int, help="pending files for the sensor tick (default 100000)")
    parser.add_argument("--partitions", type=int, help="registered partitions (default 100000)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    if only and only - set(STEPS):
        parser.error(f"unknown steps: {sorted(only - set(STEPS))}")
    overrides = dict(item.split("=", 1) for item in args.env)
    plan = PLANS[args.scale or ("quick" if args.quick else "full")]
    if args.pending is not None:
        plan.pending = args.pending
    if args.partitions is not None:
        plan.partitions = args.partitions
    result = run(plan, args.corpus, overrides, args.keep_going, only, args.logs)
    print(json.dumps(result) if args.json else render_run(result))
    status = exit_status(result)
    if status:
        log(
            f"bench FAILED: {len(result['failures'])} failure(s), {len(result.get('errors', {}))} step error(s)"
        )
        for note in result["failures"]:
            log(f"  {note}")
        for name, error in result.get("errors", {}).items():
            log(f"  {name}: {error}")
    return status


if __name__ == "__main__":
    sys.exit(main())
