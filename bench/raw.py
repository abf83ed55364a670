"""The raw loops: the libraries called directly on a file, reading the facts the project reports.

``raw_<fmt>(path)`` makes the same library calls as the project's extractor (PyMuPDF, ezdxf, ezdwg,
ifcopenshell, OCP XCAF) in this process; ``raw_loop_s`` times them over a list of files.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _pymupdf() -> Any:
    if "pymupdf" not in sys.modules:  # the layout add-on is never used (as in the project)
        sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
    import pymupdf

    return pymupdf


def raw_pdf(path: Path) -> dict[str, Any]:
    pymupdf = _pymupdf()
    flags = (pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_LIGATURES) | pymupdf.TEXT_PRESERVE_IMAGES
    with pymupdf.open(str(path), filetype="pdf") as doc:
        if doc.needs_pass and not doc.authenticate(""):
            raise ValueError("password needed")
        info = doc.metadata or {}
        sizes: Counter[tuple[float, float]] = Counter()
        chars = empty = images = annots = 0
        for page in doc:
            box = page.cropbox
            sizes[(round(abs(box.width), 1), round(abs(box.height), 1))] += 1
            textpage = page.get_textpage(flags=flags)
            count = len("".join(textpage.extractText().split()))
            images += sum(2 if i.get("has-mask") else 1 for i in textpage.extractIMGINFO())
            chars += count
            empty += count == 0
            annots += len(page.annot_xrefs())
        return {
            "pdf_version": info.get("format"),
            "page_count": doc.page_count,
            "encrypted": bool(info.get("encryption")),
            "needs_password": False,
            **{k: info.get(k) for k in ("title", "author", "subject", "keywords", "creator", "producer")},
            "created_at": info.get("creationDate"),
            "modified_at": info.get("modDate"),
            "page_sizes_pt": [{"size": list(s), "count": n} for s, n in sizes.most_common()],
            "text_chars": chars,
            "pages_without_text": empty,
            "image_count": images,
            "has_forms": bool(doc.is_form_pdf),
            "toc_entries": doc.get_toc(simple=True),
            "annotation_count": annots,
            "repaired": bool(doc.is_repaired),
        }


def raw_dxf(path: Path) -> dict[str, Any]:
    import ezdxf
    from ezdxf import bbox, recover

    auditor = None
    try:
        doc = ezdxf.readfile(path)
    except Exception:
        doc, auditor = recover.readfile(path)
    msp = doc.modelspace()
    counts = Counter(entity.dxftype() for entity in msp)
    extents = bbox.extents(msp)
    attributes: dict[str, str] = {}
    for name in doc.layouts.names_in_taborder():
        for insert in doc.layouts.get(name).query("INSERT"):
            for attrib in insert.attribs:
                attributes.setdefault(attrib.dxf.tag, attrib.dxf.text)
    with path.open("rb") as handle:
        binary = handle.read(22) == b"AutoCAD Binary DXF\r\n\x1a\x00"
    return {
        "dxf_version": doc.dxfversion,
        "release": doc.acad_release,
        "binary": binary,
        "units": doc.units,
        "layer_names": [layer.dxf.name for layer in doc.layers],
        "block_names": [b.name for b in doc.blocks if not b.is_any_layout and not b.name.startswith("*")],
        "layout_names": doc.layouts.names_in_taborder(),
        "entity_counts": dict(counts),
        "extents": {"min": list(extents.extmin), "max": list(extents.extmax)} if extents.has_data else None,
        "text_count": counts["TEXT"] + counts["MTEXT"] + sum(len(i.attribs) for i in msp.query("INSERT")),
        "title_block_attributes": attributes,
        "recovered": auditor is not None,
        "audit_fixes": len(auditor.fixes) if auditor is not None else 0,
    }


def raw_dwg(path: Path) -> dict[str, Any]:
    """ezdwg reads the version, the layers and the entities. It has no reader for the codepage or the
    drawing properties (SummaryInfo from R2004, the DWGPROPS xrecord before), so those come from the
    project's own header reader, as in the extractor."""
    import ezdwg

    from extraction_pipeline.extraction.formats.dwg import EZDWG_VERSIONS, read_header, read_properties

    size = path.stat().st_size
    with path.open("rb") as handle:
        header = read_header(handle.read(0x100), size)
    properties = read_properties(path, header, size, [])
    version = ezdwg.raw.detect_version(str(path))
    facts: dict[str, Any] = {
        "dwg_version": version,
        "codepage": header.codepage_number,
        **properties.values,
        "custom_properties": properties.custom,
    }
    if version in EZDWG_VERSIONS:
        ezdwg.clear_decode_caches()  # caches are keyed by path: a real reader cannot rely on them
        try:
            doc = ezdwg.read(str(path))
            facts["layer_names"] = [name for _, name in ezdwg.raw.decode_layer_names(str(path))]
            facts["entity_counts"] = dict(
                Counter(e.dxftype for e in doc.modelspace().query(include_styles=False))
            )
        finally:
            ezdwg.clear_decode_caches()
    return facts


def raw_ifc(path: Path) -> dict[str, Any]:
    import ifcopenshell

    with path.open("rb") as handle:
        zipped = handle.read(4) == b"PK\x03\x04"
    model = ifcopenshell.open(path, format=".ifcZIP" if zipped else ".ifc")
    name = model.header.file_name

    def names(ifc_class: str) -> list[Any]:
        return [e.Name for e in model.by_type(ifc_class)]

    storeys = sorted(
        model.by_type("IfcBuildingStorey"), key=lambda s: (s.Elevation is None, s.Elevation or 0)
    )
    unit = None
    for assignment in model.by_type("IfcUnitAssignment"):
        for item in assignment.Units:
            if getattr(item, "UnitType", None) == "LENGTHUNIT":
                unit = f"{item.Prefix or ''}{item.Name}" if item.is_a("IfcSIUnit") else item.Name
    georeference = None
    if model.schema != "IFC2X3":
        for operation in model.by_type("IfcMapConversion"):
            georeference = {"crs": operation.TargetCRS.Name, "eastings": operation.Eastings}
            georeference["northings"] = operation.Northings
    else:
        for pset in model.by_type("IfcPropertySet"):
            if pset.Name in ("ePSet_MapConversion", "ePSet_ProjectedCRS"):
                georeference = {p.Name: p.NominalValue for p in pset.HasProperties}
    projects = model.by_type("IfcProject")
    return {
        "schema": model.schema,
        "schema_identifier": model.schema_identifier,
        "originating_system": name.originating_system,
        "preprocessor_version": name.preprocessor_version,
        "author": list(name.author),
        "organization": list(name.organization),
        "timestamp": name.time_stamp,
        "project_name": projects[0].Name if projects else None,
        "sites": names("IfcSite"),
        "buildings": names("IfcBuilding"),
        "storeys": [s.Name for s in storeys],
        "element_counts": dict(Counter(p.is_a() for p in model.by_type("IfcProduct"))),
        "property_set_count": len(model.by_type("IfcPropertySet")),
        "length_unit": unit,
        "georeference": georeference,
    }


_STEP_HEADER = re.compile(r"(FILE_NAME|FILE_SCHEMA)\s*\((.*?)\)\s*;", re.S)
_STEP_STRING = re.compile(r"'((?:[^']|'')*)'")


def raw_step(path: Path) -> dict[str, Any]:
    from OCP.Bnd import Bnd_Box
    from OCP.BRepBndLib import BRepBndLib
    from OCP.BRepGProp import BRepGProp
    from OCP.GProp import GProp_GProps
    from OCP.IFSelect import IFSelect_RetDone
    from OCP.STEPCAFControl import STEPCAFControl_Reader
    from OCP.TCollection import TCollection_AsciiString, TCollection_ExtendedString
    from OCP.TColStd import TColStd_SequenceOfAsciiString
    from OCP.TDataStd import TDataStd_Name
    from OCP.TDF import TDF_Label, TDF_LabelSequence
    from OCP.TDocStd import TDocStd_Document
    from OCP.TopAbs import TopAbs_EDGE, TopAbs_FACE, TopAbs_SOLID
    from OCP.TopExp import TopExp
    from OCP.TopTools import TopTools_IndexedMapOfShape
    from OCP.XCAFDoc import XCAFDoc_DocumentTool, XCAFDoc_ShapeTool

    with path.open("rb") as handle:
        head = re.sub(r"/\*.*?\*/", " ", handle.read(256 * 1024).decode("latin-1"), flags=re.S)
    header = {key: _STEP_STRING.findall(body) for key, body in _STEP_HEADER.findall(head)}
    file_name = header.get("FILE_NAME", [])

    doc = TDocStd_Document(TCollection_ExtendedString("MDTV-XCAF"))
    reader = STEPCAFControl_Reader()
    reader.SetNameMode(True)
    if reader.ReadFile(str(path)) != IFSelect_RetDone or not reader.Transfer(doc):
        raise ValueError("OCP cannot read the STEP file")
    lengths, angles, solid_angles = (TColStd_SequenceOfAsciiString() for _ in range(3))
    reader.ChangeReader().FileUnits(lengths, angles, solid_angles)
    tool = XCAFDoc_DocumentTool.ShapeTool_s(doc.Main())

    def label_name(label: Any) -> str | None:
        attribute = TDataStd_Name()
        if label.FindAttribute(TDataStd_Name.GetID_s(), attribute):
            return TCollection_AsciiString(attribute.Get()).ToCString()
        return None

    def tree(label: Any) -> dict[str, Any]:
        node: dict[str, Any] = {"name": label_name(label), "children": []}
        if XCAFDoc_ShapeTool.IsAssembly_s(label):
            components = TDF_LabelSequence()
            XCAFDoc_ShapeTool.GetComponents_s(label, components, False)
            for index in range(1, components.Length() + 1):
                referred = TDF_Label()
                XCAFDoc_ShapeTool.GetReferredShape_s(components.Value(index), referred)
                node["children"].append(tree(referred))
        return node

    roots = TDF_LabelSequence()
    tool.GetFreeShapes(roots)
    parts = [tree(roots.Value(i)) for i in range(1, roots.Length() + 1)]
    shape = tool.GetOneShape()
    maps = {kind: TopTools_IndexedMapOfShape() for kind in (TopAbs_SOLID, TopAbs_FACE, TopAbs_EDGE)}
    for kind, found in maps.items():
        TopExp.MapShapes_s(shape, kind, found)
    volume, area, box = GProp_GProps(), GProp_GProps(), Bnd_Box()
    BRepGProp.VolumeProperties_s(shape, volume)
    BRepGProp.SurfaceProperties_s(shape, area)
    BRepBndLib.Add_s(shape, box)
    corners = box.Get() if not box.IsVoid() else None
    return {
        "file_schema": header.get("FILE_SCHEMA"),
        "file_name": file_name[0] if file_name else None,
        "timestamp": file_name[1] if len(file_name) > 1 else None,
        "originating_system": file_name[-2] if len(file_name) > 2 else None,
        "length_unit": lengths.Value(1).ToCString() if lengths.Length() else None,
        "parts": parts,
        "solid_count": maps[TopAbs_SOLID].Extent(),
        "face_count": maps[TopAbs_FACE].Extent(),
        "edge_count": maps[TopAbs_EDGE].Extent(),
        "volume_mm3": volume.Mass(),
        "surface_area_mm2": area.Mass(),
        "bbox_mm": {"min": list(corners[:3]), "max": list(corners[3:])} if corners else None,
    }


RAW_EXTRACTORS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "pdf": raw_pdf,
    "dxf": raw_dxf,
    "dwg": raw_dwg,
    "ifc": raw_ifc,
    "step": raw_step,
}


class RawLoopFailed(RuntimeError):
    """The raw loop cannot read a file of the mix (the project's figures would have no floor)."""


def raw_loop_s(files: list[tuple[Path, str]], names: list[str] | None = None) -> float:
    """A single process calling the libraries directly on the same files (one warm-up pass first).

    Raises ``RawLoopFailed`` naming the file (``names[i]`` when given) when a library cannot read one.
    """
    labels = names or [path.name for path, _ in files]

    def read(index: int) -> None:
        path, fmt = files[index]
        try:
            RAW_EXTRACTORS[fmt](path)
        except Exception as exc:
            raise RawLoopFailed(
                f"the raw loop cannot read {labels[index]} ({fmt}): {type(exc).__name__}: {exc}"[:1000]
            ) from exc

    seen: set[str] = set()
    for index, (_, fmt) in enumerate(files):  # warm-up: imports and first-call costs, one file per format
        if fmt not in seen:
            seen.add(fmt)
            read(index)
    started = time.perf_counter()
    for index in range(len(files)):
        read(index)
    return time.perf_counter() - started
