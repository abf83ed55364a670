"""Each extractor's version, for readers that must not import the format modules.

The versions are set in the table of formats (``format_table.py``, ``FormatSpec.version``): bump a
format's version there when its output changes. The asset's code version follows these, so the UI
marks the partitions extracted before as stale and ``backfill --outdated`` finds them. The code
location reads them on every load; ``format_table`` imports only the standard library.
"""

from extraction_pipeline.extraction.format_table import EXTRACTOR_VERSIONS

__all__ = ["EXTRACTOR_VERSIONS"]
