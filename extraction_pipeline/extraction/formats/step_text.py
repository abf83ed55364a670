"""The plain text of a STEP file: the names and descriptions of its products, for search.

A STEP assembly names each part and sub-assembly in a ``PRODUCT('id', 'name', 'description',
(...))`` instance of its data section; that is what people look a model up by (a part number, an
assembly's name). Read with a byte scan of the file (memory-mapped: a 500 MB file is not loaded),
in file order, each distinct string once, STEP string escapes (``\\X2\\...``) decoded. No geometry
kernel is needed, so the text is there even when OpenCascade cannot read the shapes.
"""

from __future__ import annotations

import mmap
import re
from pathlib import Path

from extraction_pipeline.extraction.formats.step_header import decode_step_string
from extraction_pipeline.extraction.text import TextCollector

_STRING = rb"'((?:[^']|'')*)'"
# PRODUCT itself, not PRODUCT_DEFINITION & co.: the name stands alone after '=' or '(' (complex
# instances), followed by its three string attributes.
_PRODUCT = re.compile(
    rb"(?<![A-Za-z0-9_])PRODUCT\s*\(\s*" + _STRING + rb"\s*,\s*" + _STRING + rb"\s*,\s*" + _STRING,
    re.IGNORECASE,
)


def collect_text(path: Path, collector: TextCollector) -> None:
    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for match in _PRODUCT.finditer(data):  # type: ignore[call-overload]
                identifier, name, description = (decode_step_string(group) for group in match.groups())
                for piece in (name, identifier, description):
                    collector.add(piece, unique=True)
                if collector.full:
                    return
