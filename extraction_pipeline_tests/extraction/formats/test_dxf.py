"""DXF extraction: drawings built here with ezdxf (ASCII, binary, damaged, headerless) and the corpus."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import ezdxf
import pytest
from ezdxf import bbox
from ezdxf.addons import r12writer
from ezdxf.tools.juliandate import juliandate

from extraction_pipeline.extraction.context import ExtractionContext
from extraction_pipeline.extraction.detect import Detection, Format
from extraction_pipeline.extraction.errors import CorruptFile
from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.extraction.formats import dxf
from extraction_pipeline.extraction.formats.autocad import julian_to_iso

REQUIRED_KEYS = {
    "dxf_version",
    "release",
    "binary",
    "units",
    "layer_names",
    "block_names",
    "layout_names",
    "entity_counts",
    "extents",
    "text_count",
    "title_block_attributes",
    "recovered",
    "audit_fixes",
}

CREATED = datetime(2021, 3, 4, 5, 6, 7)


def _drawing() -> ezdxf.document.Drawing:
    """R2000 in millimetres: layers, a title block with attributes on a sheet, texts, known geometry.

    Model space extents: the line (0, 0, 0)-(100, 50, 0) and the circle at (200, 0, 0) with radius 10
    give min (0, -10, 0) and max (210, 50, 0); everything else lies well inside.
    """
    doc = ezdxf.new("R2000", units=4)
    doc.header["$TDCREATE"] = juliandate(CREATED)
    doc.layers.add("WALLS")
    doc.layers.add("NOTES")
    doc.layers.add("Straße Ω")  # Ω is not in cp1252: written as a \U+03A9 escape

    title = doc.blocks.new("TITLE")
    title.add_lwpolyline([(0, 0), (180, 0), (180, 40), (0, 40)], close=True)
    title.add_attdef("PROJECT", (5, 30), dxfattribs={"height": 3})
    title.add_attdef("DRAWN_BY", (5, 20), dxfattribs={"height": 3})
    bolt = doc.blocks.new("BOLT")
    bolt.add_circle((0, 0), radius=2)

    msp = doc.modelspace()
    msp.add_line((0, 0, 0), (100, 50, 0), dxfattribs={"layer": "WALLS"})
    msp.add_circle((200, 0, 0), radius=10, dxfattribs={"layer": "WALLS"})
    msp.add_arc((150, 20), radius=5, start_angle=0, end_angle=180, dxfattribs={"layer": "Straße Ω"})
    msp.add_text("Pump", height=2.5, dxfattribs={"layer": "NOTES"}).set_placement((20, 20))
    msp.add_mtext("Line one\\PLine two", dxfattribs={"layer": "NOTES", "char_height": 2}).set_location(
        (40, 30)
    )
    msp.add_blockref("BOLT", (50, 10))

    sheet = doc.layouts.new("Sheet A")
    sheet.add_blockref("TITLE", (10, 10)).add_auto_attribs({"PROJECT": "Pump house", "DRAWN_BY": "A. Müller"})
    return doc


def _check_drawing(meta: dict) -> None:
    assert meta.keys() >= REQUIRED_KEYS
    assert meta["dxf_version"] == "AC1015"
    assert meta["release"] == "R2000"
    assert meta["units"] == "mm"
    assert {"0", "WALLS", "NOTES", "Straße Ω"} <= set(meta["layer_names"])
    assert sorted(meta["block_names"]) == ["BOLT", "TITLE"]
    assert meta["layout_names"] == ["Model", "Layout1", "Sheet A"]
    assert meta["entity_counts"] == {"ARC": 1, "CIRCLE": 1, "INSERT": 1, "LINE": 1, "MTEXT": 1, "TEXT": 1}
    assert meta["extents"]["min"] == pytest.approx([0.0, -10.0, 0.0], abs=1e-9)
    assert meta["extents"]["max"] == pytest.approx([210.0, 50.0, 0.0], abs=1e-9)
    assert meta["text_count"] == 2
    assert meta["title_block_attributes"] == {"PROJECT": "Pump house", "DRAWN_BY": "A. Müller"}
    assert meta["recovered"] is False
    assert meta["audit_fixes"] == 0
    assert meta["created_at"] == CREATED.isoformat()
    # ezdxf stamps $TDUPDATE with the local time of saving.
    saved = datetime.fromisoformat(meta["modified_at"])
    assert abs(saved - datetime.now()) < timedelta(hours=1)


def test_ascii_drawing_reports_every_fact(tmp_path: Path) -> None:
    path = tmp_path / "plan.dxf"
    _drawing().saveas(path)

    envelope = extract_file(path)

    assert envelope.status == "succeeded", envelope.error
    assert (envelope.format, envelope.variant, envelope.extension_matches) == ("dxf", "ascii", True)
    assert envelope.warnings == []
    assert envelope.metadata["binary"] is False
    _check_drawing(envelope.metadata)


def test_binary_drawing_reports_the_same_facts(tmp_path: Path) -> None:
    path = tmp_path / "plan.dxf"
    _drawing().saveas(path, fmt="bin")
    assert path.read_bytes().startswith(b"AutoCAD Binary DXF")

    envelope = extract_file(path)

    assert envelope.status == "succeeded", envelope.error
    assert envelope.variant == "binary"
    assert envelope.metadata["binary"] is True
    _check_drawing(envelope.metadata)


def test_damaged_file_is_recovered_with_a_warning(tmp_path: Path) -> None:
    good = tmp_path / "good.dxf"
    doc = ezdxf.new("R2000")
    for x in range(5):
        doc.modelspace().add_line((x, 0), (x, 10))
    doc.saveas(good)
    damaged = tmp_path / "damaged.dxf"
    text = good.read_text(encoding="cp1252")
    # The BLOCKS section loses its SECTION tag: the standard reader stops at the orphaned ENDSEC.
    broken = text.replace("  0\nSECTION\n  2\nBLOCKS\n", "  2\nBLOCKS\n", 1)
    assert broken != text
    damaged.write_text(broken, encoding="cp1252")
    with pytest.raises(ezdxf.DXFStructureError):
        ezdxf.readfile(damaged)

    envelope = extract_file(damaged)

    assert envelope.status == "succeeded", envelope.error
    meta = envelope.metadata
    assert meta["recovered"] is True
    assert meta["audit_fixes"] >= 1
    assert meta["entity_counts"] == {"LINE": 5}
    assert meta["extents"] == {"min": [0.0, 0.0, 0.0], "max": [4.0, 10.0, 0.0]}
    assert any("recovered" in w and "ENDSEC" in w for w in envelope.warnings)


def test_headerless_r12_file_has_no_units_or_dates(tmp_path: Path) -> None:
    path = tmp_path / "entities_only.dxf"
    with r12writer(str(path)) as writer:
        for i in range(2000):
            writer.add_line((i, 0), (i, 5), layer="GRID")
            writer.add_circle((i, 100), radius=0.5, layer="HOLES")
            writer.add_text(f"P{i}", insert=(i % 1500, 50), height=0.4, layer="LABELS")
        writer.add_point((-3, -4, 0), layer="GRID")

    envelope = extract_file(path)

    assert envelope.status == "succeeded", envelope.error
    meta = envelope.metadata
    assert meta["dxf_version"] == "AC1009"
    assert meta["release"] == "R12"
    assert meta["units"] is None
    assert meta["created_at"] is None and meta["modified_at"] is None
    # No LAYER table: the layers the entities use, not ezdxf's invented "0"/"Defpoints".
    assert meta["layer_names"] == ["GRID", "HOLES", "LABELS"]
    assert meta["entity_counts"] == {"CIRCLE": 2000, "LINE": 2000, "POINT": 1, "TEXT": 2000}
    assert meta["text_count"] == 2000
    assert meta["extents"]["min"] == pytest.approx([-3.0, -4.0, 0.0])
    assert meta["extents"]["max"] == pytest.approx([1999.5, 100.5, 0.0])


def test_extents_ignore_stale_header_extents(tmp_path: Path) -> None:
    doc = ezdxf.new("R2013")
    doc.modelspace().add_line((1, 2, 3), (4, 6, 8))
    doc.header["$EXTMIN"] = (-1e20, -1e20, -1e20)
    doc.header["$EXTMAX"] = (1e20, 1e20, 1e20)
    path = tmp_path / "stale.dxf"
    doc.saveas(path)

    meta = extract_file(path).metadata

    assert meta["extents"] == {"min": [1.0, 2.0, 3.0], "max": [4.0, 6.0, 8.0]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_extents_agree_with_ezdxf_bbox(tmp_path: Path, seed: int) -> None:
    """The measured-directly entity kinds and the skipped texts give ezdxf.bbox's answer."""
    rng = random.Random(seed)
    doc = ezdxf.new("R2018")
    msp = doc.modelspace()
    for _ in range(20):
        x, y = rng.uniform(-50, 50), rng.uniform(-50, 50)
        msp.add_arc((x, y), rng.uniform(1, 20), rng.uniform(-360, 360), rng.uniform(-360, 360))
        msp.add_circle((x, y, rng.uniform(-5, 5)), rng.uniform(1, 10))
        msp.add_lwpolyline([(x, y), (x + rng.uniform(-30, 30), y), (x, y + 5)], dxfattribs={"elevation": 2})
        msp.add_lwpolyline([(x, y, 0, 0, 0.7), (x + 10, y + 10)], format="xyseb")  # a bulge: via ezdxf
        msp.add_point((x, y, rng.uniform(-9, 9)))
        msp.add_arc((x, y), 3, 10, 80, dxfattribs={"extrusion": (0, 0, -1)})  # mirrored plane: via ezdxf
        # Labels inside and across the border of everything else.
        msp.add_text("label " * rng.randint(1, 4), height=rng.uniform(0.5, 4)).set_placement(
            (rng.uniform(-80, 80), rng.uniform(-80, 80))
        )
    path = tmp_path / "mix.dxf"
    doc.saveas(path)

    meta = extract_file(path).metadata
    reference = bbox.extents(ezdxf.readfile(path).modelspace())

    # ezdxf flattens arcs and circles into short chords: it may fall short of the true extremes a bit.
    assert meta["extents"]["min"] == pytest.approx(list(reference.extmin), abs=0.05)
    assert meta["extents"]["max"] == pytest.approx(list(reference.extmax), abs=0.05)


def test_text_crossing_the_border_of_the_geometry_counts(tmp_path: Path) -> None:
    doc = ezdxf.new("R2018")
    msp = doc.modelspace()
    msp.add_lwpolyline([(0, 0), (100, 0), (100, 100), (0, 100)], close=True)
    msp.add_text("inside", height=2).set_placement((50, 50))
    msp.add_text("A label that runs past the frame", height=3).set_placement((60, 50))
    path = tmp_path / "frame.dxf"
    doc.saveas(path)

    meta = extract_file(path).metadata
    reference = bbox.extents(ezdxf.readfile(path).modelspace())

    assert reference.extmax.x > 110
    assert meta["extents"]["min"] == pytest.approx(list(reference.extmin), abs=1e-9)
    assert meta["extents"]["max"] == pytest.approx(list(reference.extmax), abs=1e-9)


def test_empty_drawing_has_null_extents(tmp_path: Path) -> None:
    path = tmp_path / "empty.dxf"
    ezdxf.new("R2010").saveas(path)

    meta = extract_file(path).metadata

    assert meta["extents"] is None
    assert meta["entity_counts"] == {}
    assert meta["text_count"] == 0
    assert meta["title_block_attributes"] == {}


def test_unreadable_dxf_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "junk.dxf"
    path.write_text("0\nSECTION\n2\nENTITIES\nhello\nworld\n", encoding="ascii")

    envelope = extract_file(path)

    assert envelope.status == "failed"
    assert envelope.format == "dxf"
    assert envelope.error.code == "corrupt"
    assert "not a readable DXF" in envelope.error.message


def test_truncated_binary_dxf_is_corrupt(tmp_path: Path) -> None:
    whole = tmp_path / "whole.dxf"
    _drawing().saveas(whole, fmt="bin")
    cut = tmp_path / "cut.dxf"
    cut.write_bytes(whole.read_bytes()[:300])

    envelope = extract_file(cut)

    assert envelope.status == "failed"
    assert envelope.variant == "binary"
    assert envelope.error.code == "corrupt"
    assert "binary DXF" in envelope.error.message


def test_text_file_given_to_the_extractor_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\nnothing to see\n", encoding="ascii")
    context = ExtractionContext(detection=Detection(Format.DXF, "ascii"), filename=path.name)

    with pytest.raises(CorruptFile, match="not a readable DXF"):
        dxf.extract(path, context)


@pytest.mark.parametrize(
    ("julian", "expected"),
    [
        (2451544.91568287, "1999-12-31T21:58:35"),  # the example of AutoCAD's DXF reference
        (juliandate(datetime(2020, 8, 4, 10, 41, 7)), "2020-08-04T10:41:07"),
        (0.0, None),
        ("garbage", None),
        (float("nan"), None),
        (2415021.0, "1900-01-01T00:00:00"),
        (2488070.0, None),  # 2100-01-01: out of range, as in DWG
        (2451545.5 + 0.855 / 86_400, "2000-01-01T12:00:01"),  # to the nearest second
    ],
)
def test_julian_dates(julian: object, expected: str | None) -> None:
    """DXF header dates and DWG's DWGPROPS dates go through the same conversion."""
    assert julian_to_iso(julian) == expected


def test_dwg_binary_header_dates_use_the_same_conversion() -> None:
    from extraction_pipeline.extraction.formats.dwg_properties import _julian_to_iso

    assert _julian_to_iso(2451545, 43_200_855) == "2000-01-01T12:00:01"
    assert _julian_to_iso(2451545, 86_400_000) is None  # more milliseconds than a day has
    assert _julian_to_iso(0, 0) is None
