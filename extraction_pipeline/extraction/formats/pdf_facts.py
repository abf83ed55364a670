"""PDF facts beyond the document information: XMP metadata, access permissions, signature fields,
tagged (accessible) PDF and fonts that are not embedded. What Apache Tika reports and a PDF/A or
archiving check asks first; all read with PyMuPDF from the open document.

The XMP packet is parsed with the standard library's ElementTree (expat: no external entities are
fetched, and entity expansion is bounded); a damaged packet is a warning, never a failed file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

# Page resources read for fonts: a 20,000-page file is not read to the end for them.
MAX_FONT_PAGES = 2000
MAX_FONT_NAMES = 50

_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
}
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# XMP property -> key of the ``xmp`` fact (single values).
_SIMPLE = {
    ("xmpMM", "DocumentID"): "document_id",
    ("xmpMM", "InstanceID"): "instance_id",
    ("xmp", "MetadataDate"): "metadata_date",
    ("xmp", "CreateDate"): "create_date",
    ("xmp", "ModifyDate"): "modify_date",
    ("xmp", "CreatorTool"): "creator_tool",
    ("pdf", "Producer"): "producer",
    ("pdf", "Keywords"): "keywords",
}
_PERMISSIONS = {
    "print": "PDF_PERM_PRINT",
    "print_high_quality": "PDF_PERM_PRINT_HQ",
    "modify": "PDF_PERM_MODIFY",
    "copy": "PDF_PERM_COPY",
    "annotate": "PDF_PERM_ANNOTATE",
    "fill_forms": "PDF_PERM_FORM",
    "extract_for_accessibility": "PDF_PERM_ACCESSIBILITY",
    "assemble": "PDF_PERM_ASSEMBLE",
}


def permissions(doc: Any, pymupdf: Any) -> dict[str, bool]:
    """What the document's security handler allows (all true for a file without encryption)."""
    flags = int(doc.permissions)
    return {name: bool(flags & getattr(pymupdf, constant)) for name, constant in _PERMISSIONS.items()}


def is_tagged(doc: Any) -> bool:
    """A tagged PDF: the catalog's /MarkInfo says /Marked true, or it has a structure tree."""
    catalog = doc.pdf_catalog()
    kind, value = doc.xref_get_key(catalog, "MarkInfo/Marked")
    if kind == "bool" and value == "true":
        return True
    kind, _ = doc.xref_get_key(catalog, "StructTreeRoot")
    return bool(kind not in ("null", None))


def signature_field_count(doc: Any, pymupdf: Any) -> int:
    """Form fields of type signature, signed or not (pages are visited only when the file has a form)."""
    if not doc.is_form_pdf:
        return 0
    count = 0
    for page in doc:
        for widget in page.widgets() or ():
            if widget.field_type == pymupdf.PDF_WIDGET_TYPE_SIGNATURE:
                count += 1
    return count


def fonts_not_embedded(doc: Any, page_count: int) -> list[str]:
    """Distinct base font names used without their font program (Type 3 fonts are drawn by the file
    itself and never count), from the first ``MAX_FONT_PAGES`` pages, at most ``MAX_FONT_NAMES``."""
    names: dict[str, None] = {}
    for number in range(min(page_count, MAX_FONT_PAGES)):
        try:
            fonts = doc.get_page_fonts(number)
        except Exception:  # noqa: BLE001, S112 - a damaged page's resources: the others still count
            continue
        for _xref, extension, font_type, basefont, *_rest in fonts:
            if extension == "n/a" and font_type != "Type3" and basefont:
                names.setdefault(str(basefont), None)
                if len(names) >= MAX_FONT_NAMES:
                    return list(names)
    return list(names)


def xmp_facts(doc: Any, warnings: list[str]) -> dict[str, Any] | None:
    """The XMP packet's identifiers, dates, languages, titles and descriptions (by language), and
    the PDF/A claim; None when the file has no XMP metadata."""
    try:
        packet = doc.get_xml_metadata()
    except Exception:  # noqa: BLE001 - an unreadable metadata stream: as if there were none
        packet = ""
    if not packet or not packet.strip():
        return None
    try:
        root = ET.fromstring(packet.strip().encode("utf-8", "replace"))
    except ET.ParseError as exc:
        warnings.append(f"the XMP metadata cannot be parsed: {exc}")
        return None
    facts: dict[str, Any] = dict.fromkeys(_SIMPLE.values())
    facts.update(languages=[], titles={}, descriptions={}, pdfa=None)
    for description in root.iter(f"{{{_NS['rdf']}}}Description"):
        for (prefix, local), key in _SIMPLE.items():
            value = _single(description, prefix, local)
            if value and facts[key] is None:
                facts[key] = value
        facts["languages"] += [
            v for v, _ in _items(description, "dc", "language") if v not in facts["languages"]
        ]
        for key, local in (("titles", "title"), ("descriptions", "description")):
            for value, lang in _items(description, "dc", local):
                facts[key].setdefault(lang or "x-default", value)
        part = _single(description, "pdfaid", "part")
        if part:
            facts["pdfa"] = part + (_single(description, "pdfaid", "conformance") or "")
    return facts


def _single(description: ET.Element, prefix: str, local: str) -> str | None:
    """A simple property: an attribute of rdf:Description or a child element's text."""
    name = f"{{{_NS[prefix]}}}{local}"
    value = description.get(name)
    if value is None:
        child = description.find(name)
        value = child.text if child is not None else None
    value = (value or "").strip()
    return value or None


def _items(description: ET.Element, prefix: str, local: str) -> list[tuple[str, str | None]]:
    """The (value, xml:lang) items of an array property (rdf:Alt, rdf:Bag, rdf:Seq) or a plain one."""
    child = description.find(f"{{{_NS[prefix]}}}{local}")
    if child is None:
        single = _single(description, prefix, local)
        return [(single, None)] if single else []
    found = []
    for item in child.iter(f"{{{_NS['rdf']}}}li"):
        text = (item.text or "").strip()
        if text:
            found.append((text, item.get(_XML_LANG)))
    if not found and (child.text or "").strip():
        found.append(((child.text or "").strip(), child.get(_XML_LANG)))
    return found
