"""STEP geometry and assembly tree with OCP (OpenCascade XCAF); imported only by the STEP extractor.

Geometry: ONE read with ``STEPCAFControl_Reader`` into an XCAF document gives both the assembly
tree (names, colours, instance counts) and the shapes. The document's length unit is pinned to
millimetres, so OpenCascade converts inch, metre, ... models on transfer and every figure is in mm.
Nothing is triangulated: volume and area come from exact integration (BRepGProp), the box from
``BRepBndLib.AddOptimal`` on the exact geometry.

Counting rule: ``solid_count``, ``face_count`` and ``edge_count`` count *placed* topology: a part
placed three times in an assembly counts three times (distinct located shapes, as
``TopExp.MapShapes`` sees them). Volume, area and box are those of the assembled model, so the
counts agree with them. ``definition_solid_count`` adds the other reading (distinct solid
definitions, whatever their placements).

``parts`` is the assembly tree, one node per top-level shape::

    {"name": "AS1", "kind": "assembly", "instances": 1, "instance_names": [], "color": None,
     "children": [{"name": "BOLT", "kind": "part", "instances": 6, "instance_names": ["B1", "B2"],
                   "color": "#0000ff", "children": []}]}

Children are grouped by definition: ``instances`` is how often that definition is placed in its
parent, ``instance_names`` the distinct names of those placements. ``name`` is the product name,
or the first instance name when the product has none. ``color`` is the definition's colour
(``#rrggbb``) or null. Unnamed simple
shapes under a part (the bodies some writers give a part, e.g. a solid plus a wireframe
compound) are the part's own geometry, not parts, and are left out of the tree.

Failures: a file OpenCascade cannot parse, or whose entities hold no transferable shape, is
``CorruptFile`` with the reader's reason. A syntactically valid file with an empty DATA section is
a real (if useless) STEP file: it succeeds with zero counts, null volume/area/box and a warning.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.errors import CorruptFile

# Bounds on the assembly tree reported in ``parts`` (a shared sub-assembly is expanded under
# every parent, so a hostile file could make the expanded tree explode).
MAX_TREE_NODES = 5000
MAX_TREE_DEPTH = 64
MAX_INSTANCE_NAMES = 100
# How much of OpenCascade's message log is kept for error reasons.
_LOG_LIMIT = 64 * 1024


_UNIT_NAMES = {
    "mm": ("millimetre", "millimeter", "mm"),
    "cm": ("centimetre", "centimeter", "cm"),
    "dm": ("decimetre", "decimeter", "dm"),
    "m": ("metre", "meter", "m"),
    "km": ("kilometre", "kilometer", "km"),
    "um": ("micrometre", "micrometer", "micron", "um"),
    "nm": ("nanometre", "nanometer", "nm"),
    "in": ("inch", "inches", "in"),
    "ft": ("foot", "feet", "ft"),
    "yd": ("yard", "yards", "yd"),
    "mi": ("mile", "miles", "mi"),
}
_UNIT_BY_NAME = {spelling: short for short, spellings in _UNIT_NAMES.items() for spelling in spellings}


def normalize_length_unit(name: str | None) -> str | None:
    """OpenCascade's unit names ("millimetre", "METRE", "INCH", ...) -> "mm", "m", "in", ..."""
    if not name or not name.strip():
        return None
    cleaned = re.sub(r"[\s_.]+", "", name.strip().lower())
    return _UNIT_BY_NAME.get(cleaned, name.strip())


class _LogFile:
    """Where OpenCascade's printer writes: one in-memory file per process (Linux ``memfd``).

    A temporary folder per read cost a mkdir and an rmdir per file (0.3 ms on a quiet machine, several
    ms on a busy one) and a folder per process would outlive a worker that is killed; an anonymous
    memory file needs neither and goes with the process. Elsewhere: a temporary folder per read.
    """

    _fd: int | None = None

    @classmethod
    @contextlib.contextmanager
    def open(cls) -> Iterator[tuple[str, Callable[[], bytes]]]:
        """(path for the printer, function reading what was written), valid inside the block."""
        if cls._fd is None and hasattr(os, "memfd_create"):
            with contextlib.suppress(OSError):
                cls._fd = os.memfd_create("opencascade-log", os.MFD_CLOEXEC)
        if cls._fd is not None:
            fd = cls._fd
            os.ftruncate(fd, 0)  # the printer opens the path without appending; this is belt and braces
            yield f"/proc/self/fd/{fd}", lambda: os.pread(fd, _LOG_LIMIT, 0)
            return
        with tempfile.TemporaryDirectory(prefix="step-log-") as folder:
            path = Path(folder) / "opencascade.log"

            def read() -> bytes:
                with contextlib.suppress(OSError), path.open("rb") as handle:
                    return handle.read(_LOG_LIMIT)
                return b""

            yield str(path), read


@contextlib.contextmanager
def _opencascade_log() -> Iterator[list[str]]:
    """Send OpenCascade's messages to a private log instead of stdout (the CLI prints JSON there).

    Yields a list that holds the distinct messages once the block has ended.
    """
    from OCP.Message import Message, Message_Gravity, Message_PrinterOStream

    messenger = Message.DefaultMessenger_s()
    previous = list(messenger.Printers())
    lines: list[str] = []
    with _LogFile.open() as (log_path, read_log):
        printer = Message_PrinterOStream(log_path, False, Message_Gravity.Message_Info)
        for old in previous:
            messenger.RemovePrinter(old)
        messenger.AddPrinter(printer)
        try:
            yield lines
        finally:
            messenger.RemovePrinter(printer)
            del printer  # closes the file stream
            for old in previous:
                messenger.AddPrinter(old)
            text = b""
            with contextlib.suppress(OSError):
                text = read_log()
            for line in text.decode("utf-8", "replace").splitlines():
                line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip(" *\t")
                if line and line not in lines:
                    lines.append(line)


def _reason(log: list[str]) -> str:
    """The reader's error messages (its informational lines only when there is nothing else)."""
    errors = [line for line in log if re.search(r"\b(ERR|Error|Fail)", line)]
    chosen = errors or log
    return ("; ".join(chosen[:3]))[:500] if chosen else "no message from the reader"


def _unreadable(message: str, log: list[str]) -> Exception:
    """CorruptFile, unless OpenCascade failed for want of memory (then it is not the file's fault)."""
    if any("malloc failed" in line or "Allocate" in line for line in log):
        return MemoryError(f"OpenCascade ran out of memory: {_reason(log)}")
    return CorruptFile(f"{message}: {_reason(log)}")


def _empty_geometry(entity_count: int) -> dict[str, Any]:
    return {
        "length_unit": None,
        "parts": [],
        "solid_count": 0,
        "face_count": 0,
        "edge_count": 0,
        "volume_mm3": None,
        "surface_area_mm2": None,
        "bbox_mm": None,
        "definition_solid_count": 0,
        "entity_count": entity_count,
    }


def read_geometry(path: Path, warnings: list[str]) -> dict[str, Any]:
    from OCP.IFSelect import IFSelect_ReturnStatus
    from OCP.STEPCAFControl import STEPCAFControl_Reader
    from OCP.TCollection import TCollection_ExtendedString
    from OCP.TColStd import TColStd_SequenceOfAsciiString
    from OCP.TDF import TDF_LabelSequence
    from OCP.TDocStd import TDocStd_Document
    from OCP.UnitsMethods import UnitsMethods_LengthUnit
    from OCP.XCAFDoc import XCAFDoc_DocumentTool, XCAFDoc_ShapeTool

    reader = STEPCAFControl_Reader()
    reader.SetColorMode(True)
    reader.SetNameMode(True)
    for unused in ("SetLayerMode", "SetPropsMode", "SetGDTMode", "SetMatMode", "SetViewMode", "SetSHUOMode"):
        getattr(reader, unused)(False)
    with _opencascade_log() as read_log:
        status = reader.ReadFile(str(path))
    if status != IFSelect_ReturnStatus.IFSelect_RetDone:
        raise _unreadable(f"OpenCascade cannot read this STEP file ({status.name})", read_log)
    step_reader = reader.ChangeReader()
    entity_count = step_reader.StepModel().NbEntities()
    if entity_count == 0:
        warnings.append("the STEP file has an empty DATA section: no shapes")
        return _empty_geometry(0)
    if reader.NbRootsForTransfer() == 0:
        raise CorruptFile(
            f"the STEP file has {entity_count} entities but no shape OpenCascade can transfer: {_reason(read_log)}"
        )

    lengths, angles, solid_angles = (TColStd_SequenceOfAsciiString() for _ in range(3))
    step_reader.FileUnits(lengths, angles, solid_angles)
    unit_names = [lengths.Value(i).ToCString() for i in range(1, lengths.Length() + 1)]
    units = list(dict.fromkeys(u for u in map(normalize_length_unit, unit_names) if u))
    if len(units) > 1:
        warnings.append(f"the STEP file mixes length units: {', '.join(units)} (all converted to mm)")

    document = TDocStd_Document(TCollection_ExtendedString("MDTV-XCAF"))
    # Pin the working unit: everything below is in mm whatever the file's unit (and whatever
    # the process-wide "xstep.cascade.unit" another OCP user may have set).
    XCAFDoc_DocumentTool.SetLengthUnit_s(
        document, 1.0, UnitsMethods_LengthUnit.UnitsMethods_LengthUnit_Millimeter
    )
    auto_naming = XCAFDoc_ShapeTool.AutoNaming_s()
    XCAFDoc_ShapeTool.SetAutoNaming_s(False)  # no invented names such as "SOLID" or "=>[0:1:1:3]"
    try:
        with _opencascade_log() as transfer_log:
            transferred = reader.Transfer(document)
    finally:
        XCAFDoc_ShapeTool.SetAutoNaming_s(auto_naming)
    if not transferred:
        raise _unreadable("OpenCascade could not build shapes from this STEP file", transfer_log)

    shape_tool = XCAFDoc_DocumentTool.ShapeTool_s(document.Main())
    color_tool = XCAFDoc_DocumentTool.ColorTool_s(document.Main())
    free = TDF_LabelSequence()
    shape_tool.GetFreeShapes(free)
    roots = [free.Value(i) for i in range(1, free.Length() + 1)]
    if not roots:
        raise _unreadable("OpenCascade built no shape from this STEP file", transfer_log)

    if any(re.search(r"\b(ERR|Error|Fail)", line) for line in read_log + transfer_log):
        warnings.append(
            f"OpenCascade reported problems and read what it could: {_reason(read_log + transfer_log)}"
        )
    tree = _PartsTree(color_tool)
    parts = [tree.node(label, 1, [], 0) for label in roots]
    if tree.truncated:
        warnings.append(f"the assembly tree is too large: parts lists only its first {MAX_TREE_NODES} nodes")
    result = _measure([XCAFDoc_ShapeTool.GetShape_s(label) for label in roots])
    result.update(length_unit=units[0] if units else None, parts=parts, entity_count=entity_count)
    if result["solid_count"] == 0:
        warnings.append("the STEP file holds no solids (surfaces or wireframe only): volume is null")
    return result


def _measure(shapes: list[Any]) -> dict[str, Any]:
    """Counts, volume, area and exact bounding box of the assembled model (mm)."""
    from OCP.Bnd import Bnd_Box
    from OCP.BRep import BRep_Builder
    from OCP.BRepBndLib import BRepBndLib
    from OCP.BRepGProp import BRepGProp
    from OCP.GProp import GProp_GProps
    from OCP.TopAbs import TopAbs_EDGE, TopAbs_FACE, TopAbs_SOLID
    from OCP.TopExp import TopExp
    from OCP.TopoDS import TopoDS_Compound
    from OCP.TopTools import TopTools_IndexedMapOfShape

    builder = BRep_Builder()
    model = TopoDS_Compound()
    builder.MakeCompound(model)
    for shape in shapes:
        if not shape.IsNull():
            builder.Add(model, shape)

    counts = {}
    maps = {}
    for key, kind in (
        ("solid_count", TopAbs_SOLID),
        ("face_count", TopAbs_FACE),
        ("edge_count", TopAbs_EDGE),
    ):
        found = TopTools_IndexedMapOfShape()
        TopExp.MapShapes_s(model, kind, found)  # distinct located sub-shapes
        counts[key] = found.Extent()
        maps[key] = found

    solids = maps["solid_count"]
    definitions = {solids.FindKey(i).TShape() for i in range(1, solids.Extent() + 1)}
    volume = None
    if solids.Extent():
        only_solids = TopoDS_Compound()
        builder.MakeCompound(only_solids)
        for i in range(1, solids.Extent() + 1):
            builder.Add(only_solids, solids.FindKey(i))
        props = GProp_GProps()
        BRepGProp.VolumeProperties_s(only_solids, props, False, True, False)
        volume = _round(props.Mass())
    area = None
    if counts["face_count"]:
        props = GProp_GProps()
        BRepGProp.SurfaceProperties_s(model, props, True, False)
        area = _round(props.Mass())
    box = Bnd_Box()
    BRepBndLib.AddOptimal_s(model, box, False, False)
    bbox = None
    if not box.IsVoid():
        x0, y0, z0, x1, y1, z1 = box.Get()
        bbox = {"min": [_round(x0), _round(y0), _round(z0)], "max": [_round(x1), _round(y1), _round(z1)]}
    return {
        **counts,
        "definition_solid_count": len(definitions),
        "volume_mm3": volume,
        "surface_area_mm2": area,
        "bbox_mm": bbox,
    }


def _round(value: float) -> float:
    return round(value, 6) + 0.0  # + 0.0 turns -0.0 into 0.0


class _PartsTree:
    """Builds the ``parts`` nodes from XCAF labels, bounded in size and depth."""

    def __init__(self, color_tool: Any) -> None:
        self.color_tool = color_tool
        self.nodes = 0
        self.truncated = False

    def node(self, label: Any, instances: int, instance_names: list[str], depth: int) -> dict[str, Any]:
        from OCP.TCollection import TCollection_AsciiString
        from OCP.TDF import TDF_Label, TDF_LabelSequence, TDF_Tool
        from OCP.XCAFDoc import XCAFDoc_ShapeTool

        self.nodes += 1
        is_assembly = XCAFDoc_ShapeTool.IsAssembly_s(label)
        entry: dict[str, Any] = {
            "name": _label_name(label) or next(iter(instance_names), None),
            "kind": "assembly" if is_assembly else "part",
            "instances": instances,
            "instance_names": instance_names[:MAX_INSTANCE_NAMES],
            "color": _label_color(label),
            "children": [],
        }
        if not is_assembly:
            return entry
        components = TDF_LabelSequence()
        XCAFDoc_ShapeTool.GetComponents_s(label, components, False)
        groups: dict[str, list[Any]] = {}  # referred definition -> [label, count, instance names]
        for i in range(1, components.Length() + 1):
            component = components.Value(i)
            referred = TDF_Label()
            if not XCAFDoc_ShapeTool.GetReferredShape_s(component, referred):
                continue
            key = TCollection_AsciiString()
            TDF_Tool.Entry_s(referred, key)
            group = groups.setdefault(key.ToCString(), [referred, 0, []])
            group[1] += 1
            name = _label_name(component)
            if name is not None and name not in group[2]:
                group[2].append(name)
        for referred, count, names in groups.values():
            if not names and _label_name(referred) is None and not XCAFDoc_ShapeTool.IsAssembly_s(referred):
                if entry["color"] is None:  # the part's colour may sit on its body
                    entry["color"] = _label_color(referred)
                continue  # an unnamed body of this part, not a part of its own
            if self.nodes >= MAX_TREE_NODES or depth + 1 >= MAX_TREE_DEPTH:
                self.truncated = True
                break
            entry["children"].append(self.node(referred, count, names, depth + 1))
        if not entry["children"]:
            entry["kind"] = "part"  # a part whose only components are its own bodies
        return entry


def _label_name(label: Any) -> str | None:
    from OCP.TDataStd import TDataStd_Name

    # FindAttribute crashes (OCP 7.9) when the attribute is missing: ask IsAttribute first.
    if not label.IsAttribute(TDataStd_Name.GetID_s()):
        return None
    attribute = TDataStd_Name()
    if not label.FindAttribute(TDataStd_Name.GetID_s(), attribute):
        return None
    return attribute.Get().ToExtString().strip() or None


def _label_color(label: Any) -> str | None:
    from OCP.Quantity import Quantity_Color, Quantity_TypeOfColor
    from OCP.XCAFDoc import XCAFDoc_ColorTool, XCAFDoc_ColorType

    color = Quantity_Color()
    for kind in (XCAFDoc_ColorType.XCAFDoc_ColorSurf, XCAFDoc_ColorType.XCAFDoc_ColorGen):
        if XCAFDoc_ColorTool.GetColor_s(label, kind, color):
            r, g, b = color.Values(Quantity_TypeOfColor.Quantity_TOC_sRGB)
            return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, round(c * 255))) for c in (r, g, b)))
    return None
