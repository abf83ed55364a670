"""Re-extraction after an upgrade: the asset's code version follows the extractors' versions."""

from __future__ import annotations

import dagster as dg
import pytest

from extraction_pipeline.extraction.formats import pdf
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS
from extraction_pipeline.orchestration.assets import ASSET_KEY, build_extraction_asset, extractor_code_version
from extraction_pipeline_tests.orchestration.conftest import App, make_pdf, run


def test_the_code_version_changes_when_any_extractor_version_changes(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = extractor_code_version()
    assert build_extraction_asset(app.settings()).code_versions_by_key[ASSET_KEY] == before
    monkeypatch.setitem(EXTRACTOR_VERSIONS, "dxf", "99.0.0")  # a release bumps it in versions.py
    after = extractor_code_version()
    assert after != before
    assert build_extraction_asset(app.settings()).code_versions_by_key[ASSET_KEY] == after


def test_partitions_of_an_older_extractor_are_outdated_and_selected_again(
    app: App, instance: dg.DagsterInstance
) -> None:
    from extraction_pipeline.extraction.registry import extractor_versions
    from extraction_pipeline.persistence.models import CloudFileMetadata

    old_file = app.upload("old.pdf", make_pdf(pages=1))
    new_file = app.upload("new.pdf", make_pdf(pages=2))
    assert run(app, instance, [old_file]).success
    assert run(app, instance, [new_file]).success
    event = instance.get_latest_materialization_event(ASSET_KEY)
    assert event is not None
    assert event.asset_materialization.tags["dagster/code_version"] == extractor_code_version()

    # old.pdf was extracted by the previous release of the PDF extractor.
    with app.repository.sessions.begin() as session:
        session.get(CloudFileMetadata, old_file).extractor_version = "0.9.0"
    assert app.repository.metadata_for(new_file).extractor_version == pdf.VERSION

    # What `backfill --outdated` selects: only the file of the older extractor.
    assert app.repository.ids_by_filter(outdated=extractor_versions()) == [old_file]
    assert run(app, instance, [old_file]).success
    assert app.repository.metadata_for(old_file).extractor_version == pdf.VERSION
    assert app.repository.ids_by_filter(outdated=extractor_versions()) == []
