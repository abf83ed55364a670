"""DWG content with ezdwg: layer names and model-space entity counts (R13 and newer)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

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


def read_content(path: Path, warnings: list[str]) -> tuple[list[str] | None, dict[str, int]]:
    """Layer names and model-space entity counts (DXF type names) with ezdwg."""
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
