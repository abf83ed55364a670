"""Importing this module adds the toy format to the table: what a worker pool preloads to know it."""

from extraction_pipeline.extraction.format_table import find, register_format
from extraction_pipeline_tests.extraction.toy_format import SPEC

if find(SPEC.name) is None:
    register_format(SPEC)
