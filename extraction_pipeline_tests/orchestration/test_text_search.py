"""Through the asset: a run stores each file's text, a copy gets its source's text, search finds them."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from extraction_pipeline.samples import pdf_bytes
from extraction_pipeline_tests.orchestration.conftest import App, run


def dxf_bytes(tmp_path: Path, *texts: str) -> bytes:
    import ezdxf

    doc = ezdxf.new("R2018")
    msp = doc.modelspace()
    for number, text in enumerate(texts):
        msp.add_text(text, dxfattribs={"insert": (0, number * 10)})
    path = tmp_path / "plan.dxf"
    doc.saveas(path)
    return path.read_bytes()


def test_a_run_stores_the_text_and_search_finds_it(
    any_app: App, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    housing = pdf_bytes(1, text="Pump housing P-4711-B, cast iron", outline=())
    pdf = any_app.upload("housing.pdf", housing)
    dxf = any_app.upload("plan.dxf", dxf_bytes(tmp_path, "GROUND FLOOR PLAN", "Pump room"))
    assert run(any_app, instance, [pdf, dxf], resource=any_app.resource(isolated=True, max_retries=0)).success
    assert [any_app.status(i)["status"] for i in (pdf, dxf)] == ["succeeded", "succeeded"]

    repository = any_app.repository
    assert [hit.id for hit in repository.search("P-4711-B")] == [pdf]
    assert [hit.id for hit in repository.search('"ground floor"', fmt="dxf")] == [dxf]
    assert {hit.id for hit in repository.search("pump")} == {pdf, dxf}
    [hit] = repository.search("cast iron")
    assert (hit.filename, hit.format) == ("housing.pdf", "pdf") and "[cast]" in hit.snippet
    stored = repository.text_of(dxf)
    assert stored is not None and stored.text == "GROUND FLOOR PLAN\nPump room" and not stored.truncated
    # The attempt's result keeps the metadata summary, not the text.
    [job] = repository.jobs_for(pdf)
    assert "text" not in (job.result or {})

    # The same bytes again: deduplicated at detection, the text copied with the metadata.
    copy = any_app.upload("housing (copy).pdf", housing)
    repository.queue_files([copy])  # as the sensor does
    assert run(any_app, instance, [copy]).success
    assert any_app.status(copy)["deduplicated_from"] == pdf
    assert {hit.id for hit in repository.search("P-4711-B")} == {pdf, copy}


def test_no_text_is_stored_when_the_limit_is_zero(
    app: App, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACTION_MAX_TEXT_CHARS", "0")  # read by the resource, as in a deployment
    pdf = app.upload("a.pdf", pdf_bytes(1, text="nothing to keep", outline=()))
    assert run(app, instance, [pdf], resource=app.resource(isolated=False, max_retries=0)).success
    assert app.status(pdf)["status"] == "succeeded"
    assert app.repository.text_of(pdf) is None
