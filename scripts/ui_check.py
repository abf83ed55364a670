#!/usr/bin/env python3
"""Check in a real browser what the Dagster UI shows for a failed file and for succeeded ones.

What it does:

1. Builds a throw-away deployment in a temporary folder, the way the orchestration tests do:
   ``EXTRACTION_HOME`` (SQLite application database, blob folder), ``DAGSTER_HOME`` (an embedded
   SQLite Dagster instance), one sample file per format (``extraction_pipeline.samples``) and one
   file that cannot be read (a name with Markdown and HTML in it). Each file is extracted by the
   real job ``extract_cloud_files`` in its own partitioned run, as the sensor would launch it.
2. Starts ``dagster-webserver`` on a free 127.0.0.1 port against that instance and the code
   location ``extraction_pipeline.definitions``.
3. Drives headless Chromium with Playwright:

   - the failed file's partition page (``?view=partitions&partition=ID``): the failure banner,
     its *View logs* (the run's log: the step failure names the file, code and message); then
     *View all historical events* and the observation's row, which must show the file name
     (as text: no Markdown backslash, no HTML element made of the name), ``error_code`` and
     ``error_message``; and the asset's Events tab for that partition, which shows the same
     observation directly;
   - a file that succeeded once and failed when extracted again (its stored bytes damaged): its
     partition page keeps the old materialization and shows the failure in its metadata table;
   - each succeeded file's partition page: its key facts (PDF title/author/version, DXF and DWG
     version/units/layer names, IFC schema/project/storeys, STEP parts/volume/box) and the full
     metadata JSON (``[Show JSON]`` opens it), and its preview where one was stored (the row
     ``preview``: the picture inline, or ``[Show Markdown]`` opening a dialog with it).

   A screenshot of every page goes to ``--out`` (default: a folder ``ui-check`` in the system's
   temporary folder, ``tempfile.gettempdir()``; nothing is written into the repository).
4. Prints what it checked; exits 0 when every check passed, 1 when one failed, 2 when the check
   could not run (no Playwright, no Chromium, the webserver did not come up).

Requirements: ``pip install playwright`` and Debian's Chromium (``apt-get install -y chromium``,
``/usr/bin/chromium``; ``--chromium`` picks another binary). ``playwright install`` is not needed
(and downloads a browser).

Usage::

    python3 scripts/ui_check.py                          # screenshots in <tempdir>/ui-check
    python3 scripts/ui_check.py --out shots --keep       # screenshots in ./shots; keep the deployment
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASSET = "cloud_file_metadata"
BROKEN_NAME = "broken [v2] <b>bracket</b>.step"
# A PDF header and then nothing a reader can use: a PDF that fails (``corrupt``). Bytes of no format at
# all would be ``skipped``, which is no failure.
BROKEN_BYTES = b"%PDF-1.7\n" + b"neither a drawing nor a model nor a document\n" * 20
REFAILED_NAME = "revised *spec*.pdf"
# The runs' events go to the instance (the UI reads them there), not to this script's terminal.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        (self.passed if ok else self.failed).append(what)
        print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        return ok


# --------------------------------------------------------------------------------------------
# The deployment
# --------------------------------------------------------------------------------------------


def deployment_env(root: Path) -> dict[str, str]:
    home = root / "extraction"
    return {
        "EXTRACTION_HOME": str(home),
        "EXTRACTION_DATABASE_URL": f"sqlite:///{home / 'extraction.db'}",
        "EXTRACTION_STORAGE_URL": (home / "blobs").as_uri(),
        "DAGSTER_HOME": str(root / "dagster"),
        "DAGSTER_DISABLE_TELEMETRY": "yes",
        "EXTRACTION_MAX_RETRIES": "0",
    }


def build_deployment(root: Path, env: dict[str, str]) -> dict[str, Any]:
    """Upload the samples and the broken file, extract each in its own run; returns what is where."""
    os.environ.update(env)
    import dagster as dg

    from extraction_pipeline.definitions import build_definitions
    from extraction_pipeline.orchestration.assets import JOB_NAME
    from extraction_pipeline.orchestration.partitions import cloud_files_partitions
    from extraction_pipeline.persistence import migrate
    from extraction_pipeline.persistence.blobs import blob_store_from_url
    from extraction_pipeline.persistence.repository import CloudFileRepository, NewFile
    from extraction_pipeline.samples import write_samples
    from extraction_pipeline.settings import Settings

    Path(env["EXTRACTION_HOME"]).mkdir(parents=True, exist_ok=True)
    dagster_home = Path(env["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")

    settings = Settings.from_env()
    migrate.upgrade(settings.database_url)
    repository = CloudFileRepository.from_url(settings.database_url)
    store = blob_store_from_url(settings.storage_url)

    def upload(name: str, data: bytes) -> int:
        blob = store.put(io.BytesIO(data))
        return repository.add_file(
            NewFile(filename=name, size_bytes=blob.size_bytes, sha256=blob.sha256, storage_uri=blob.uri)
        ).id

    files: dict[str, int] = {}
    for path in write_samples(root / "samples"):
        files[path.suffix.lstrip(".")] = upload(path.name, path.read_bytes())
    files["broken"] = upload(BROKEN_NAME, BROKEN_BYTES)
    pdf = next(path for path in (root / "samples").iterdir() if path.suffix == ".pdf")
    files["refailed"] = upload(REFAILED_NAME, pdf.read_bytes())

    job = build_definitions(settings).resolve_job_def(JOB_NAME)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_dynamic_partitions(cloud_files_partitions.name, [str(i) for i in files.values()])

        def extract(kind: str, file_id: int) -> None:
            result = job.execute_in_process(
                instance=instance, partition_key=str(file_id), raise_on_error=False, run_config=QUIET
            )
            print(f"  extracted {kind} (file {file_id}): run {result.run_id[:8]} success={result.success}")

        for kind, file_id in files.items():
            extract(kind, file_id)
        # "refailed" succeeded once; its stored bytes are then damaged and it is extracted again
        # (as `backfill --outdated` would): the partition keeps its materialization and fails now.
        blob = store.path_of(repository.get_file(files["refailed"]).storage_uri)
        blob.chmod(0o644)
        blob.write_bytes(BROKEN_BYTES)
        # Requested again as `retry --force` does: its bytes equal the PDF sample's, and a forced
        # request is extracted, never deduplicated.
        repository.reset_to_pending([files["refailed"]], statuses=("succeeded",), force=True)
        repository.queue_files([files["refailed"]])
        extract("refailed", files["refailed"])
    facts = {
        kind: {
            "filename": repository.get_file(file_id).filename,
            "status": repository.get_file(file_id).extraction_status,
            "metadata": (row.metadata_ if (row := repository.metadata_for(file_id)) else None),
            "preview": bool(row and row.preview_uri),
        }
        for kind, file_id in files.items()
    }
    repository.dispose()
    return {"files": files, "facts": facts}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_webserver(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "dagster_webserver", "-m", "extraction_pipeline.definitions"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as output:
        # Its own process group: the webserver and its code server are stopped together.
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_webserver(server: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float) -> None:
    """Until the GraphQL API answers with the asset's definition (the code location is loaded)."""
    query = json.dumps(
        {
            "query": "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { __typename } }",
            "variables": {"k": {"path": [ASSET]}},
        }
    ).encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                if json.loads(response.read())["data"]["assetNodeOrError"]["__typename"] == "AssetNode":
                    return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"dagster-webserver did not serve {ASSET} within {timeout_s:g} s")


def stop_webserver(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# --------------------------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------------------------


def expected_facts(kind: str, metadata: dict[str, Any]) -> dict[str, str]:
    """label -> a text the page must show for it, taken from the extracted metadata."""
    if kind == "pdf":
        return {
            "title": metadata["title"],
            "author": metadata["author"],
            "pdf_version": metadata["pdf_version"],
            "pages": str(metadata["page_count"]),
        }
    if kind in ("dxf", "dwg"):
        facts = {
            "version": metadata[f"{kind}_version"],
            "layer_names": ", ".join(metadata["layer_names"][:3]),
        }
        if "units" in metadata:
            facts["units"] = metadata["units"] or "(none)"
        return facts
    if kind == "ifc":
        return {
            "schema": metadata["schema"],
            "project": metadata["project_name"],
            "storeys": ", ".join(metadata["storeys"]),
        }
    low, high = metadata["bbox_mm"]["min"], metadata["bbox_mm"]["max"]
    return {
        "parts": "x" if not metadata["parts"] else str(metadata["parts"][0].get("name") or ""),
        "volume_mm3": str(round(metadata["volume_mm3"], 1)),
        "bbox_mm": " x ".join(f"{b - a:g}" for a, b in zip(low, high, strict=True)),
    }


def shows(scope: Any, text: str, timeout_ms: float) -> bool:
    """Waits until ``scope`` (a page, a dialog) shows ``text``; False after ``timeout_ms``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        scope.get_by_text(text).first.wait_for(timeout=timeout_ms)
    except PlaywrightTimeout:
        return False
    return True


def metadata_row(page: Any, label: str) -> str:
    """The text of the metadata table row whose key cell is ``label`` ('' when there is none)."""
    rows = page.locator("tr").filter(has=page.locator("td:first-child", has_text=label))
    for index in range(rows.count()):
        row = rows.nth(index)
        if row.locator("td").first.inner_text().strip() == label:
            return row.inner_text()
    return ""


def check_failed_partition(
    page: Any, base: str, file_id: int, facts: dict[str, Any], out: Path, report: Report
) -> None:
    status = facts["status"] or {}
    error = status.get("error") or {}
    print(f"failed file {file_id} ({facts['filename']!r}): {error.get('code')}")
    page.goto(f"{base}/assets/{ASSET}?view=partitions&partition={file_id}")
    page.get_by_text("did not materialize this asset").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "failed-partition.png"), full_page=True)
    report.check(
        page.get_by_text("failed, and did not materialize this asset").count() > 0, "failure banner shown"
    )

    # The banner's "View logs": the run's log, where the step failure names the file.
    page.get_by_role("button", name="View logs").click()
    logs = page.get_by_role("dialog")
    logs.get_by_text("failed permanently").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "failed-partition-logs.png"), full_page=True)
    text = logs.inner_text()
    name = facts["filename"]
    report.check(
        f"`{name}`: {error.get('code')}: {error.get('message')}" in text, "run log: name, code and message"
    )
    report.check("\\." not in text and "\\[" not in text, "run log: no Markdown backslash escape")
    report.check(
        logs.locator("b", has_text="bracket").count() == 0, "run log: the HTML in the name stays text"
    )
    logs.get_by_role("button", name="Done").click()
    logs.wait_for(state="hidden", timeout=10_000)

    button = page.get_by_role("button", name="View all historical events")
    if not report.check(
        button.count() == 1 and button.inner_text().strip().endswith("(1)"), "one historical event listed"
    ):
        report.check(False, "the failure is on the partition (no event to open)")
        return
    button.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Observation").first.click()  # expands the row: description and metadata
    shows(dialog, error.get("message", "?")[:40], 15_000)
    page.screenshot(path=str(out / "failed-partition-event.png"), full_page=True)
    text = dialog.inner_text()
    report.check(facts["filename"] in text, f"file name {facts['filename']!r} shown as written")
    report.check(error.get("code", "?") in text, f"error code {error.get('code')!r} shown")
    report.check(error.get("message", "?") in text, "error message shown")
    report.check("\\" not in text, "no Markdown backslash escape in the event")
    report.check("Stack Trace" not in text and "Traceback" not in text, "no stack trace in the event")
    report.check(dialog.locator("b", has_text="bracket").count() == 0, "the HTML in the name stays text")
    page.keyboard.press("Escape")

    page.goto(f"{base}/assets/{ASSET}?view=events&partition={file_id}")
    shows(page, "error_message", 60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "failed-events-tab.png"), full_page=True)
    report.check(facts["filename"] in metadata_row(page, "file"), "events tab: file name in the metadata")
    report.check(error.get("code", "?") in metadata_row(page, "error_code"), "events tab: error code")
    report.check(error.get("message", "?")[:60] in metadata_row(page, "error_message"), "events tab: message")
    report.check(
        page.locator("b", has_text="bracket").count() == 0, "events tab: the HTML in the name stays text"
    )


def check_refailed_partition(
    page: Any, base: str, file_id: int, facts: dict[str, Any], out: Path, report: Report
) -> None:
    """A partition materialized before and failed since: the failure shows in its metadata table."""
    error = (facts["status"] or {}).get("error") or {}
    print(f"re-extracted file {file_id} ({facts['filename']!r}): {error.get('code')}")
    page.goto(f"{base}/assets/{ASSET}?view=partitions&partition={file_id}")
    page.get_by_text("did not materialize this asset").first.wait_for(timeout=60_000)
    shows(page, "error_message", 30_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "refailed-partition.png"), full_page=True)
    report.check(page.get_by_text("Materialized", exact=True).count() > 0, "re-extracted: still materialized")
    report.check(facts["filename"] in metadata_row(page, "file"), "re-extracted: file name in the table")
    report.check(
        error.get("code", "?") in metadata_row(page, "error_code"), "re-extracted: error code in the table"
    )
    report.check(
        error.get("message", "?")[:60] in metadata_row(page, "error_message"),
        "re-extracted: message in the table",
    )
    report.check("\\" not in metadata_row(page, "file"), "re-extracted: no Markdown backslash in the name")


def check_succeeded_partition(
    page: Any, base: str, kind: str, file_id: int, facts: dict[str, Any], out: Path, report: Report
) -> None:
    print(f"{kind} file {file_id} ({facts['filename']!r})")
    metadata = facts["metadata"]
    if not report.check(metadata is not None, f"{kind}: extracted and materialized"):
        return
    page.goto(f"{base}/assets/{ASSET}?view=partitions&partition={file_id}")
    page.get_by_text("Materialized", exact=True).first.wait_for(timeout=60_000)
    shows(page, "sha256", 30_000)  # the metadata table is there
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / f"succeeded-{kind}.png"), full_page=True)
    for label, expected in expected_facts(kind, metadata).items():
        row = metadata_row(page, label)
        report.check(
            bool(row) and str(expected) in row, f"{kind}: {label} shows {expected!r} ({row.strip()!r})"
        )
    row = metadata_row(page, "metadata")
    if "[Show JSON]" in row:  # a larger JSON opens in a dialog
        page.locator("tr").filter(has_text="[Show JSON]").get_by_text("[Show JSON]").first.click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for(timeout=10_000)
        page.screenshot(path=str(out / f"succeeded-{kind}-json.png"), full_page=True)
        row = dialog.inner_text()
        page.keyboard.press("Escape")
    key = next(iter(metadata))
    report.check(f'"{key}"' in row, f"{kind}: full metadata JSON shown (key {key!r})")
    check_preview(page, kind, facts["preview"], out, report)


def check_preview(page: Any, kind: str, stored: bool, out: Path, report: Report) -> None:
    """A file with a stored preview shows it in the row ``preview``: inline when its Markdown is short
    (a white page compresses to little), else behind ``[Show Markdown]``, which opens a dialog with
    the picture. Either way a data URI image that the browser decoded, 256 px. Without one: no row."""
    row = metadata_row(page, "preview")
    if not stored:
        report.check(not row, f"{kind}: no preview stored, no preview row")
        return
    if not report.check(bool(row), f"{kind}: a preview row"):
        return
    scope = page.locator("tr").filter(has=page.locator("td:first-child", has_text="preview")).first
    where = "inline"
    if "[Show Markdown]" in row:
        scope.get_by_text("[Show Markdown]").first.click()
        scope = page.get_by_role("dialog")
        scope.wait_for(timeout=10_000)
        where = "in the [Show Markdown] dialog"
    scope.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / f"succeeded-{kind}-preview.png"))
    sizes = scope.locator("img").evaluate_all(
        "images => images.filter(i => i.src.startsWith('data:image/png;base64,'))"
        ".map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    if where != "inline":
        page.keyboard.press("Escape")
    report.check(
        len(sizes) == 1 and sizes[0][0] and max(sizes[0][1], sizes[0][2]) == 256,
        f"{kind}: the 256 px preview is shown {where} ({sizes})",
    )


def run_browser(base: str, deployment: dict[str, Any], out: Path, chromium: str, report: Report) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.set_default_timeout(30_000)
            # The "Join the Dagster community" dialog (shown once on localhost) would cover the page.
            page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
            files, facts = deployment["files"], deployment["facts"]
            check_failed_partition(page, base, files["broken"], facts["broken"], out, report)
            check_refailed_partition(page, base, files["refailed"], facts["refailed"], out, report)
            for kind in ("pdf", "dxf", "dwg", "ifc", "step"):
                check_succeeded_partition(page, base, kind, files[kind], facts[kind], out, report)
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "ui-check", help="folder of the screenshots"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary")
    parser.add_argument("--keep", action="store_true", help="keep the temporary deployment")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the webserver to come up")
    args = parser.parse_args()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("Playwright is missing: pip install playwright", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium}: apt-get install -y chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ui-check-"))
    env = deployment_env(root)
    report = Report()
    server = None
    try:
        print(f"deployment in {root}")
        deployment = build_deployment(root, env)
        port = free_port()
        log = root / "webserver.log"
        server = start_webserver(env, port, log)
        wait_for_webserver(server, port, log, args.timeout)
        print(f"dagster-webserver on http://127.0.0.1:{port}")
        run_browser(f"http://127.0.0.1:{port}", deployment, args.out, args.chromium, report)
    except Exception as exc:  # noqa: BLE001 - reported, the exit code says the check did not finish
        print(f"the check could not finish: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2 if not report.passed and not report.failed else 1
    finally:
        if server is not None:
            stop_webserver(server)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"\n{len(report.passed)} check(s) passed, {len(report.failed)} failed; screenshots in {args.out.resolve()}"
    )
    for what in report.failed:
        print(f"  FAILED: {what}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
