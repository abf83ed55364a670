"""DWG content with ezdwg: layer names, model-space entity counts and text (R13 and newer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.text import TextCollector

# Releases whose content ezdwg reads.
EZDWG_VERSIONS = frozenset({"AC1012", "AC1014", "AC1015", "AC1018", "AC1021", "AC1024", "AC1027", "AC1032"})

# Entity types ezdwg lists that are not model-space entities of their own in DXF terms.
_SUBENTITY_TYPES = frozenset(
    {"ATTRIB", "SEQEND", "VERTEX_2D", "VERTEX_3D", "VERTEX_MESH", "VERTEX_PFACE", "VERTEX_PFACE_FACE"}
)
_NOT_ENTITIES = frozenset({"BLOCK", "ENDBLK"})
_DXF_TYPE_NAMES = {
    "POLYLINE_2D": "POLYLINE",
    "POLYLINE_3D": "POLYLINE",
    "POLYLINE_MESH": "POLYLINE",
    "POLYLINE_PFACE": "POLYLINE",
}


def read_content(
    path: Path, warnings: list[str], text: TextCollector | None = None
) -> tuple[list[str] | None, dict[str, int]]:
    """Layer names and model-space entity counts (DXF type names) with ezdwg; ``text`` gets the
    drawing's text (``collect_text``)."""
    import ezdwg  # lazy: native extension

    ezdwg.clear_decode_caches()  # its caches are keyed by path; a reused path must not see old data
    try:
        document = ezdwg.read(str(path))
        layers = [(int(handle), str(name or "")) for handle, name in ezdwg.raw.decode_layer_names(str(path))]
        counts: Counter[str] = Counter()
        for entity in document.modelspace().query(include_styles=False):
            kind = str(entity.dxftype).upper()
            if kind in _SUBENTITY_TYPES or kind in _NOT_ENTITIES:
                continue
            if kind.startswith("DIM_"):
                kind = "DIMENSION"
            counts[_DXF_TYPE_NAMES.get(kind, kind)] += 1
        if text is not None:
            collect_text(document, text)
    finally:
        ezdwg.clear_decode_caches()
    layer_names: list[str] | None = [name for _, name in layers]
    if not layers or any(not name for _, name in layers):
        missing = sum(1 for _, name in layers if not name)
        warnings.append(
            f"the layer names could not be decoded ({missing} of {len(layers)} empty); layer_names is null"
            if layers
            else "no layer could be decoded; layer_names is null"
        )
        layer_names = None
    return layer_names, dict(sorted(counts.items()))


# Entities whose ``text`` ezdwg decodes: TEXT, MTEXT (already plain), and attribute values.
_TEXT_TYPES = frozenset({"TEXT", "MTEXT", "ATTRIB", "ATTDEF"})


def collect_text(document: Any, text: TextCollector) -> None:
    """What is written on the drawing: modelspace first, then paperspace, then the block
    definitions (every other entity of the file), each entity once; dimension text overrides too.
    One entity that cannot be read loses its own text, nothing more."""
    seen: set[Any] = set()
    for layout in (document.modelspace(), document.paperspace(), document.entities()):
        _entities(layout.query(include_styles=False), seen, text)
        if text.full:
            return


def _entities(entities: Iterable[Any], seen: set[Any], text: TextCollector) -> None:
    for entity in entities:
        if text.full:
            return
        try:
            handle = entity.handle
            if handle in seen:
                continue
            seen.add(handle)
            kind = str(entity.dxftype).upper()
            value = entity.dxf.get("text")
            if not isinstance(value, str):
                continue
            if kind in _TEXT_TYPES:
                text.add(value)
            elif (kind == "DIMENSION" or kind.startswith("DIM_")) and value.strip() not in ("", "<>"):
                text.add(value.replace("<>", " "))  # an override; "<>" stands for the measurement
        except Exception:  # noqa: BLE001, S112 - a damaged entity loses its own text
            continue
