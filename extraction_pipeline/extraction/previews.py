"""Previews: a PNG of a file, its longest side ``PREVIEW_PX`` pixels, on white, the drawing fitted.

Made in the isolated worker beside the metadata (``extract_file(..., preview=True)``), so a
renderer that hangs or eats memory is held by the worker's limits like any extractor:

- PDF: the first page (MuPDF);
- DXF: the modelspace (or the first paperspace layout when it is empty), recorded by ezdxf's drawing
  add-on for at most ``DXF_BUDGET_S`` seconds and rasterised by Pillow (``preview_raster.py``);
- STEP: the shapes tessellated by OpenCascade, shaded and drawn in an isometric view;
- IFC (SPF, ifcXML, and the model inside an ifcZIP): the products' geometry from ifcopenshell's
  geometry iterator, drawn the same way, within ``IFC_BUDGET_S`` seconds and ``MAX_TRIANGLES``
  triangles (a huge model gets the part done so far);
- DWG (R13 and newer, what ezdwg reads of it): converted to DXF by ezdwg, then drawn as a DXF;
  an older release gets none, and a warning saying so.

A preview never fails a file: a renderer's error becomes a warning and no preview.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

PREVIEW_PX = 512
# Triangles drawn at most (the largest first); a mesh with more is thinned evenly.
MAX_TRIANGLES = 60_000
IFC_BUDGET_S = 20.0
# Seconds a DXF drawing is drawn for: a huge one (300k entities) shows what was drawn by then.
DXF_BUDGET_S = 20.0
Triangle = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


# Beyond these the preview is not attempted (its renderer reads the file again, and drawing takes
# longer than the extraction itself: it would put the file's time limit at risk). Measured: ezdxf
# reads and draws 30k LINEs in about 7 s on one core.
MAX_DXF_ENTITIES = 20_000
MAX_IFC_PRODUCTS = 20_000
MAX_STEP_FACES = 50_000
MAX_MODEL_BYTES = 64 * 1024 * 1024


def too_big(fmt: str, metadata: dict[str, Any], size_bytes: int) -> str | None:
    """Why the file is too big for a preview within the limits (None: it is not)."""
    if fmt in ("dxf", "dwg"):
        entities = sum((metadata.get("entity_counts") or {}).values())
        if entities > MAX_DXF_ENTITIES:
            return f"the modelspace has {entities} entities, more than the {MAX_DXF_ENTITIES} a preview draws"
    if fmt in ("ifc", "step", "dwg") and size_bytes > MAX_MODEL_BYTES:
        return f"the file has {size_bytes} bytes, more than the {MAX_MODEL_BYTES} a preview reads"
    elif fmt == "ifc":
        products = sum((metadata.get("element_counts") or {}).values())
        if products > MAX_IFC_PRODUCTS:
            return f"the model has {products} products, more than the {MAX_IFC_PRODUCTS} a preview draws"
    elif fmt == "step" and (metadata.get("face_count") or 0) > MAX_STEP_FACES:
        return f"the model has {metadata['face_count']} faces, more than the {MAX_STEP_FACES} a preview draws"
    return None


class NoPreview(Exception):
    """The file has nothing to show (an empty drawing, a model without geometry)."""


def make_preview(path: Path, fmt: str) -> bytes:
    """The PNG of ``path`` (detected as ``fmt``). Raises ``NoPreview`` or the renderer's error."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise NoPreview(f"there is no renderer for {fmt} files yet")
    return renderer(path)


def is_blank(png: bytes) -> bool:
    """One colour only: nothing was drawn."""
    import pymupdf

    return bool(pymupdf.Pixmap(png).color_count() <= 1)


def _fitted_png(page: Any, pymupdf: Any) -> bytes:
    """A MuPDF page rendered so that its longest side is PREVIEW_PX, on white."""
    rect = page.rect
    longest = max(abs(rect.width), abs(rect.height))
    if longest <= 0:
        raise NoPreview("the page has no size")
    zoom = PREVIEW_PX / longest
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
    return bytes(pixmap.tobytes("png"))


def _before(deadline: float) -> Callable[[Any], bool]:
    """An ezdxf entity filter that lets entities through until ``deadline`` (``time.monotonic``)."""

    def draw(_entity: Any) -> bool:
        return time.monotonic() < deadline

    return draw


def pdf_preview(path: Path) -> bytes:
    import pymupdf

    with pymupdf.open(str(path), filetype="pdf") as doc:
        if doc.needs_pass and not doc.authenticate(""):
            raise NoPreview("the PDF needs a password")
        if doc.page_count == 0:  # a damaged page tree: rebuild the xref, as the extractor does
            try:
                pymupdf.mupdf.pdf_repair_xref(pymupdf._as_pdf_document(doc))
            except Exception as exc:  # noqa: BLE001
                raise NoPreview(f"the PDF has no pages ({exc})") from exc
            if doc.page_count == 0:
                raise NoPreview("the PDF has no pages")
        return _fitted_png(doc.load_page(0), pymupdf)


def dxf_preview(path: Path) -> bytes:
    from ezdxf.addons.drawing import Frontend, RenderContext, config
    from ezdxf.addons.drawing.recorder import Recorder

    from extraction_pipeline.extraction.formats.dxf_loading import BINARY_SENTINEL, load_document
    from extraction_pipeline.extraction.preview_raster import render_recording

    with path.open("rb") as handle:
        binary = handle.read(len(BINARY_SENTINEL)) == BINARY_SENTINEL
    doc, _auditor, _warnings = load_document(path, binary)
    # The modelspace, or else the first paperspace layout with something on it.
    layouts = [doc.layouts.get(name) for name in doc.layouts.names_in_taborder()]
    msp = next((item for item in layouts if len(item) > 0), None)
    if msp is None:
        raise NoPreview("the drawing has no entities to draw")
    # On white paper, ACI 7 is drawn black. A drawing whose lines are true-colour white (made for a
    # black modelspace) would come out blank: then it is drawn with black and white swapped, as a
    # plot would print it. The colours are read off the recording, before anything is rasterised.
    deadline = time.monotonic() + DXF_BUDGET_S
    for colours in (config.ColorPolicy.COLOR, config.ColorPolicy.COLOR_SWAP_BW):
        recording = Recorder()
        settings = config.Configuration(background_policy=config.BackgroundPolicy.WHITE, color_policy=colours)
        Frontend(RenderContext(doc), recording, config=settings).draw_layout(
            msp, finalize=True, filter_func=_before(deadline)
        )
        if not _all_white(recording):
            break
    player = recording.player()
    if not player.bbox().has_data:
        raise NoPreview("the drawing has no entities to draw")
    # Rasterised by Pillow (``preview_raster``), not through ezdxf's PDF backend: 5-10x faster.
    return render_recording(player, PREVIEW_PX)


def _all_white(backend: Any) -> bool:
    """Whether everything an ezdxf ``Recorder`` holds is drawn in white (or nothing is)."""
    return all(
        properties.color[1:7].lower() == "ffffff" for _record, properties in backend.player().recordings()
    )


def dwg_preview(path: Path) -> bytes:
    """ezdwg turns the drawing into a DXF (what it reads of it: R13 and newer), drawn as a DXF is."""
    import ezdwg

    from extraction_pipeline.extraction.formats.dwg_content import EZDWG_VERSIONS

    with path.open("rb") as handle:
        release = handle.read(6).decode("ascii", "replace")
    if release not in EZDWG_VERSIONS:
        raise NoPreview(f"ezdwg does not read the content of {release} drawings (R13 and newer only)")
    with tempfile.TemporaryDirectory(prefix="dwg-preview-") as folder:
        converted = Path(folder) / "drawing.dxf"
        ezdwg.clear_decode_caches()  # keyed by path: never another file's data
        try:
            ezdwg.to_dxf(str(path), str(converted))
        finally:
            ezdwg.clear_decode_caches()
        return dxf_preview(converted)


def step_preview(path: Path) -> bytes:
    from OCP.IFSelect import IFSelect_RetDone
    from OCP.STEPControl import STEPControl_Reader

    reader = STEPControl_Reader()
    if reader.ReadFile(str(path)) != IFSelect_RetDone:
        raise NoPreview("OpenCascade cannot read the STEP file")
    reader.TransferRoots()
    shape = reader.OneShape()
    return draw_triangles(_occ_triangles(shape))


def _occ_triangles(shape: Any) -> list[Triangle]:
    from OCP.Bnd import Bnd_Box
    from OCP.BRep import BRep_Tool
    from OCP.BRepBndLib import BRepBndLib
    from OCP.BRepMesh import BRepMesh_IncrementalMesh
    from OCP.TopAbs import TopAbs_FACE, TopAbs_REVERSED
    from OCP.TopExp import TopExp_Explorer
    from OCP.TopLoc import TopLoc_Location
    from OCP.TopoDS import TopoDS

    box = Bnd_Box()
    BRepBndLib.Add_s(shape, box)
    if box.IsVoid():
        raise NoPreview("the STEP file holds no geometry")
    xmin, ymin, zmin, xmax, ymax, zmax = box.Get()
    diagonal = math.dist((xmin, ymin, zmin), (xmax, ymax, zmax))
    BRepMesh_IncrementalMesh(shape, max(diagonal / 300.0, 1e-6), False, 0.5, True)
    triangles: list[Triangle] = []
    explorer = TopExp_Explorer(shape, TopAbs_FACE)
    while explorer.More():
        face = TopoDS.Face_s(explorer.Current())
        location = TopLoc_Location()
        mesh = BRep_Tool.Triangulation_s(face, location)
        if mesh is not None:
            transform = location.Transformation()
            nodes = [mesh.Node(i).Transformed(transform) for i in range(1, mesh.NbNodes() + 1)]
            points = [(p.X(), p.Y(), p.Z()) for p in nodes]
            reversed_face = face.Orientation() == TopAbs_REVERSED
            for index in range(1, mesh.NbTriangles() + 1):
                a, b, c = mesh.Triangle(index).Get()
                if reversed_face:
                    b, c = c, b
                triangles.append((points[a - 1], points[b - 1], points[c - 1]))
        explorer.Next()
    return triangles


def ifc_preview(path: Path) -> bytes:
    from extraction_pipeline.extraction.formats.ifc_reading import inflate_member, sniff_variant

    if sniff_variant(path) != "ifczip":
        return _ifc_model_preview(path)
    # The model inside the zip, inflated (at most MAX_MODEL_BYTES) into a folder that goes with it.
    with tempfile.TemporaryDirectory(prefix="ifczip-preview-") as folder:
        _member, inner = inflate_member(path, Path(folder), MAX_MODEL_BYTES, [])
        return _ifc_model_preview(inner)


def _ifc_model_preview(path: Path) -> bytes:
    import ifcopenshell
    import ifcopenshell.geom

    from extraction_pipeline.extraction.formats.ifc_reading import open_ifcxml, sniff_variant

    if sniff_variant(path) == "ifcxml":
        model, _logger = open_ifcxml(path, inside_zip=False)
    else:
        model = ifcopenshell.open(str(path))
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    iterator = ifcopenshell.geom.iterator(settings, model, 1)
    if not iterator.initialize():
        raise NoPreview("the model has no geometry ifcopenshell can build")
    deadline = time.monotonic() + IFC_BUDGET_S
    triangles: list[Triangle] = []
    while True:
        shape = iterator.get()
        if not shape.product.is_a("IfcOpeningElement") and not shape.product.is_a("IfcSpace"):
            verts = shape.geometry.verts
            faces = shape.geometry.faces
            points = [(verts[i], verts[i + 1], verts[i + 2]) for i in range(0, len(verts), 3)]
            triangles.extend(
                (points[faces[i]], points[faces[i + 1]], points[faces[i + 2]])
                for i in range(0, len(faces), 3)
            )
        if len(triangles) > 4 * MAX_TRIANGLES or time.monotonic() > deadline or not iterator.next():
            break
    return draw_triangles(triangles)


def draw_triangles(triangles: Sequence[Triangle]) -> bytes:
    """Triangles in an isometric view (from the front right, above), flat-shaded, far ones first."""
    import pymupdf

    if not triangles:
        raise NoPreview("there is no geometry to draw")
    if len(triangles) > MAX_TRIANGLES:
        step = len(triangles) / MAX_TRIANGLES
        triangles = [triangles[int(i * step)] for i in range(MAX_TRIANGLES)]
    yaw, pitch = math.radians(45.0), math.radians(35.264)
    cos_y, sin_y, cos_p, sin_p = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)

    def view(point: tuple[float, float, float]) -> tuple[float, float, float]:
        x, y, z = point
        u = x * cos_y - y * sin_y  # right
        w = x * sin_y + y * cos_y  # into the screen (before the tilt)
        v = z * cos_p - w * sin_p  # up
        depth = z * sin_p + w * cos_p
        return u, v, depth

    projected = [tuple(view(p) for p in triangle) for triangle in triangles]
    us = [p[0] for tri in projected for p in tri]
    vs = [p[1] for tri in projected for p in tri]
    width, height = max(us) - min(us), max(vs) - min(vs)
    span = max(width, height)
    if span <= 0 or not math.isfinite(span):
        raise NoPreview("the geometry has no extent")
    margin = PREVIEW_PX * 0.04
    scale = (PREVIEW_PX - 2 * margin) / span
    page_w = max(width * scale + 2 * margin, 1.0) if width >= height else PREVIEW_PX
    page_h = max(height * scale + 2 * margin, 1.0) if height > width else PREVIEW_PX
    left, top = min(us), max(vs)
    light = _normalized((0.3, 0.5, 1.0))
    doc = pymupdf.open()
    try:
        page = doc.new_page(width=page_w, height=page_h)
        shape = page.new_shape()
        order = sorted(range(len(projected)), key=lambda i: -sum(p[2] for p in projected[i]))
        for index in order:
            a, b, c = projected[index]
            normal = _normal(a, b, c)
            if normal is None:
                continue
            shade = 0.35 + 0.6 * abs(sum(n * s for n, s in zip(normal, light, strict=True)))
            points = [
                pymupdf.Point(margin + (p[0] - left) * scale, margin + (top - p[1]) * scale)
                for p in (a, b, c)
            ]
            shape.draw_polyline([*points, points[0]])
            colour = (shade * 0.55, shade * 0.7, shade * 0.9)
            shape.finish(color=colour, fill=colour, width=0.3, closePath=True)
        shape.commit()
        return _fitted_png(page, pymupdf)
    finally:
        doc.close()


def _normalized(vector: Iterable[float]) -> tuple[float, float, float]:
    x, y, z = vector
    length = math.sqrt(x * x + y * y + z * z) or 1.0
    return x / length, y / length, z / length


def _normal(
    a: tuple[float, float, float], b: tuple[float, float, float], c: tuple[float, float, float]
) -> tuple[float, float, float] | None:
    ux, uy, uz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    vx, vy, vz = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    length = math.sqrt(nx * nx + ny * ny + nz * nz)
    if length == 0 or not math.isfinite(length):
        return None
    return nx / length, ny / length, nz / length


_RENDERERS: dict[str, Callable[[Path], bytes]] = {
    "pdf": pdf_preview,
    "dwg": dwg_preview,
    "dxf": dxf_preview,
    "step": step_preview,
    "ifc": ifc_preview,
}
