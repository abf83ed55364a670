"""The code location: assembles ``dg.Definitions`` from the orchestration layer, nothing else."""

from __future__ import annotations

import dagster as dg

from extraction_pipeline.orchestration.assets import build_extraction_asset, build_extraction_job
from extraction_pipeline.orchestration.housekeeping import build_housekeeping_sensor
from extraction_pipeline.orchestration.resources import ExtractionResource
from extraction_pipeline.orchestration.sensors import (
    build_upload_sensor,
    extraction_cancellations,
    extraction_failure_alerts,
)
from extraction_pipeline.settings import Settings


def build_definitions(
    settings: Settings | None = None, extraction: ExtractionResource | None = None
) -> dg.Definitions:
    settings = settings or Settings.from_env()
    asset = build_extraction_asset(settings)
    job = build_extraction_job(asset)
    return dg.Definitions(
        assets=[asset],
        jobs=[job],
        sensors=[
            build_upload_sensor(job, settings),
            extraction_failure_alerts,
            extraction_cancellations,
            build_housekeeping_sensor(settings),
        ],
        resources={"extraction": extraction or ExtractionResource()},
        executor=dg.in_process_executor,
    )


defs = build_definitions()
