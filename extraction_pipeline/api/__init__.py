"""The HTTP API (``extraction-pipeline serve``): FastAPI routes over ``extraction_pipeline.service``.

Only ``cli/serve.py`` imports this package, so no other command and not the Dagster code location
loads FastAPI.
"""
