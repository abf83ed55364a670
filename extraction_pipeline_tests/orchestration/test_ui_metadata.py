"""What the Dagster UI shows on a file's partition: why a file failed, and the facts of a good one.

Dagster 1.13 shows, on a partition of ``cloud_file_metadata``, the metadata of the partition's
latest materialization and its event history (materializations and observations); a failure's own
metadata appears only in the run log, and open-source storage drops "failed to materialize"
events. So a failed file is reported by an ``AssetObservation`` on its partition. These tests read
it back through the instance's public API and through the webserver's GraphQL, with the query the
partition page sends (``AssetPartitionDetailQuery``, trimmed to the fields asserted).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from extraction_pipeline.orchestration.assets import ASSET_KEY
from extraction_pipeline.orchestration.notify import notify
from extraction_pipeline.orchestration.sensors import extraction_failure_alerts
from extraction_pipeline.samples import write_samples
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run, webhook_receiver

BROKEN_NAME = "broken [v2] bracket.step"  # Markdown punctuation: no backslash may show up
# A PDF header over garbage: corrupt (content of no supported format would be skipped, not failed).
BROKEN_BYTES = b"%PDF-1.4\nthis is not a drawing, a model or a document\n" * 10


def observations(instance: dg.DagsterInstance, file_id: int) -> list[dg.AssetObservation]:
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[str(file_id)]), limit=10
    ).records
    return [record.asset_observation for record in records]


def latest_materialization(instance: dg.DagsterInstance, file_id: int) -> dg.AssetMaterialization:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[str(file_id)]), limit=1
    ).records
    assert records, f"file {file_id} was not materialized"
    return records[0].asset_materialization


def values(metadata: dict[str, dg.MetadataValue]) -> dict[str, Any]:
    return {label: value.value for label, value in metadata.items()}


def step_failure_description(instance: dg.DagsterInstance, run_id: str) -> str:
    failure = next(
        e.dagster_event
        for e in instance.all_logs(run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"
    )
    return failure.step_failure_data.user_failure_data.description


# --------------------------------------------------------------------------------------------
# Failed files
# --------------------------------------------------------------------------------------------


def test_a_failed_file_partition_carries_its_name_code_and_message(
    app: App, instance: dg.DagsterInstance
) -> None:
    good = app.upload("fine.pdf", make_pdf(pages=1))
    bad = app.upload(BROKEN_NAME, BROKEN_BYTES)
    result = run(app, instance, [good, bad])
    assert not result.success
    error = app.status(bad)["error"]
    assert error["code"] == "corrupt" and error["message"]

    [observation] = observations(instance, bad)
    shown = values(observation.metadata)
    assert shown["file"] == BROKEN_NAME  # verbatim: plain text, no Markdown escape
    assert shown["status"] == "failed" and shown["error_kind"] == "permanent"
    assert shown["error_code"] == "corrupt"
    assert shown["error_message"] == error["message"]
    assert all(isinstance(observation.metadata[k], dg.TextMetadataValue) for k in ("file", "error_message"))
    assert "hint" not in shown  # the file's fault: no installation hint
    assert "corrupt" in (observation.description or "")
    assert BROKEN_NAME not in (observation.description or "")  # no file value in Markdown-rendered text
    # The good file of the batch has no failure observation; the bad one is not materialized.
    assert observations(instance, good) == []
    assert instance.get_materialized_partitions(ASSET_KEY) == {str(good)}

    # The run log's failure reads cleanly: the name quoted, no backslash escapes, the reason given.
    description = step_failure_description(instance, result.run_id)
    assert f"file {bad} `{BROKEN_NAME}`: corrupt: {error['message']}" in description
    assert "\\" not in description


def test_an_extractor_error_blames_the_installation_on_the_partition_and_in_the_alert(
    app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyMuPDF cannot be imported: the file is not at fault, the partition and the alert say so."""
    file_id = app.upload("spec.pdf", make_pdf(pages=1))
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "pymupdf", None)  # `import pymupdf` raises ImportError
        result = run(app, instance, [file_id], resource=app.resource(isolated=False, max_retries=0))
    assert not result.success
    error = app.status(file_id)["error"]
    assert error["code"] == "extractor_error"
    [observation] = observations(instance, file_id)
    shown = values(observation.metadata)
    assert shown["file"] == "spec.pdf" and shown["error_code"] == "extractor_error"
    assert shown["error_message"] == error["message"]
    assert "extraction-pipeline doctor" in shown["error_message"] + shown.get("hint", "")

    with webhook_receiver() as (port, received):
        monkeypatch.setenv("EXTRACTION_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{port}/hook")
        run_record = instance.get_run_by_id(result.run_id)
        event = next(
            e.dagster_event
            for e in instance.all_logs(result.run_id)
            if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE
        )
        with dg.build_run_status_sensor_context(
            sensor_name="extraction_failure_alerts",
            dagster_event=event,
            dagster_instance=instance,
            dagster_run=run_record,
            resources={"extraction": app.resource()},
        ) as context:
            extraction_failure_alerts(context.for_run_failure())
    [alert] = received
    [file] = alert["body"]["files"]
    assert file["id"] == file_id and file["error"]["code"] == "extractor_error"
    assert "installation or the extractor" in file["hint"] and "not the file" in file["hint"]
    assert "extraction-pipeline doctor" in file["hint"]
    assert str(file_id) in alert["body"]["hint"] and "extraction-pipeline doctor" in alert["body"]["hint"]


def test_alert_wording_blames_the_installation_only_for_extractor_errors() -> None:
    def error(code: str) -> dict[str, str]:
        return {"kind": "permanent", "code": code, "message": f"{code} happened"}

    files = [
        {"id": 1, "filename": "a.pdf", "format": "pdf", "error": error("corrupt")},
        {"id": 2, "filename": "b.dxf", "format": "dxf", "error": error("extractor_error")},
        {"id": 3, "filename": "c.ifc", "format": "ifc", "error": error("unsupported_format")},
    ]
    with webhook_receiver() as (port, received):
        assert notify({"event": "extraction_failed", "files": files}, f"http://127.0.0.1:{port}/")
        assert notify({"event": "extraction_failed", "files": [files[0]]}, f"http://127.0.0.1:{port}/")
    mixed, plain = (item["body"] for item in received)
    assert [f.get("hint") is not None for f in mixed["files"]] == [False, True, False]
    assert mixed["files"][0] == files[0] and mixed["files"][2] == files[2]  # their wording is kept
    hint = mixed["files"][1]["hint"]
    assert "installation or the extractor" in hint and "not the file" in hint
    assert "`extraction-pipeline doctor`" in hint
    assert mixed["hint"].startswith("extractor_error for file(s) 2:")
    assert plain == {"event": "extraction_failed", "files": [files[0]]}  # no hint at all


# --------------------------------------------------------------------------------------------
# Succeeded files: key facts per format, full metadata
# --------------------------------------------------------------------------------------------


@pytest.fixture
def samples(app: App, tmp_path: Path) -> dict[str, int]:
    """One sample per format, uploaded: format -> file id."""
    paths = write_samples(tmp_path / "samples")
    ids = {}
    for path in paths:
        ids[path.suffix.lstrip(".")] = app.upload(path.name, path.read_bytes())
    assert set(ids) == {"pdf", "dxf", "dwg", "ifc", "step"}
    return ids


def expected_facts(fmt: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The key facts each format must show, computed from the stored metadata (independently)."""
    if fmt == "pdf":
        return {
            "title": stored["title"],
            "author": stored["author"],
            "pdf_version": stored["pdf_version"],
            "pages": stored["page_count"],
        }
    if fmt in ("dxf", "dwg"):
        version = stored[f"{fmt}_version"]
        facts = {
            "version": f"{version} ({stored['release']})" if stored.get("release") else version,
            "layer_names": ", ".join(stored["layer_names"]),
            "layers": len(stored["layer_names"]),
        }
        if "units" in stored:
            facts["units"] = stored["units"] or "(none)"
        return facts
    if fmt == "ifc":
        return {
            "schema": stored["schema"],
            "project": stored["project_name"],
            "storeys": ", ".join(stored["storeys"]),
            "storey_count": len(stored["storeys"]),
        }
    assert fmt == "step"
    low, high = stored["bbox_mm"]["min"], stored["bbox_mm"]["max"]
    return {
        "volume_mm3": round(stored["volume_mm3"], 1),
        "part_count": sum(1 for _ in _parts(stored["parts"])) or len(stored["parts"]),
        "bbox_mm": " x ".join(f"{b - a:g}" for a, b in zip(low, high, strict=True)),
    }


def _parts(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        if node.get("kind") == "part":
            yield node
        yield from _parts(node.get("children") or [])


def test_each_format_materializes_its_key_facts_and_the_full_metadata_json(
    app: App, instance: dg.DagsterInstance, samples: dict[str, int]
) -> None:
    result = run(app, instance, sorted(samples.values()))
    assert result.success
    for fmt, file_id in samples.items():
        stored = app.repository.metadata_for(file_id).metadata_
        materialization = latest_materialization(instance, file_id)
        shown = values(materialization.metadata)
        assert shown["format"] == fmt and shown["file"] == app.repository.get_file(file_id).filename
        for label, expected in expected_facts(fmt, stored).items():
            if label == "bbox_mm":
                assert shown[label].startswith(f"{expected} mm"), (fmt, label, shown[label])
            else:
                assert shown[label] == expected, (fmt, label, shown.get(label))
        # The full metadata, as JSON metadata (the UI's JSON viewer): all of it, equal to the row.
        assert isinstance(materialization.metadata["metadata"], dg.JsonMetadataValue)
        assert shown["metadata"] == stored
        assert "summary" in shown and "fact" in shown["summary"]
    # The samples have the facts the UI is meant to show (not just empty values).
    pdf = values(latest_materialization(instance, samples["pdf"]).metadata)
    assert pdf["title"] != "(none)" and pdf["author"] != "(none)"
    dxf = values(latest_materialization(instance, samples["dxf"]).metadata)
    assert dxf["units"] == "mm" and "WALLS" in dxf["layer_names"]
    ifc = values(latest_materialization(instance, samples["ifc"]).metadata)
    assert ifc["storey_count"] >= 1 and ifc["project"] != "(none)"
    step = values(latest_materialization(instance, samples["step"]).metadata)
    assert step["volume_mm3"] > 0 and step["parts"] != "(none)"


def test_facts_from_the_file_are_plain_text_and_escaped_in_the_markdown_summary(
    app: App, instance: dg.DagsterInstance
) -> None:
    import pymupdf
    from markdown_it import MarkdownIt

    title = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) *t* | # x"
    document = pymupdf.open()
    document.new_page().insert_text((72, 72), "hello")
    document.set_metadata({"title": title, "author": "a_b_c"})
    file_id = app.upload("titled.pdf", document.tobytes())
    document.close()
    assert run(app, instance, [file_id]).success
    metadata = latest_materialization(instance, file_id).metadata
    assert metadata["title"] == dg.MetadataValue.text(title)  # verbatim: the UI shows text as text
    assert metadata["author"].value == "a_b_c"
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(metadata["summary"].value)
    assert "<img" not in html and "<a " not in html and "<em>" not in html and "<h1>" not in html, html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_huge_metadata_is_shortened_for_the_ui_and_stays_valid_json() -> None:
    from extraction_pipeline.orchestration.summary import MAX_METADATA_JSON_CHARS, bounded_metadata

    small = {"layer_names": ["0", "WALLS"], "entity_counts": {"LINE": 3}}
    assert bounded_metadata(small) is small
    huge = {"layer_names": [f"layer {i:06d}" for i in range(100_000)], "units": "mm"}
    shown = bounded_metadata(huge)
    assert len(json.dumps(shown)) <= MAX_METADATA_JSON_CHARS
    assert shown["units"] == "mm" and shown["layer_names"] == huge["layer_names"][: len(shown["layer_names"])]
    assert "layer_names" in shown["_truncated"] and "cloud_file_metadata" in shown["_truncated"]


# --------------------------------------------------------------------------------------------
# What the webserver serves to the partition page
# --------------------------------------------------------------------------------------------

PARTITION_QUERY = """
query AssetPartitionDetailQuery($assetKey: AssetKeyInput!, $partitionKey: String!) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset {
      definition {
        latestRunForPartition(partition: $partitionKey) { id status }
      }
      assetEventHistory(
        partitions: [$partitionKey]
        limit: 1000
        eventTypeSelectors: [MATERIALIZATION, OBSERVATION, FAILED_TO_MATERIALIZE]
      ) {
        results {
          __typename
          ... on MaterializationEvent { runId partition description metadataEntries { ...Entry } }
          ... on ObservationEvent { runId partition description metadataEntries { ...Entry } }
        }
      }
    }
  }
}
fragment Entry on MetadataEntry {
  __typename
  label
  ... on TextMetadataEntry { text }
  ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr }
  ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatValue }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        document = json.loads(response.read())
    assert not document.get("errors"), document["errors"]
    return document["data"]


@pytest.fixture
def webserver(app: App, instance: dg.DagsterInstance, tmp_path: Path) -> Iterator[int]:
    """``dagster-webserver`` on the test instance and the app's database; yields its port."""
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(instance.root_directory),
        "EXTRACTION_HOME": str(tmp_path / "home"),
        "EXTRACTION_DATABASE_URL": app.url,
        "EXTRACTION_STORAGE_URL": app.storage_url,
        "DAGSTER_DISABLE_TELEMETRY": "yes",
    }
    log = tmp_path / "webserver.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-m", "extraction_pipeline.definitions"]
            + ["-h", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server child is in the same group, stopped with it
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"dagster-webserver exited ({server.returncode}):\n{log.read_text()[-4000:]}")
            try:
                node = graphql(
                    port,
                    "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { __typename } }",
                    {"k": {"path": ASSET_KEY.path}},
                )
                if node["assetNodeOrError"]["__typename"] == "AssetNode":  # the code location loaded
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver did not serve the asset:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield port
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def partition_page(port: int, file_id: int) -> dict[str, Any]:
    data = graphql(
        port, PARTITION_QUERY, {"assetKey": {"path": ASSET_KEY.path}, "partitionKey": str(file_id)}
    )
    return data["assetOrError"]


def entries(event: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for entry in event["metadataEntries"]:
        kind = entry["__typename"]
        shown[entry["label"]] = (
            entry.get("text")
            if kind == "TextMetadataEntry"
            else json.loads(entry["jsonString"])
            if kind == "JsonMetadataEntry"
            else entry.get("mdStr")
            if kind == "MarkdownMetadataEntry"
            else int(entry["intRepr"])
            if kind == "IntMetadataEntry"
            else entry.get("floatValue")
        )
        shown[f"{entry['label']}:type"] = kind
    return shown


def test_the_webserver_serves_the_failure_and_the_facts_to_the_partition_page(
    app: App, instance: dg.DagsterInstance, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    paths = write_samples(tmp_path / "samples")
    pdf = next(p for p in paths if p.suffix == ".pdf")
    good = app.upload(pdf.name, pdf.read_bytes())
    bad = app.upload(BROKEN_NAME, BROKEN_BYTES)
    assert run(app, instance, [good]).success
    assert not run(app, instance, [bad]).success
    port = request.getfixturevalue("webserver")
    message = app.status(bad)["error"]["message"]

    failed = partition_page(port, bad)
    assert failed["__typename"] == "Asset"
    assert failed["definition"]["latestRunForPartition"]["status"] == "FAILURE"  # the page's banner
    events = failed["assetEventHistory"]["results"]
    assert [e["__typename"] for e in events] == ["ObservationEvent"]  # "View all historical events (1)"
    shown = entries(events[0])
    assert shown["file"] == BROKEN_NAME and shown["file:type"] == "TextMetadataEntry"
    assert shown["error_code"] == "corrupt"
    assert shown["error_message"] == message and shown["error_message:type"] == "TextMetadataEntry"
    assert events[0]["partition"] == str(bad)

    succeeded = partition_page(port, good)
    assert succeeded["definition"]["latestRunForPartition"]["status"] == "SUCCESS"
    [event] = [
        e for e in succeeded["assetEventHistory"]["results"] if e["__typename"] == "MaterializationEvent"
    ]
    shown = entries(event)
    stored = app.repository.metadata_for(good).metadata_
    assert shown["title"] == stored["title"] and shown["author"] == stored["author"]
    assert shown["pdf_version"] == stored["pdf_version"] and shown["pages"] == stored["page_count"]
    assert shown["metadata"] == stored and shown["metadata:type"] == "JsonMetadataEntry"


# --------------------------------------------------------------------------------------------
# A terminated run names the files that ended cancelled
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cancelled_first", [True, False], ids=["cli-cancel", "ui-terminate"])
def test_a_terminated_run_names_the_cancelled_file(
    app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, cancelled_first: bool
) -> None:
    """The run is terminated while its file is extracted (the worker hangs).

    ``extraction-pipeline cancel`` marks the file cancelled and then terminates the run (a SIGINT
    reaches the run, as Dagster's run launcher sends it); the UI's *Terminate* only terminates.
    Either way the log line and the failure name the file, not ``files []``.
    """
    monkeypatch.setenv("EXTRACTION_FAULT_INJECTION", "1")  # "hang" files make the worker sleep
    monkeypatch.setenv("EXTRACTION_TIMEOUT_S", "60")
    name = "stuck <plan>.pdf"
    file_id = app.upload(name, b"EXTRACTION-FAULT:hang\n%PDF-1.7\n")
    terminated = threading.Event()

    def terminate_when_extracting() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = app.repository.jobs_for(file_id)
            if jobs and jobs[-1].status == "running":
                time.sleep(1.0)  # well inside the extraction call
                if cancelled_first:
                    app.repository.cancel_files([file_id])
                terminated.set()
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=terminate_when_extracting, daemon=True)
    thread.start()
    result = run(app, instance, [file_id])
    thread.join(5)
    assert terminated.is_set() and not result.success
    assert app.status(file_id)["status"] == "cancelled"
    assert [j.status for j in app.repository.jobs_for(file_id)] == ["cancelled"]
    logged = [
        entry.user_message for entry in instance.all_logs(result.run_id) if "terminated" in entry.user_message
    ]
    expected = f"the run was terminated: 1 file(s) cancelled: {file_id} `{name}`"
    assert expected in logged, logged
    assert "files []" not in " ".join(logged)
    assert step_failure_description(instance, result.run_id) == expected
