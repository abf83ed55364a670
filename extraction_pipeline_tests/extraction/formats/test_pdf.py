"""PDF extraction: documents built here with PyMuPDF, damaged copies of them, and the real-world corpus."""

from __future__ import annotations

import re
from pathlib import Path

import pymupdf
import pytest

from extraction_pipeline.extraction.extract import extract_file
from extraction_pipeline.extraction.formats.pdf import REPAIRED_WARNING, parse_pdf_date
from extraction_pipeline_tests.pdfs import pdf_bytes

REQUIRED_KEYS = {
    "pdf_version",
    "page_count",
    "encrypted",
    "needs_password",
    "title",
    "author",
    "subject",
    "keywords",
    "creator",
    "producer",
    "created_at",
    "modified_at",
    "page_sizes_pt",
    "text_chars",
    "pages_without_text",
    "image_count",
    "has_forms",
    "toc_entries",
    "annotation_count",
    "repaired",
}

LETTER = (612, 792)
A4 = (595, 842)


def _text_page(doc: pymupdf.Document, text: str, size: tuple[float, float] = LETTER) -> pymupdf.Page:
    page = doc.new_page(width=size[0], height=size[1])
    page.insert_text((72, 72), text, fontsize=11)
    return page


def _grey_pixmap(alpha: bool = False) -> pymupdf.Pixmap:
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 32, 32), alpha)
    pixmap.clear_with(180)
    return pixmap


def _save(doc: pymupdf.Document, path: Path, **options) -> Path:
    doc.save(str(path), **options)
    doc.close()
    return path


@pytest.fixture
def described_pdf(tmp_path: Path) -> Path:
    """Three pages (two letter, one A4) with document info, an outline, a form field and annotations."""
    doc = pymupdf.open()
    first = _text_page(doc, "Quarterly report")  # 15 non-whitespace characters
    widget = pymupdf.Widget()
    widget.field_type = pymupdf.PDF_WIDGET_TYPE_CHECKBOX
    widget.field_name = "approved"
    widget.rect = pymupdf.Rect(72, 100, 90, 118)
    first.add_widget(widget)
    first.insert_link(
        {"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(72, 200, 200, 220), "uri": "https://a.b"}
    )
    _text_page(doc, "Second page")  # 10
    _text_page(doc, "Annex", size=A4)  # 5
    doc.set_toc([[1, "Report", 1], [2, "Details", 2], [1, "Annex", 3]])
    doc.set_metadata(
        {
            "title": "Quarterly report",
            "author": "Ada Lovelace",
            "subject": "Figures",
            "keywords": "report, figures",
            "creator": "Writer",
            "producer": "Test producer",
            "creationDate": "D:20070915110231+02'00'",
            "modDate": "D:20200102030405",
        }
    )
    return _save(doc, tmp_path / "described.pdf")


def test_document_info_outline_forms_and_pages_are_reported(described_pdf: Path):
    envelope = extract_file(described_pdf)

    assert envelope.status == "succeeded", envelope.error
    meta = envelope.metadata
    assert meta.keys() >= REQUIRED_KEYS
    assert meta["page_count"] == 3
    assert meta["pdf_version"] == "1.7"
    assert (meta["title"], meta["author"], meta["subject"], meta["keywords"]) == (
        "Quarterly report",
        "Ada Lovelace",
        "Figures",
        "report, figures",
    )
    assert (meta["creator"], meta["producer"]) == ("Writer", "Test producer")
    assert meta["created_at"] == "2007-09-15T11:02:31+02:00"
    assert meta["modified_at"] == "2020-01-02T03:04:05"  # no offset in the file: naive
    assert meta["page_sizes_pt"] == [
        {"size": [612.0, 792.0], "count": 2},
        {"size": [595.0, 842.0], "count": 1},
    ]
    assert meta["text_chars"] == 15 + 10 + 5
    assert meta["pages_without_text"] == 0
    assert meta["pages_needing_ocr"] == 0
    assert meta["image_count"] == 0
    assert meta["has_forms"] is True
    assert meta["form_field_count"] == 1
    assert meta["toc_entries"] == [
        {"level": 1, "title": "Report", "page": 1},
        {"level": 2, "title": "Details", "page": 2},
        {"level": 1, "title": "Annex", "page": 3},
    ]
    assert meta["annotation_count"] == 2
    assert meta["annotation_types"] == {"Widget": 1, "Link": 1}
    assert (meta["encrypted"], meta["needs_password"], meta["repaired"]) == (False, False, False)
    assert envelope.warnings == []


def test_plain_document_reports_nulls_for_what_it_lacks(tmp_path: Path):
    doc = pymupdf.open()
    _text_page(doc, "Hello")
    doc.set_metadata({})
    meta = extract_file(_save(doc, tmp_path / "plain.pdf")).metadata

    assert [meta[k] for k in ("title", "author", "subject", "keywords", "creator", "producer")] == [None] * 6
    assert (meta["created_at"], meta["modified_at"]) == (None, None)
    assert meta["has_forms"] is False
    assert meta["toc_entries"] == []
    assert meta["annotation_count"] == 0


def test_owner_password_only_is_encrypted_but_readable(tmp_path: Path):
    doc = pymupdf.open()
    _text_page(doc, "Readable without a password")
    path = _save(
        doc,
        tmp_path / "owner.pdf",
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        owner_pw="owner-secret",
        user_pw="",
        permissions=pymupdf.PDF_PERM_PRINT,
    )

    envelope = extract_file(path)

    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["encrypted"] is True
    assert envelope.metadata["needs_password"] is False
    assert "AES" in envelope.metadata["encryption_method"]
    assert envelope.metadata["text_chars"] == len("Readablewithoutapassword")


def test_user_password_fails_as_encrypted(tmp_path: Path):
    doc = pymupdf.open()
    _text_page(doc, "Secret")
    path = _save(
        doc, tmp_path / "user.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u"
    )

    envelope = extract_file(path)

    assert envelope.status == "failed"
    assert envelope.error.code == "encrypted"
    assert envelope.error.kind == "permanent"
    assert "password" in envelope.error.message


def test_image_only_pages_signal_ocr(tmp_path: Path):
    doc = pymupdf.open()
    scanned = doc.new_page(width=LETTER[0], height=LETTER[1])
    scanned.insert_image(scanned.rect, pixmap=_grey_pixmap())  # a scan: one picture covering the page
    illustrated = _text_page(doc, "A page with real text and a small logo in the corner")
    illustrated.insert_image(pymupdf.Rect(500, 700, 540, 740), pixmap=_grey_pixmap(alpha=True))
    doc.new_page()  # blank: no text, but nothing to recognise either

    meta = extract_file(_save(doc, tmp_path / "scan.pdf")).metadata

    assert meta["page_count"] == 3
    assert meta["pages_without_text"] == 2  # the scan and the blank page
    assert meta["pages_needing_ocr"] == 1  # only the scan
    # pdfimages -list semantics: one row per placement, plus one for the logo's soft mask.
    assert meta["image_count"] == 3


def test_each_placement_of_an_image_counts(tmp_path: Path):
    doc = pymupdf.open()
    page = _text_page(doc, "Repeated stamp")
    xref = page.insert_image(pymupdf.Rect(100, 100, 150, 150), pixmap=_grey_pixmap())
    page.insert_image(pymupdf.Rect(200, 100, 250, 150), xref=xref)

    assert extract_file(_save(doc, tmp_path / "stamps.pdf")).metadata["image_count"] == 2


def test_broken_xref_offsets_are_repaired_with_a_warning(tmp_path: Path):
    doc = pymupdf.open()
    _text_page(doc, "Still here")
    data = doc.tobytes()
    damaged = re.sub(rb"startxref\s+\d+", b"startxref\n17", data)
    assert damaged != data
    path = tmp_path / "damaged.pdf"
    path.write_bytes(damaged)

    envelope = extract_file(path)

    assert envelope.status == "succeeded", envelope.error
    assert envelope.metadata["repaired"] is True
    assert REPAIRED_WARNING in envelope.warnings
    assert envelope.metadata["text_chars"] == len("Stillhere")


@pytest.mark.parametrize(
    "content",
    [b"%PDF-1.4\nnothing but words\n", b"%PDF-1.7\n" + bytes(range(256)) * 8],
    ids=["text", "binary-noise"],
)
def test_unreadable_pdf_fails_as_corrupt(content: bytes, tmp_path: Path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)

    envelope = extract_file(path)

    assert envelope.status == "failed"
    assert envelope.format == "pdf"
    assert envelope.error.code == "corrupt"
    assert envelope.error.message


def test_pdf_without_any_page_fails_as_corrupt(tmp_path: Path):
    path = tmp_path / "empty.pdf"
    path.write_bytes(
        pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    )

    envelope = extract_file(path)

    assert envelope.status == "failed"
    assert envelope.error.code == "corrupt"
    assert "no pages" in envelope.error.message


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("D:20070915110231+02'00'", "2007-09-15T11:02:31+02:00"),
        ("D:20121130071801-05'00'", "2012-11-30T07:18:01-05:00"),
        ("D:20020217024324Z", "2002-02-17T02:43:24+00:00"),
        ("D:20140208195712Z00'00'", "2014-02-08T19:57:12+00:00"),
        ("D:20200102030405", "2020-01-02T03:04:05"),
        ("D:20200102030405+0530", "2020-01-02T03:04:05+05:30"),
        ("20200102", "2020-01-02T00:00:00"),
        ("D:2019", "2019-01-01T00:00:00"),
        ("D:20201340000000", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_pdf_dates_become_iso_8601(raw: str, iso: str | None):
    assert parse_pdf_date(raw) == iso
