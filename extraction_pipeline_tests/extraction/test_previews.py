"""Previews: a 512 px PNG on white, the drawing fitted; made with the metadata, never failing a file."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest

from extraction_pipeline.extraction import previews
from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.samples import write_ifc, write_pdf, write_step
from extraction_pipeline_tests.corpus import CORPUS_DIR


def picture(png: bytes) -> pymupdf.Pixmap:
    pixmap = pymupdf.Pixmap(png)
    assert max(pixmap.width, pixmap.height) == previews.PREVIEW_PX
    return pixmap


def white_corner(pixmap: pymupdf.Pixmap) -> bool:
    return tuple(pixmap.pixel(0, 0))[:3] == (255, 255, 255)


CORPUS_FILES = sorted(
    path for fmt in ("pdf", "dxf", "step") for path in (CORPUS_DIR / fmt).glob("*") if path.is_file()
)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_every_corpus_pdf_dxf_and_step_that_succeeds_gets_a_preview_that_is_not_blank(path: Path) -> None:
    envelope = extract_file(path, preview=True)
    if envelope.status != "succeeded":
        assert envelope.preview_png is None
        return
    if envelope.preview_png is None:  # only a drawing with nothing in it has no preview
        assert (
            envelope.format == "dxf"
            and "no preview: the drawing has no entities to draw" in envelope.warnings
        )
        assert sum(envelope.metadata["entity_counts"].values()) == 0
        return
    pixmap = picture(base64.b64decode(envelope.preview_png))
    assert white_corner(pixmap)
    metadata = envelope.metadata
    if envelope.format == "pdf" and metadata["text_chars"] == 0 and metadata["image_count"] == 0:
        # A first page with nothing on it (a fuzzed file MuPDF repaired): blank, and said so.
        assert "the preview is blank: the first page or the drawing shows nothing" in envelope.warnings
        return
    assert pixmap.color_count() > 1, path.name


def test_the_models_of_step_and_ifc_are_drawn_shaded(tmp_path: Path) -> None:
    models = [write_step(tmp_path / "part.step"), *sorted((CORPUS_DIR / "ifc").glob("*.ifc"))[:3]]
    # The generated sample IFC has no geometry: there is nothing to draw.
    assert extract_file(write_ifc(tmp_path / "model.ifc"), preview=True).warnings[-1].startswith("no preview")
    for path in models:
        if path.name.startswith("fail-"):
            continue
        envelope = extract_file(path, preview=True)
        assert envelope.status == "succeeded" and envelope.preview_png is not None, envelope.warnings
        pixmap = picture(base64.b64decode(envelope.preview_png))
        assert pixmap.color_count() > 2 and white_corner(pixmap)


def test_a_renderer_that_fails_leaves_a_warning_and_a_succeeded_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path) -> bytes:
        raise RuntimeError("the renderer fell over")

    monkeypatch.setitem(previews._RENDERERS, "pdf", broken)
    envelope = extract_file(write_pdf(tmp_path / "a.pdf"), preview=True)
    assert envelope.status == "succeeded" and envelope.preview_png is None
    assert "no preview: the renderer failed (RuntimeError: the renderer fell over)" in envelope.warnings
    assert extract_file(write_pdf(tmp_path / "b.pdf")).preview_png is None  # not asked for: not made


def test_the_cli_writes_the_thumbnail_of_one_file(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", pages=3)
    out = tmp_path / "a.png"
    done = subprocess.run(
        [sys.executable, "-m", "extraction_pipeline", "extract", str(pdf), "--thumbnail", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    envelope = json.loads(done.stdout)
    assert "preview_png" not in envelope and envelope["status"] == "succeeded"
    assert picture(out.read_bytes()).color_count() > 1

    write_pdf(tmp_path / "b.pdf")
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "extraction_pipeline",
            "extract",
            str(pdf),
            str(pdf.with_name("b.pdf")),
            "--thumbnail",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 2 and "one file at a time" in two.stderr


DWG_FILES = sorted((CORPUS_DIR / "dwg").glob("*.dwg"))


@pytest.mark.parametrize("path", DWG_FILES, ids=[p.name for p in DWG_FILES])
def test_a_dwg_gets_a_preview_where_ezdwg_reads_it_and_else_says_why(path: Path) -> None:
    """R13 and newer drawings are converted by ezdwg and drawn; an older one gets none and the reason."""
    envelope = extract_file(path, preview=True)
    assert envelope.status == "succeeded", envelope.error
    if path.read_bytes()[:6] == b"AC1009":  # R11/R12: ezdwg reads the header only
        assert "no preview: ezdwg does not read the content of AC1009 drawings (R13 and newer only)" in (
            envelope.warnings
        )
        assert envelope.preview_png is None
        return
    assert not [w for w in envelope.warnings if "preview" in w]
    pixmap = picture(base64.b64decode(envelope.preview_png or ""))
    assert white_corner(pixmap) and pixmap.color_count() > 1


def test_the_cli_writes_a_dwgs_thumbnail_and_exits_as_the_extraction(tmp_path: Path) -> None:
    [r11] = [path for path in DWG_FILES if path.read_bytes()[:6] == b"AC1009"]
    [newer] = [path for path in DWG_FILES if path.name == "sample_2018.dwg"]
    for path, written in ((r11, False), (newer, True)):
        out = tmp_path / f"{path.stem}.png"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "extraction_pipeline",
                "extract",
                str(path),
                "--thumbnail",
                str(out),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr  # the exit status is the extraction's
        assert out.exists() == written
        assert any(w.startswith("no preview: ") for w in json.loads(done.stdout)["warnings"]) != written


def test_a_huge_drawing_gets_no_preview_but_its_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_DXF_ENTITIES the preview is not attempted: reading and drawing it again would put the
    file's time limit at risk (30k LINEs: about 7 s). The limit is lowered here to keep the test fast."""
    import ezdxf

    monkeypatch.setattr(previews, "MAX_DXF_ENTITIES", 50)
    doc = ezdxf.new("R2018")
    for number in range(60):
        doc.modelspace().add_line((number, 0), (number, 10))
    doc.saveas(tmp_path / "many.dxf")
    envelope = extract_file(tmp_path / "many.dxf", preview=True)
    assert envelope.status == "succeeded" and envelope.metadata["entity_counts"] == {"LINE": 60}
    assert envelope.preview_png is None
    assert "no preview: the modelspace has 60 entities, more than the 50 a preview draws" in envelope.warnings


def test_a_drawing_is_fitted_and_filled_areas_keep_their_holes(tmp_path: Path) -> None:
    """A 200 x 100 drawing: a red solid hatch with a square hole, a blue SOLID, a black line along the
    bottom. Landscape, 512 px wide; the hole is white (even-odd), the areas in their colours."""
    import ezdxf

    doc = ezdxf.new("R2018")
    msp = doc.modelspace()
    hatch = msp.add_hatch(color=1)  # red
    hatch.paths.add_polyline_path([(0, 0), (100, 0), (100, 100), (0, 100)], is_closed=True)
    hatch.paths.add_polyline_path([(30, 30), (70, 30), (70, 70), (30, 70)], is_closed=True)
    msp.add_solid([(120, 20), (180, 20), (120, 80), (180, 80)], dxfattribs={"color": 5})  # blue
    msp.add_line((0, 0), (200, 0))
    msp.add_line((200, 0), (200, 100))
    doc.saveas(tmp_path / "areas.dxf")
    pixmap = picture(previews.make_preview(tmp_path / "areas.dxf", "dxf"))
    assert pixmap.width == 512 and 250 < pixmap.height < 262
    scale = (512 - 8) / 200  # pixels per drawing unit inside the 4 px margin

    def at(x: float, y: float) -> tuple[int, ...]:
        return tuple(pixmap.pixel(round(4 + x * scale), round(pixmap.height - 4 - y * scale)))[:3]

    assert at(15, 50) == (255, 0, 0)  # the hatch's ring
    assert at(50, 50) == (255, 255, 255)  # its hole
    assert at(150, 50) == (0, 0, 255)  # the SOLID
    assert at(190, 90) == (255, 255, 255)  # nothing drawn there
    assert white_corner(pixmap)


ALL_CORPUS_FILES = sorted(
    path
    for fmt in ("pdf", "dxf", "dwg", "ifc", "step")
    for path in (CORPUS_DIR / fmt).glob("*")
    if path.is_file()
)


@pytest.mark.parametrize("path", ALL_CORPUS_FILES, ids=[p.name for p in ALL_CORPUS_FILES])
def test_the_text_and_the_preview_change_nothing_in_the_metadata(path: Path) -> None:
    """The pipeline asks for the text and the preview; `extract --json` alone for neither: the same
    status, metadata and warnings either way (bar the preview's own warnings)."""
    plain = extract_file(path)
    full = extract_file(path, max_text_chars=1_000_000, preview=True)
    assert (full.status, full.format, full.variant, full.error) == (
        plain.status,
        plain.format,
        plain.variant,
        plain.error,
    )
    assert full.metadata == plain.metadata
    own = [w for w in full.warnings if not w.startswith(("no preview: ", "the preview is blank"))]
    assert own == plain.warnings
