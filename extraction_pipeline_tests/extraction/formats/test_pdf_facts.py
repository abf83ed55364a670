"""PDF facts Apache Tika reports besides the document information: XMP, permissions, signature
fields, tagged PDF and fonts that are not embedded (files written with PyMuPDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymupdf

from extraction_pipeline.extraction.extract import extract_file

XMP = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
      xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
      xmpMM:DocumentID="uuid:doc-1" pdfaid:part="2" pdfaid:conformance="B">
   <xmpMM:InstanceID>uuid:instance-7</xmpMM:InstanceID>
   <xmp:MetadataDate>2024-05-01T10:00:00Z</xmp:MetadataDate>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:language><rdf:Bag><rdf:li>de-CH</rdf:li><rdf:li>en</rdf:li></rdf:Bag></dc:language>
   <dc:title><rdf:Alt>
     <rdf:li xml:lang="x-default">Pumpenhaus</rdf:li><rdf:li xml:lang="en">Pump house</rdf:li>
   </rdf:Alt></dc:title>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Schnitt A-A</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def metadata_of(path: Path) -> tuple[dict[str, Any], list[str]]:
    envelope = extract_file(path)
    assert envelope.status == "succeeded", envelope.error
    return envelope.metadata, envelope.warnings


def test_xmp_ids_dates_languages_titles_and_the_pdfa_claim(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Pumpenhaus", fontname="helv")
    doc.set_xml_metadata(XMP)
    doc.save(tmp_path / "xmp.pdf")
    metadata, _ = metadata_of(tmp_path / "xmp.pdf")
    xmp = metadata["xmp"]
    assert (xmp["document_id"], xmp["instance_id"], xmp["metadata_date"]) == (
        "uuid:doc-1",
        "uuid:instance-7",
        "2024-05-01T10:00:00Z",
    )
    assert xmp["languages"] == ["de-CH", "en"]
    assert xmp["titles"] == {"x-default": "Pumpenhaus", "en": "Pump house"}
    assert xmp["descriptions"] == {"x-default": "Schnitt A-A"} and xmp["pdfa"] == "2B"
    # Helvetica is one of the standard 14 fonts: used, never embedded.
    assert metadata["fonts_not_embedded"] == ["Helvetica"]
    assert metadata["tagged"] is False and metadata["signature_field_count"] == 0


def test_permissions_of_an_owner_password_and_a_file_without_encryption(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "restricted")
    allowed = pymupdf.PDF_PERM_PRINT | pymupdf.PDF_PERM_ACCESSIBILITY
    doc.save(
        tmp_path / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", permissions=allowed
    )
    doc.save(tmp_path / "open.pdf")
    locked, _ = metadata_of(tmp_path / "locked.pdf")
    assert locked["encrypted"] is True and locked["needs_password"] is False
    assert {k for k, v in locked["permissions"].items() if v} == {"print", "extract_for_accessibility"}
    unlocked, _ = metadata_of(tmp_path / "open.pdf")
    assert all(unlocked["permissions"].values()) and unlocked["xmp"] is None


def test_signature_fields_and_a_tagged_catalog(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    for number in range(2):
        widget = pymupdf.Widget()
        widget.field_type = pymupdf.PDF_WIDGET_TYPE_SIGNATURE
        widget.field_name = f"approval_{number}"
        widget.rect = pymupdf.Rect(72, 72 + 60 * number, 272, 112 + 60 * number)
        page.add_widget(widget)
    doc.xref_set_key(doc.pdf_catalog(), "MarkInfo", "<</Marked true>>")
    doc.save(tmp_path / "signed.pdf")
    metadata, _ = metadata_of(tmp_path / "signed.pdf")
    assert metadata["signature_field_count"] == 2 and metadata["tagged"] is True
    assert metadata["has_forms"] is True


def test_a_damaged_xmp_packet_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "text")
    doc.set_xml_metadata("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF>unclosed")
    doc.save(tmp_path / "bad-xmp.pdf")
    metadata, warnings = metadata_of(tmp_path / "bad-xmp.pdf")
    assert metadata["xmp"] is None and metadata["page_count"] == 1
    assert any(w.startswith("the XMP metadata cannot be parsed") for w in warnings)
