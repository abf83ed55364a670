"""Each extractor's version, in a module that imports nothing.

Bump a format's version when its output changes: the asset's code version follows these, so the
UI marks the partitions extracted before as stale and ``backfill --outdated`` finds them. The code
location reads them on every load, without importing the format modules.
"""

EXTRACTOR_VERSIONS: dict[str, str] = {
    "pdf": "1.0.0",
    "dxf": "1.0.0",
    "dwg": "1.0.0",
    "ifc": "1.0.0",
    "step": "1.0.0",
}
