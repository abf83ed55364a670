"""The generated input files: one file per format for ``extract_overhead``, templates for ``run``.

The PDF comes from ``extraction_pipeline.samples.write_pdf`` (PyMuPDF), the others from ezdxf,
ifcopenshell and OCP; DWG has no writer, its files are copied from the corpus.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.common import FORMATS, native_stdout_to_stderr
from bench.raw import _pymupdf
from extraction_pipeline.samples import write_pdf

# Generated file sizes per scale: pdf pages, dxf entities, ifc elements, step solids.
SCALES: dict[str, dict[str, int]] = {
    "tiny": {"pdf": 2, "dxf": 40, "ifc": 6, "step": 2},
    "quick": {"pdf": 60, "dxf": 3000, "ifc": 400, "step": 30},
    "full": {"pdf": 300, "dxf": 30000, "ifc": 2000, "step": 120},
}


def _bench_page_text(page: int) -> str:
    return "\n".join(
        f"Page {page}, line {i}: the quick brown fox jumps over the lazy dog." for i in range(45)
    )


def make_pdf(path: Path, pages: int) -> Path:
    """``pages`` pages of 45 text lines, an image every 4 pages, a chapter (outline entry and text
    annotation) every 10 pages, deflated."""
    _pymupdf()  # PyMuPDF as the project imports it (without the layout add-on)
    chapters = range(1, pages + 1, 10)
    return write_pdf(
        path,
        pages,
        text=_bench_page_text,
        at=(50, 60),
        fontsize=9,
        image_every=4,
        outline=[(f"Chapter {number // 10 + 1}", number) for number in chapters],
        notes=chapters,
        metadata={"title": "Benchmark", "author": "bench", "creationDate": "D:20240102030405Z"},
        compress=True,
    )


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


# Generated templates per scale: (format, size parameter of the format's generator, weight in
# the backfill mix; 0 = once). Small files are the most common, as in real document stores.
TEMPLATES: dict[str, list[tuple[str, int, int]]] = {
    "tiny": [("pdf", 2, 1), ("dxf", 40, 1), ("ifc", 6, 1), ("step", 2, 1)],
    "quick": [
        ("pdf", 4, 3),
        ("pdf", 60, 2),
        ("dxf", 300, 3),
        ("dxf", 3000, 2),
        ("ifc", 40, 3),
        ("ifc", 400, 1),
        ("step", 4, 3),
        ("step", 30, 1),
    ],
    "full": [
        ("pdf", 4, 3),
        ("pdf", 60, 2),
        ("pdf", 1200, 0),
        ("dxf", 300, 3),
        ("dxf", 3000, 2),
        ("dxf", 100000, 0),
        ("ifc", 40, 3),
        ("ifc", 400, 2),
        ("ifc", 2000, 0),
        ("step", 4, 3),
        ("step", 30, 2),
        ("step", 150, 0),
    ],
}
DWG_WEIGHT = 1


@dataclass
class Template:
    path: Path
    fmt: str
    weight: int


def build_templates(folder: Path, scale: str, corpus: Path | None) -> list[Template]:
    templates = []
    for fmt, size, weight in TEMPLATES[scale]:
        path = folder / f"{fmt}_{size}{SUFFIX[fmt]}"
        with native_stdout_to_stderr():
            GENERATORS[fmt](path, size)
        templates.append(Template(path, fmt, weight))
    if corpus is not None and (corpus / "dwg").is_dir():
        for source in sorted((corpus / "dwg").glob("*.dwg")):
            target = folder / f"dwg_{source.name}"
            shutil.copyfile(source, target)
            templates.append(Template(target, "dwg", DWG_WEIGHT))
    return templates


def backfill_mix(templates: list[Template], n: int) -> list[Template]:
    """``n`` files cycling through the templates by weight (deterministic); weight 0: exactly once."""
    once = [t for t in templates if t.weight == 0][:n]
    cycle = [t for t in templates for _ in range(t.weight)] or once
    return once + [cycle[i % len(cycle)] for i in range(n - len(once))]
