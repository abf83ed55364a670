"""Small sample documents for the quick start, built with the format libraries themselves.

No file is shipped: a PDF, a DXF drawing with a title block, a DWG floor plan, an IFC building
model and a STEP part (the writers the table of formats names) are generated into a folder, so a newcomer sees every extractor succeed
(``extraction-pipeline doctor`` extracts the same samples to check an installation).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Discard what native code prints on fd 1 (OpenCascade's transfer statistics banner)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


SAMPLE_PDF_TEXT = "Sample specification, page {page}"
SAMPLE_PDF_METADATA: Mapping[str, str] = MappingProxyType(
    {"title": "Sample specification", "author": "extraction-pipeline", "subject": "quick start"}
)
SAMPLE_PDF_OUTLINE: tuple[tuple[str, int], ...] = (("Scope", 1), ("Details", 2))


def pdf_bytes(
    pages: int = 2,
    *,
    text: str | Callable[[int], str] = SAMPLE_PDF_TEXT,
    at: tuple[float, float] = (72, 96),
    fontsize: float = 14,
    image_every: int = 0,
    outline: Sequence[tuple[str, int]] = SAMPLE_PDF_OUTLINE,
    notes: Iterable[int] = (),
    metadata: Mapping[str, str] | None = SAMPLE_PDF_METADATA,
    compress: bool = False,
) -> bytes:
    """A PDF of ``pages`` A4 pages written by PyMuPDF; the defaults make the quick start's sample.

    ``text``: each page's text, a template with ``{page}`` (1-based) or a function of the page
    number (lines separated by newlines), inserted at ``at`` in ``fontsize``. ``image_every``: a
    64x64 grey image on pages 1, 1 + n, 1 + 2n, ... (0: none). ``outline``: (title, page) entries of
    the table of contents. ``notes``: pages (1-based) that get a text annotation. ``metadata``: the
    document information (None: PyMuPDF's own). ``compress``: deflate the streams, drop unused objects.
    """
    import pymupdf

    doc = pymupdf.open()
    picture = None
    if image_every:
        picture = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), 0)
        picture.clear_with(180)
    annotated = set(notes)
    for number in range(1, pages + 1):
        page = doc.new_page(width=595, height=842)
        page.insert_text(at, text(number) if callable(text) else text.format(page=number), fontsize=fontsize)
        if picture is not None and (number - 1) % image_every == 0:
            page.insert_image(pymupdf.Rect(400, 700, 500, 800), pixmap=picture)
        if number in annotated:
            page.add_text_annot((30, 30), "note")
    if outline:
        doc.set_toc([[1, title, page] for title, page in outline])
    if metadata is not None:
        doc.set_metadata(dict(metadata))
    data: bytes = doc.tobytes(garbage=1, deflate=True) if compress else doc.tobytes()
    doc.close()
    return data


def write_pdf(path: Path, pages: int = 2, **options: Any) -> Path:
    """``pdf_bytes(pages, **options)`` written to ``path``: with the defaults, the 2-page sample."""
    path.write_bytes(pdf_bytes(pages, **options))
    return path


def write_dxf(path: Path) -> Path:
    import ezdxf

    doc = ezdxf.new("R2018", setup=True)
    doc.units = ezdxf.units.MM
    doc.layers.add("WALLS", color=1)
    doc.layers.add("TITLE", color=7)
    title = doc.blocks.new("TITLE_BLOCK")
    title.add_lwpolyline([(0, 0), (180, 0), (180, 40), (0, 40)], close=True)
    for tag, y in (("PROJECT", 28), ("DRAWN_BY", 16), ("SHEET", 4)):
        title.add_attdef(tag, (4, y), dxfattribs={"height": 5})
    msp = doc.modelspace()
    msp.add_lwpolyline(
        [(0, 0), (4000, 0), (4000, 3000), (0, 3000)], close=True, dxfattribs={"layer": "WALLS"}
    )
    msp.add_text("Plant room", dxfattribs={"layer": "TITLE", "height": 120}).set_placement((200, 2700))
    insert = msp.add_blockref("TITLE_BLOCK", (4200, 0), dxfattribs={"layer": "TITLE"})
    insert.add_auto_attribs({"PROJECT": "Quick start", "DRAWN_BY": "extraction-pipeline", "SHEET": "A-101"})
    doc.saveas(path)
    return path


def write_dwg(path: Path) -> Path:
    """A plant room in DWG R2000 (AC1015), written by ezdwg: walls, a pump, a label."""
    import ezdwg

    drawing = ezdwg.new("AC1015")
    drawing.layers["WALLS"] = {"color_index": 1}
    drawing.layers["EQUIPMENT"] = {"color_index": 3}
    drawing.layers["TITLE"] = {"color_index": 7}
    space = drawing.modelspace()
    corners = [(0.0, 0.0), (4000.0, 0.0), (4000.0, 3000.0), (0.0, 3000.0)]
    for start, end in zip(corners, corners[1:] + corners[:1], strict=True):
        space.add_line(start, end, layer="WALLS")
    space.add_circle((2000.0, 1500.0), 300.0, layer="EQUIPMENT")
    space.add_text("Plant room", (200.0, 2700.0), 120.0, layer="TITLE")
    drawing.save(str(path), strict=True)
    return path


def write_ifc(path: Path) -> Path:
    import ifcopenshell
    import ifcopenshell.api

    model = ifcopenshell.api.run("project.create_file", version="IFC4")
    project = ifcopenshell.api.run(
        "root.create_entity", model, ifc_class="IfcProject", name="Sample building"
    )
    ifcopenshell.api.run("unit.assign_unit", model)
    site = ifcopenshell.api.run("root.create_entity", model, ifc_class="IfcSite", name="Site")
    building = ifcopenshell.api.run("root.create_entity", model, ifc_class="IfcBuilding", name="Building A")
    ifcopenshell.api.run("aggregate.assign_object", model, relating_object=project, products=[site])
    ifcopenshell.api.run("aggregate.assign_object", model, relating_object=site, products=[building])
    for index, name in enumerate(("Ground floor", "First floor")):
        storey = ifcopenshell.api.run("root.create_entity", model, ifc_class="IfcBuildingStorey", name=name)
        storey.Elevation = 3000.0 * index
        ifcopenshell.api.run("aggregate.assign_object", model, relating_object=building, products=[storey])
        for wall_number in range(3):
            wall = ifcopenshell.api.run(
                "root.create_entity", model, ifc_class="IfcWall", name=f"Wall {index}.{wall_number}"
            )
            ifcopenshell.api.run(
                "spatial.assign_container", model, relating_structure=storey, products=[wall]
            )
            pset = ifcopenshell.api.run("pset.add_pset", model, product=wall, name="Pset_WallCommon")
            ifcopenshell.api.run("pset.edit_pset", model, pset=pset, properties={"IsExternal": True})
    model.write(str(path))
    return path


def write_step(path: Path) -> Path:
    from OCP.BRepAlgoAPI import BRepAlgoAPI_Fuse
    from OCP.BRepPrimAPI import BRepPrimAPI_MakeBox, BRepPrimAPI_MakeCylinder
    from OCP.gp import gp_Ax2, gp_Dir, gp_Pnt
    from OCP.IFSelect import IFSelect_RetDone
    from OCP.STEPControl import STEPControl_AsIs, STEPControl_Writer

    box = BRepPrimAPI_MakeBox(40.0, 30.0, 10.0).Shape()
    boss = BRepPrimAPI_MakeCylinder(gp_Ax2(gp_Pnt(20, 15, 10), gp_Dir(0, 0, 1)), 8.0, 12.0).Shape()
    part = BRepAlgoAPI_Fuse(box, boss).Shape()
    writer = STEPControl_Writer()
    with _quiet_stdout():
        writer.Transfer(part, STEPControl_AsIs)
        written = writer.Write(str(path))
    if written != IFSelect_RetDone:
        raise RuntimeError(f"OCP could not write {path}")
    return path


def sample_writers() -> dict[str, Callable[[Path], Path]]:
    """Sample file name -> its writer, one per format of the table of formats that has a sample
    (``FormatSpec.sample_file``, ``sample_writer``)."""
    from extraction_pipeline.extraction import format_table

    return {
        spec.sample_file: format_table.resolve(spec.sample_writer)
        for spec in format_table.formats()
        if spec.sample_file and spec.sample_writer
    }


def write_samples(folder: Path) -> list[Path]:
    """Write one sample per format into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    return [writer(folder / name) for name, writer in sample_writers().items()]
