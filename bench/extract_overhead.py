"""How much slower is the project's warm, isolated extraction than calling the libraries directly?

For every format, the same files are read twice:

- project: ``WorkerPool.extract(path)``, a warm child process (hash, detection, extractor, envelope,
  pickling over the pipe and validation of the envelope in the parent included);
- raw: a minimal function in this process that opens the file with the same library and reads the
  same facts (the keys INTERFACE.md requires) the project's extractor reports.

Both sides get one untimed warm-up pass, then ``--repeat`` timed passes; each file's time is the
median of its passes, a format's time the sum over its files, its ratio project / raw. The median
of the per-format ratios is compared with the target (<= 1.15).

The warm-up pass compares the two sides file by file. A file counts when both read it. A file that
one side reads and the other does not (the project fails where the library reads it, or the other
way round) is a *failure* of the run: it is named with both sides' reasons under ``failures`` and
the script exits with 1. A file both sides reject because of the file itself (the project says
``corrupt``, ``encrypted``, ``unsupported_format`` or ``too_large`` and the raw loop raises too) is
left out and listed with both reasons under ``skipped``. Both sides failing for any other reason (an
ImportError, a crashed or timed-out worker, ...) is a failure as well: that is the installation,
not the file.

It also measures ``extract_cold_ms``: ``extraction-pipeline extract small.pdf --json`` (the console
script next to ``sys.executable``, a generated 2-page PDF) in a fresh process, median of 5 runs
after one untimed run; target <= 800 ms (``--no-cold`` leaves it out).

    python3 -m bench.extract_overhead [--quick] [--json] [--corpus DIR] [--repeat N] [--no-cold]

Exit status: 0 when it ran and every file was read alike by both sides (a missed target is reported,
not an error: this is a measurement), 1 when there are failures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.15
TARGET_COLD_MS = 800.0
FORMATS = ("pdf", "dxf", "dwg", "ifc", "step")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"

# Generated file sizes per scale: pdf pages, dxf entities, ifc elements, step solids.
SCALES: dict[str, dict[str, int]] = {
    "tiny": {"pdf": 2, "dxf": 40, "ifc": 6, "step": 2},
    "quick": {"pdf": 60, "dxf": 3000, "ifc": 400, "step": 30},
    "full": {"pdf": 300, "dxf": 30000, "ifc": 2000, "step": 120},
}


# ============================================================================ raw loops


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


# ============================================================================ generated files


def make_pdf(path: Path, pages: int) -> Path:
    pymupdf = _pymupdf()
    doc = pymupdf.open()
    picture = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), 0)
    picture.clear_with(180)
    toc = []
    for number in range(pages):
        page = doc.new_page(width=595, height=842)
        lines = [
            f"Page {number + 1}, line {i}: the quick brown fox jumps over the lazy dog." for i in range(45)
        ]
        page.insert_text((50, 60), "\n".join(lines), fontsize=9)
        if number % 4 == 0:
            page.insert_image(pymupdf.Rect(400, 700, 500, 800), pixmap=picture)
        if number % 10 == 0:
            toc.append([1, f"Chapter {number // 10 + 1}", number + 1])
            page.add_text_annot((30, 30), "note")
    doc.set_toc(toc)
    doc.set_metadata({"title": "Benchmark", "author": "bench", "creationDate": "D:20240102030405Z"})
    doc.save(path, garbage=1, deflate=True)
    doc.close()
    return path


def make_dxf(path: Path, entities: int) -> Path:
    import ezdxf

    doc = ezdxf.new("R2018", setup=True)
    doc.units = 4
    for index in range(20):
        doc.layers.add(f"LAYER-{index}")
    block = doc.blocks.new("MARK")
    block.add_circle((0, 0), 1)
    block.add_line((-1, 0), (1, 0))
    block.add_attdef("ID", (0, 1.2))
    title = doc.blocks.new("TITLE")
    title.add_lwpolyline([(0, 0), (180, 0), (180, 40), (0, 40)], close=True)
    for row, tag in enumerate(("DRAWING", "SCALE", "AUTHOR")):
        title.add_attdef(tag, (5, 5 + 10 * row))
    paper = doc.layouts.get("Layout1")
    paper.add_blockref("TITLE", (10, 10)).add_auto_attribs({"DRAWING": "B-1", "SCALE": "1:50", "AUTHOR": "x"})
    msp = doc.modelspace()
    for index in range(entities):
        x, y = (index % 100) * 10.0, (index // 100) * 10.0
        layer = f"LAYER-{index % 20}"
        kind = index % 8
        if kind < 3:
            msp.add_line((x, y), (x + 8, y + 5), dxfattribs={"layer": layer})
        elif kind == 3:
            msp.add_circle((x, y), 3, dxfattribs={"layer": layer})
        elif kind == 4:
            msp.add_arc((x, y), 4, 10, 200, dxfattribs={"layer": layer})
        elif kind == 5:
            msp.add_lwpolyline(
                [(x, y), (x + 5, y), (x + 5, y + 5, 0.5)], format="xyb", dxfattribs={"layer": layer}
            )
        elif kind == 6:
            msp.add_text(f"T{index}", height=2, dxfattribs={"layer": layer}).set_placement((x, y))
        else:
            msp.add_blockref("MARK", (x, y), dxfattribs={"layer": layer}).add_auto_attribs({"ID": str(index)})
    doc.saveas(path)
    return path


def make_ifc(path: Path, elements: int) -> Path:
    import ifcopenshell.api
    import numpy

    model = ifcopenshell.api.run("project.create_file", version="IFC4")
    project = ifcopenshell.api.run("root.create_entity", model, ifc_class="IfcProject", name="Bench")
    ifcopenshell.api.run("unit.assign_unit", model)
    model3d = ifcopenshell.api.run("context.add_context", model, context_type="Model")
    body = ifcopenshell.api.run(
        "context.add_context",
        model,
        context_type="Model",
        context_identifier="Body",
        target_view="MODEL_VIEW",
        parent=model3d,
    )
    site = ifcopenshell.api.run("root.create_entity", model, ifc_class="IfcSite", name="Site")
    building = ifcopenshell.api.run("root.create_entity", model, ifc_class="IfcBuilding", name="Building")
    ifcopenshell.api.run("aggregate.assign_object", model, products=[site], relating_object=project)
    ifcopenshell.api.run("aggregate.assign_object", model, products=[building], relating_object=site)
    storeys = []
    for level in range(4):
        storey = ifcopenshell.api.run(
            "root.create_entity", model, ifc_class="IfcBuildingStorey", name=f"L{level}"
        )
        storey.Elevation = 3.0 * level
        ifcopenshell.api.run("aggregate.assign_object", model, products=[storey], relating_object=building)
        storeys.append(storey)
    classes = ("IfcWall", "IfcSlab", "IfcDoor", "IfcWindow", "IfcColumn")
    for index in range(elements):
        element = ifcopenshell.api.run(
            "root.create_entity", model, ifc_class=classes[index % len(classes)], name=f"E{index}"
        )
        ifcopenshell.api.run(
            "spatial.assign_container", model, products=[element], relating_structure=storeys[index % 4]
        )
        # Every element gets a body (an extruded wall-like solid) and a placement, as exported models do.
        shape = ifcopenshell.api.run(
            "geometry.add_wall_representation", model, context=body, length=4.0 + index % 5, height=3.0
        )
        ifcopenshell.api.run("geometry.assign_representation", model, product=element, representation=shape)
        matrix = numpy.eye(4)
        matrix[:3, 3] = ((index % 20) * 5.0, (index // 20) * 5.0, 3.0 * (index % 4))
        ifcopenshell.api.run("geometry.edit_object_placement", model, product=element, matrix=matrix)
        pset = ifcopenshell.api.run("pset.add_pset", model, product=element, name="Pset_Bench")
        ifcopenshell.api.run(
            "pset.edit_pset", model, pset=pset, properties={"Mark": f"M{index}", "Load": 1.5}
        )
    model.write(str(path))
    return path


def make_step(path: Path, solids: int) -> Path:
    from OCP.BRep import BRep_Builder
    from OCP.BRepPrimAPI import BRepPrimAPI_MakeBox, BRepPrimAPI_MakeCylinder
    from OCP.gp import gp_Ax2, gp_Dir, gp_Pnt
    from OCP.IFSelect import IFSelect_RetDone
    from OCP.STEPControl import STEPControl_AsIs, STEPControl_Writer
    from OCP.TopoDS import TopoDS_Compound

    builder, compound = BRep_Builder(), TopoDS_Compound()
    builder.MakeCompound(compound)
    for index in range(solids):
        x = 30.0 * index
        if index % 2:
            shape = BRepPrimAPI_MakeCylinder(gp_Ax2(gp_Pnt(x, 0, 0), gp_Dir(0, 0, 1)), 8.0, 20.0).Shape()
        else:
            shape = BRepPrimAPI_MakeBox(gp_Pnt(x, 0, 0), 20.0, 10.0, 5.0 + index % 7).Shape()
        builder.Add(compound, shape)
    with native_stdout_to_stderr():  # OpenCascade prints transfer statistics on fd 1
        writer = STEPControl_Writer()
        writer.Transfer(compound, STEPControl_AsIs)
        if writer.Write(str(path)) != IFSelect_RetDone:
            raise RuntimeError("the STEP file could not be written")
    return path


@contextlib.contextmanager
def native_stdout_to_stderr() -> Iterator[None]:
    """Send what native code writes on file descriptor 1 to stderr, so a --json stdout stays clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


GENERATORS: dict[str, Callable[[Path, int], Path]] = {
    "pdf": make_pdf,
    "dxf": make_dxf,
    "ifc": make_ifc,
    "step": make_step,
}
SUFFIX = {"pdf": ".pdf", "dxf": ".dxf", "ifc": ".ifc", "step": ".step"}


def generate_files(folder: Path, scale: str = "quick", formats: Iterable[str] = FORMATS) -> list[Path]:
    """One generated file per format (DWG has no writer: corpus files only)."""
    made = []
    for fmt in formats:
        if fmt in GENERATORS:
            made.append(GENERATORS[fmt](folder / f"generated_{fmt}{SUFFIX[fmt]}", SCALES[scale][fmt]))
    return made


def corpus_files(corpus: Path | None) -> list[Path]:
    if corpus is None or not corpus.is_dir():
        return []
    return sorted(p for fmt in FORMATS for p in (corpus / fmt).glob("*") if p.is_file())


# ============================================================================ measuring


@dataclass
class FileTiming:
    path: Path
    fmt: str
    project_s: list[float]
    raw_s: list[float]


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


# Error codes by which the project blames the file itself. Any other failure of the project
# (``extractor_error``, ``crashed``, ``timeout``, ``out_of_memory``, ...) is the project's or the
# installation's, even when the raw loop cannot read the file either.
FILE_FAULT_CODES = frozenset({"unsupported_format", "corrupt", "encrypted", "too_large"})
# A "corrupt" whose message is one of these exceptions is a broken installation, not a broken file.
_INSTALLATION_MESSAGE = re.compile(r"^(ImportError|ModuleNotFoundError|NameError|SyntaxError)\b")
SUFFIX_FORMATS = {
    ".pdf": "pdf",
    ".dxf": "dxf",
    ".dwg": "dwg",
    ".ifc": "ifc",
    ".ifczip": "ifc",
    ".stp": "step",
    ".step": "step",
    ".p21": "step",
}


def installation_fault(exc: BaseException) -> bool:
    """True when the raw loop's exception blames the environment (a missing module, ...), not the file."""
    if isinstance(exc, ImportError | NameError | SyntaxError):
        return True
    if isinstance(exc, AttributeError):  # ``module 'OCP.X' has no attribute 'Y'``: a library release
        return isinstance(getattr(exc, "obj", None), types.ModuleType) or str(exc).startswith("module ")
    return False


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def raw_format(envelope: Any, path: Path) -> str | None:
    """Which raw loop reads ``path``: the detected format, else the suffix or the corpus folder."""
    if envelope.format in RAW_EXTRACTORS:
        return str(envelope.format)
    return SUFFIX_FORMATS.get(path.suffix.lower()) or (
        path.parent.name if path.parent.name in RAW_EXTRACTORS else None
    )


@dataclass(frozen=True)
class Comparison:
    """What the two sides made of one file: ``counted``, ``left_out`` (both reject it) or ``failure``."""

    path: Path
    fmt: str | None
    outcome: str
    reason: str | None = None


def compare_sides(path: Path, envelope: Any, fmt: str | None, raw_error: BaseException | None) -> Comparison:
    """Classify one file from the project's envelope and the raw loop's exception (None: it read it)."""
    label = f"{path.name} ({fmt or envelope.format})"
    project_ok = bool(envelope.succeeded)
    if project_ok and raw_error is None:
        return Comparison(path, fmt, "counted")
    raw_reason = f"{type(raw_error).__name__}: {_short(str(raw_error))}" if raw_error is not None else None
    error = envelope.error
    code = error.code if error is not None else "failed"
    project_reason = f"{code}: {_short(error.message if error is not None else envelope.status)}"
    if not project_ok and raw_error is None:
        return Comparison(
            path,
            fmt,
            "failure",
            f"{label}: the project failed ({project_reason}) but the raw library reads it",
        )
    if project_ok:
        return Comparison(
            path, fmt, "failure", f"{label}: the raw loop failed ({raw_reason}) but the project extracts it"
        )
    both = f"project {project_reason}; raw {raw_reason}"
    message = error.message if error is not None else ""
    file_fault = code in FILE_FAULT_CODES and not _INSTALLATION_MESSAGE.match(message)
    if file_fault and raw_error is not None and not installation_fault(raw_error):
        return Comparison(path, fmt, "left_out", f"{label}: both sides reject the file ({both})")
    return Comparison(path, fmt, "failure", f"{label}: both sides failed, not because of the file ({both})")


def read_both(pool: Any, path: Path) -> Comparison:
    """One untimed pass of each side over ``path`` (the warm-up), classified by ``compare_sides``."""
    envelope = pool.extract(path)
    fmt = raw_format(envelope, path)
    raw_error: BaseException | None = None
    if fmt is None:
        raw_error = LookupError(f"no raw reader for format {envelope.format!r}")
    else:
        try:
            RAW_EXTRACTORS[fmt](path)
        except Exception as exc:
            raw_error = exc
    return compare_sides(path, envelope, fmt, raw_error)


def measure(
    files: list[Path], repeat: int, log: Callable[[str], None] = lambda _: None, stat: str = "median"
) -> dict[str, Any]:
    """Warm up both sides on ``files``, time ``repeat`` passes and summarise (see the module doc).

    ``failures`` in the result names every file one side reads and the other does not (and every
    file both fail on for a reason other than the file): the run has failed when it is not empty.
    """
    from extraction_pipeline.extraction.workers import WorkerPool

    timings: list[FileTiming] = []
    skipped: list[str] = []
    failures: list[str] = []
    with WorkerPool(size=1, timeout_s=600) as pool:
        # Warm-up pass (untimed): starts the worker, imports everything, compares the two sides.
        for path in files:
            checked = read_both(pool, path)
            if checked.outcome == "counted" and checked.fmt is not None:
                timings.append(FileTiming(path, checked.fmt, [], []))
            elif checked.outcome == "left_out":
                skipped.append(str(checked.reason))
                log(f"left out: {checked.reason}")
            else:
                failures.append(str(checked.reason))
                log(f"FAILED: {checked.reason}")
        # Paired and interleaved (file by file, alternating which side goes first), so that load
        # from other processes hits both sides alike.
        for number in range(repeat):
            log(f"pass {number + 1}/{repeat}")
            for timing in timings:
                raw = RAW_EXTRACTORS[timing.fmt]
                if number % 2:
                    timing.raw_s.append(_timed(lambda t=timing, f=raw: f(t.path)))
                timing.project_s.append(_timed(lambda t=timing: pool.extract(t.path)))
                if not number % 2:
                    timing.raw_s.append(_timed(lambda t=timing, f=raw: f(t.path)))
        peak = pool.peak_rss_bytes()
    return summarise(timings, skipped, peak, stat, failures)


def console_script() -> Path:
    """The ``extraction-pipeline`` script of the environment this interpreter belongs to."""
    script = Path(sys.executable).parent / "extraction-pipeline"
    if not script.is_file():
        raise FileNotFoundError(
            f"no console script {script}: install the project into the environment of {sys.executable}"
        )
    return script


def measure_cold_extract(repeats: int = 5, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """``extraction-pipeline extract small.pdf --json`` in a fresh process: median of ``repeats`` runs.

    The console script is the one next to ``sys.executable`` (what a user of this environment runs);
    the PDF is generated (2 pages); the environment is the caller's without ``EXTRACTION_*`` and
    ``DAGSTER_*`` settings. One untimed run first fills the page cache and writes any stale
    bytecode (``first_ms``). Every run must exit 0 with a succeeded envelope of the 2 pages, or
    this raises ``RuntimeError`` with the command's exit status and output.
    """
    script = console_script()
    with tempfile.TemporaryDirectory(prefix="extract-cold-") as tmp:
        folder = Path(tmp)
        pdf = make_pdf(folder / "small.pdf", 2)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EXTRACTION_", "DAGSTER_"))}
        env["EXTRACTION_HOME"] = str(folder / "home")
        command = [str(script), "extract", str(pdf), "--json"]

        def once() -> float:
            started = time.perf_counter()
            done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
            elapsed_ms = (time.perf_counter() - started) * 1000
            envelope: Any = None
            with contextlib.suppress(ValueError):
                envelope = json.loads(done.stdout)
            if (
                done.returncode != 0
                or not isinstance(envelope, dict)
                or envelope.get("status") != "succeeded"
                or (envelope.get("metadata") or {}).get("page_count") != 2
            ):
                raise RuntimeError(
                    f"`extraction-pipeline extract small.pdf --json` exited {done.returncode} without the "
                    f"2-page PDF's succeeded envelope: stdout {_short(done.stdout, 600)!r}, "
                    f"stderr {_short(done.stderr, 1500)!r}"
                )
            return elapsed_ms

        log(f"cold extract: {script} extract small.pdf --json, 1 + {repeats} fresh processes")
        first = once()
        runs = [once() for _ in range(repeats)]
        size = pdf.stat().st_size
    median = statistics.median(runs)
    return {
        "median_ms": round(median, 1),
        "runs_ms": [round(r, 1) for r in runs],
        "first_ms": round(first, 1),
        "script": str(script),
        "pdf_pages": 2,
        "pdf_bytes": size,
        "target_ms": TARGET_COLD_MS,
        "target_met": median <= TARGET_COLD_MS,
    }


STAGES = ("hash", "detect", "extractor", "envelope", "ipc")


def breakdown(files: list[Path], repeat: int) -> dict[str, dict[str, float]]:
    """Where the project's time goes, per format (ms, summed over files, median of ``repeat`` runs).

    The stages of ``extract_file`` are replayed in this process: sha256 (``hash``), ``detect``, the
    format module (``extractor``), building the envelope plus its JSON dump and validation
    (``envelope``, what crosses the pipe). ``ipc`` is what the worker adds on top: the pool's time
    minus the in-process ``extract_file`` time. ``raw`` is the raw loop, for comparison.
    """
    from extraction_pipeline.extraction.context import ExtractionContext
    from extraction_pipeline.extraction.detect import detect_format
    from extraction_pipeline.extraction.envelope import Envelope, ExtractorInfo
    from extraction_pipeline.extraction.extract import extract_file, file_info
    from extraction_pipeline.extraction.registry import extractor_for
    from extraction_pipeline.extraction.workers import WorkerPool

    def stages(path: Path) -> dict[str, float]:
        clock = time.perf_counter
        t0 = clock()
        info = file_info(path, path.name)
        t1 = clock()
        detection = detect_format(path, path.name)
        t2 = clock()
        module = extractor_for(detection.format)
        result = module.extract(path, ExtractionContext(detection=detection, filename=path.name))
        t3 = clock()
        envelope = Envelope(
            file=info,
            format=str(detection.format),
            variant=result.variant or detection.variant,
            extension_matches=detection.extension_matches,
            status="succeeded",
            extractor=ExtractorInfo(name=module.NAME, version=module.VERSION),
            warnings=[*detection.warnings, *result.warnings],
            metadata=result.metadata.model_dump(mode="json", by_alias=True),
        )
        Envelope.model_validate(envelope.model_dump(mode="json"))
        t4 = clock()
        return {"hash": t1 - t0, "detect": t2 - t1, "extractor": t3 - t2, "envelope": t4 - t3}

    totals: dict[str, dict[str, float]] = {}
    with WorkerPool(size=1, timeout_s=600) as pool:
        for path in files:
            envelope = pool.extract(path)
            raw = RAW_EXTRACTORS.get(envelope.format)
            if not envelope.succeeded or raw is None:  # ``measure`` reported it (failure or left out)
                continue
            try:
                raw(path)
                stages(path)
                extract_file(path)
                runs = [stages(path) for _ in range(repeat)]
                local = statistics.median(_timed(lambda p=path: extract_file(p)) for _ in range(repeat))
                pooled = statistics.median(_timed(lambda p=path: pool.extract(p)) for _ in range(repeat))
                direct = statistics.median(_timed(lambda p=path, f=raw: f(p)) for _ in range(repeat))
                row = totals.setdefault(envelope.format, dict.fromkeys((*STAGES, "raw"), 0.0))
                for stage in STAGES[:-1]:
                    row[stage] += statistics.median(r[stage] for r in runs) * 1000
                row["ipc"] += (pooled - local) * 1000
                row["raw"] += direct * 1000
            except Exception as exc:  # never silently: a stage that fails here is a finding
                raise RuntimeError(f"breakdown of {path.name}: {type(exc).__name__}: {exc}") from exc
    return {fmt: {k: round(v, 2) for k, v in row.items()} for fmt, row in totals.items()}


def render_breakdown(rows: dict[str, dict[str, float]]) -> str:
    lines = [f"{'format':<7}" + "".join(f"{name:>11}" for name in (*STAGES, "raw"))]
    for fmt, row in rows.items():
        lines.append(f"{fmt:<7}" + "".join(f"{row[name]:>11.2f}" for name in (*STAGES, "raw")))
    return "\n".join(lines)


def summarise(
    timings: list[FileTiming],
    skipped: list[str],
    peak_rss_bytes: int,
    stat: str = "median",
    failures: list[str] | None = None,
) -> dict[str, Any]:
    pick: Callable[[list[float]], float] = min if stat == "min" else statistics.median
    per_format: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    for fmt in FORMATS:
        mine = [t for t in timings if t.fmt == fmt]
        if not mine:
            continue
        project_ms = sum(pick(t.project_s) for t in mine) * 1000
        raw_ms = sum(pick(t.raw_s) for t in mine) * 1000
        per_format[fmt] = {
            "files": len(mine),
            "project_ms": round(project_ms, 2),
            "raw_ms": round(raw_ms, 2),
            "ratio": round(project_ms / raw_ms, 3) if raw_ms > 0 else math.inf,
        }
        for t in mine:
            p, r = pick(t.project_s) * 1000, pick(t.raw_s) * 1000
            files.append(
                {"file": t.path.name, "format": fmt, "project_ms": round(p, 2), "raw_ms": round(r, 2)}
            )
    ratios = [v["ratio"] for v in per_format.values()]
    median_ratio = round(statistics.median(ratios), 3) if ratios else None
    return {
        "per_format": per_format,
        "median_ratio": median_ratio,
        "target_ratio": TARGET_RATIO,
        # A file one side reads and the other does not fails the figure, whatever the ratio.
        "target_met": not failures and median_ratio is not None and median_ratio <= TARGET_RATIO,
        "worker_peak_rss_mb": round(peak_rss_bytes / (1024 * 1024), 1),
        "statistic": stat,
        "files": files,
        "skipped": skipped,
        "failures": list(failures or []),
    }


def render(result: dict[str, Any], verbose: bool = False) -> str:
    lines = [f"{'format':<7}{'files':>6}{'project ms':>13}{'raw ms':>11}{'ratio':>8}"]
    for fmt, row in result["per_format"].items():
        lines.append(
            f"{fmt:<7}{row['files']:>6}{row['project_ms']:>13.1f}{row['raw_ms']:>11.1f}{row['ratio']:>8.3f}"
        )
    if verbose:
        lines.append("")
        for row in result["files"]:
            ratio = row["project_ms"] / row["raw_ms"] if row["raw_ms"] else math.inf
            lines.append(
                f"  {row['format']:<5}{row['file']:<40}{row['project_ms']:>10.1f}{row['raw_ms']:>10.1f}{ratio:>8.2f}"
            )
    lines.append("")
    median = result["median_ratio"]
    verdict = "met" if result["target_met"] else "NOT met"
    lines.append(
        f"median ratio over formats: {median} (target <= {TARGET_RATIO}: {verdict}; per file: {result['statistic']})"
    )
    lines.append(f"worker peak RSS: {result['worker_peak_rss_mb']} MB")
    cold = result.get("extract_cold")
    if cold:
        verdict = "met" if cold["target_met"] else "NOT met"
        lines.append(
            f"cold extract (`extraction-pipeline extract` on a {cold['pdf_pages']}-page PDF, fresh process): "
            f"{cold['median_ms']} ms, median of {len(cold['runs_ms'])} (target <= {cold['target_ms']:g} ms: "
            f"{verdict}; runs {cold['runs_ms']}, untimed first run {cold['first_ms']} ms)"
        )
    for note in result["skipped"]:
        lines.append(f"left out: {note}")
    for note in result.get("failures", []):
        lines.append(f"FAILED: {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller generated files, 3 passes (< 2 min)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder (pdf/, dxf/, ...)")
    parser.add_argument("--scale", choices=tuple(SCALES), default=None, help="size of the generated files")
    parser.add_argument("--repeat", type=int, default=None, help="timed passes (default 3 quick, 7 full)")
    parser.add_argument(
        "--stat", choices=("median", "min"), default="median", help="per-file statistic over the passes"
    )
    parser.add_argument("--no-generated", action="store_true", help="corpus files only")
    parser.add_argument("--verbose", action="store_true", help="also list every file")
    parser.add_argument(
        "--breakdown", action="store_true", help="also split the project's time into stages (ms per format)"
    )
    parser.add_argument(
        "--no-cold",
        action="store_true",
        help="leave out extract_cold_ms (the one-shot CLI in a fresh process)",
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="extract-bench-") as tmp:
        files = corpus_files(args.corpus)
        if not files:
            log(f"no corpus at {args.corpus}; generated files only")
        if not args.no_generated:
            log("generating files ...")
            files += generate_files(Path(tmp), args.scale or ("quick" if args.quick else "full"))
        log(f"{len(files)} files, {repeat} timed passes")
        result = measure(files, repeat, log, args.stat)
        if args.breakdown:
            log("breakdown ...")
            counted = {row["file"] for row in result["files"]}
            result["breakdown_ms"] = breakdown([f for f in files if f.name in counted], repeat)
    result["extract_cold_ms"] = None
    if not args.no_cold:
        try:
            cold = measure_cold_extract(5, log)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            result["failures"].append(f"extract_cold: {type(exc).__name__}: {exc}")
        else:
            result["extract_cold_ms"] = cold["median_ms"]
            result["extract_cold"] = cold
    if args.json:
        print(json.dumps(result))
    else:
        print(render(result, args.verbose))
        if args.breakdown:
            print("\nwhere the project's time goes (ms per format):")
            print(render_breakdown(result["breakdown_ms"]))
    if result["failures"]:
        log(f"bench FAILED: {len(result['failures'])} failure(s)")
        for note in result["failures"]:
            log(f"  {note}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
