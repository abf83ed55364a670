"""PDF metadata with PyMuPDF.

One pass over the pages: each page is interpreted once into a MuPDF structured-text page (text plus
image placements, never rendered), so the cost stays linear in the page count even for 20,000 pages.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.context import ExtractionContext, FormatResult
from extraction_pipeline.extraction.envelope import FormatMetadata
from extraction_pipeline.extraction.errors import CorruptFile, EncryptedFile
from extraction_pipeline.extraction.formats import pdf_facts
from extraction_pipeline.extraction.text import TextCollector
from extraction_pipeline.extraction.versions import EXTRACTOR_VERSIONS

NAME = "pdf"
VERSION = EXTRACTOR_VERSIONS[NAME]

REPAIRED_WARNING = "the file was damaged and repaired by MuPDF (broken cross-reference table or objects)"

# A page "needs OCR" when its content is mostly pictures of text: no text at all and images covering at
# least _OCR_NO_TEXT_IMAGE_SHARE of the page, or hardly any text and images covering most of it.
_OCR_NO_TEXT_IMAGE_SHARE = 0.1
_OCR_FEW_CHARS = 50
_OCR_FEW_CHARS_IMAGE_SHARE = 0.5
# Unicode replacement character: a glyph MuPDF could not map to text.
_UNMAPPED = "\ufffd"
# How many per-page failures are described one by one in the warnings.
_MAX_PAGE_WARNINGS = 5

_PDF_DATE = re.compile(
    r"""^\s*(?:D\s*:)?\s*
    (?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?
    (?P<hour>\d{2})?(?P<minute>\d{2})?(?P<second>\d{2})?
    \s*(?:(?P<utc>Z)|(?P<sign>[+-])\s*(?P<tzh>\d{2})\s*'?\s*(?P<tzm>\d{2})?)?""",
    re.VERBOSE,
)
_VERSION = re.compile(r"(\d+)\.(\d+)")
# MuPDF messages saying that an object was skipped because it could not be parsed (too deeply nested,
# damaged, ...): what it held is missing from the metadata, so the user is warned.
_LOST_OBJECT = re.compile(r"cannot load object|stack overflow|nesting too deep|limit error", re.IGNORECASE)


class PdfMetadata(FormatMetadata):
    pdf_version: str | None
    page_count: int
    encrypted: bool
    needs_password: bool
    title: str | None
    author: str | None
    subject: str | None
    keywords: str | None
    creator: str | None
    producer: str | None
    created_at: str | None
    modified_at: str | None
    page_sizes_pt: list[dict] | None
    text_chars: int | None
    pages_without_text: int | None
    image_count: int | None
    has_forms: bool | None
    toc_entries: list[dict] | None
    annotation_count: int | None
    repaired: bool
    # Additions beyond the contract.
    pages_needing_ocr: int | None = None
    encryption_method: str | None = None
    form_type: str | None = None
    form_field_count: int | None = None
    annotation_types: dict[str, int] | None = None
    rotated_pages: int | None = None
    unreadable_pages: int | None = None
    # What Apache Tika also reports (pdf_facts.py): XMP, permissions, signatures, tags, fonts.
    xmp: dict[str, Any] | None = None
    permissions: dict[str, bool] | None = None
    signature_field_count: int | None = None
    tagged: bool | None = None
    fonts_not_embedded: list[str] | None = None


def parse_pdf_date(value: str | None) -> str | None:
    """A PDF date string (``D:YYYYMMDDHHmmSSOHH'mm'``, parts optional) as ISO 8601, or None.

    With a UTC offset (or ``Z``) the result carries it; without one it is a naive local time.
    """
    if not value:
        return None
    match = _PDF_DATE.match(value)
    if match is None:
        return None
    parts = match.groupdict()
    try:
        moment = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
        )
    except ValueError:
        return None
    if parts["utc"]:
        moment = moment.replace(tzinfo=UTC)
    elif parts["sign"]:
        hours, minutes = int(parts["tzh"]), int(parts["tzm"] or 0)
        if hours <= 23 and minutes <= 59:
            offset = timedelta(hours=hours, minutes=minutes)
            moment = moment.replace(tzinfo=timezone(-offset if parts["sign"] == "-" else offset))
    return moment.isoformat()


def _import_pymupdf():  # type: ignore[no-untyped-def]
    # PyMuPDF 2 imports its optional layout add-on (ONNX sessions, ~0.5-2 s) at import time;
    # metadata extraction never uses it, so mark it absent before the first import.
    if "pymupdf" not in sys.modules:
        sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
    import pymupdf

    return pymupdf


def extract(path: Path, context: ExtractionContext) -> FormatResult:
    pymupdf = _import_pymupdf()

    warnings: list[str] = []
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    try:
        # filetype: the content decides, whatever the file is called (.txt, no extension, ...).
        doc = pymupdf.open(str(path), filetype="pdf")
    except Exception as exc:
        raise CorruptFile(_failure("MuPDF cannot open the PDF", exc, pymupdf)) from exc
    try:
        return _extract_open(doc, warnings, pymupdf, context.text_collector())
    finally:
        doc.close()


def _failure(what: str, exc: BaseException, pymupdf: Any) -> str:
    details = [str(exc).strip()]
    details += [line for line in pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines() if line.strip()][:5]
    return f"{what}: " + "; ".join(d for d in details if d)


def _extract_open(doc: Any, warnings: list[str], pymupdf: Any, text: TextCollector | None) -> FormatResult:
    # Only a user password stops us; an owner-only password opens with the empty one.
    if doc.needs_pass and not doc.authenticate(""):
        raise EncryptedFile("the PDF is encrypted with a user password; it cannot be read without it")

    info = doc.metadata or {}
    encryption = info.get("encryption") or None

    page_count = _page_count(doc)
    if page_count == 0:
        # MuPDF trusts a damaged page tree or xref and may see no page at all; rebuild the xref and retry.
        try:
            pymupdf.mupdf.pdf_repair_xref(pymupdf._as_pdf_document(doc))
        except Exception as exc:
            what = "the PDF has no pages, and rebuilding its cross-reference table failed"
            raise CorruptFile(_failure(what, exc, pymupdf)) from exc
        page_count = _page_count(doc)
        if page_count == 0:
            raise CorruptFile("the PDF has no pages, even after rebuilding its cross-reference table")
        info = doc.metadata or info

    pages = _scan_pages(doc, page_count, warnings, pymupdf, text)
    if pages["unreadable_pages"] == page_count:
        raise CorruptFile(f"none of the {page_count} pages of the PDF can be read")

    form_type, field_count = _forms(doc)
    facts = _facts(doc, page_count, warnings, pymupdf)
    has_forms = bool(field_count) or form_type == "xfa" or pages["widgets"] > 0

    toc = _toc(doc, warnings)
    version = _pdf_version(doc, info)

    metadata = PdfMetadata(
        pdf_version=version,
        page_count=page_count,
        encrypted=encryption is not None,
        needs_password=False,
        title=_text(info.get("title")),
        author=_text(info.get("author")),
        subject=_text(info.get("subject")),
        keywords=_text(info.get("keywords")),
        creator=_text(info.get("creator")),
        producer=_text(info.get("producer")),
        created_at=_date(info.get("creationDate"), "creation date", warnings),
        modified_at=_date(info.get("modDate"), "modification date", warnings),
        page_sizes_pt=pages["page_sizes_pt"],
        text_chars=pages["text_chars"],
        pages_without_text=pages["pages_without_text"],
        image_count=pages["image_count"],
        has_forms=has_forms,
        toc_entries=toc,
        annotation_count=pages["annotation_count"],
        # Read last: MuPDF may repair the file lazily while loading pages.
        repaired=bool(doc.is_repaired),
        pages_needing_ocr=pages["pages_needing_ocr"],
        encryption_method=encryption,
        form_type=form_type,
        form_field_count=field_count,
        annotation_types=pages["annotation_types"],
        rotated_pages=pages["rotated_pages"],
        unreadable_pages=pages["unreadable_pages"],
        **facts,
    )
    if metadata.repaired:
        warnings.insert(0, REPAIRED_WARNING)
    lost = _lost_objects(pymupdf)
    if lost:
        warnings.append(
            "some objects of the PDF could not be read and were skipped, so the metadata may be incomplete "
            f"(MuPDF: {'; '.join(lost)})"
        )
    return FormatResult(metadata=metadata, warnings=warnings, text=text)


def _facts(doc: Any, page_count: int, warnings: list[str], pymupdf: Any) -> dict[str, Any]:
    """The facts of ``pdf_facts``, each on its own: one that cannot be read is null, with a warning."""
    readers = {
        "xmp": lambda: pdf_facts.xmp_facts(doc, warnings),
        "permissions": lambda: pdf_facts.permissions(doc, pymupdf),
        "signature_field_count": lambda: pdf_facts.signature_field_count(doc, pymupdf),
        "tagged": lambda: pdf_facts.is_tagged(doc),
        "fonts_not_embedded": lambda: pdf_facts.fonts_not_embedded(doc, page_count),
    }
    found: dict[str, Any] = {}
    for key, read in readers.items():
        try:
            found[key] = read()
        except Exception as exc:  # noqa: BLE001 - a damaged structure loses this fact only
            found[key] = None
            warnings.append(f"{key} could not be read: {type(exc).__name__}: {exc}"[:300])
    return found


def _lost_objects(pymupdf: Any) -> list[str]:
    """The distinct MuPDF messages (at most 3) about objects it could not load since the file was opened."""
    lines = (line.strip() for line in pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines())
    found = list(dict.fromkeys(line for line in lines if _LOST_OBJECT.search(line)))
    # "cannot load object (N 0 R)" names what was lost; the generic cause lines come after.
    found.sort(key=lambda line: "cannot load object" not in line.lower())
    return found[:3]


def _page_count(doc: Any) -> int:
    try:
        return int(doc.page_count)
    except Exception as exc:
        raise CorruptFile(f"the page tree of the PDF cannot be read: {exc}") from exc


def _scan_pages(
    doc: Any, page_count: int, warnings: list[str], pymupdf: Any, text: TextCollector | None = None
) -> dict[str, Any]:
    """Per page: size, rotation, annotations, characters and images; ``text`` gets each page's text."""
    mupdf = pymupdf.mupdf
    # Text as pdftotext would give it (ligatures expanded, clipped to the page) plus image blocks.
    flags = (pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_LIGATURES) | pymupdf.TEXT_PRESERVE_IMAGES
    sizes: dict[tuple[float, float], int] = {}
    annotation_types: dict[str, int] = {}
    totals = {
        "text_chars": 0,
        "pages_without_text": 0,
        "pages_needing_ocr": 0,
        "image_count": 0,
        "annotation_count": 0,
        "rotated_pages": 0,
        "unreadable_pages": 0,
        "widgets": 0,
    }
    failures: list[str] = []
    for number in range(page_count):
        try:
            page = doc.load_page(number)
            box = page.cropbox
            size = (round(abs(box.width), 1), round(abs(box.height), 1))
            sizes[size] = sizes.get(size, 0) + 1
            if page.rotation % 360:
                totals["rotated_pages"] += 1
            _count_annotations(page, mupdf, annotation_types, totals)
            chars, usable, images, image_share = _page_content(page, flags, pymupdf, text)
        except Exception as exc:  # one damaged page must not hide the rest of the document
            totals["unreadable_pages"] += 1
            failures.append(f"page {number + 1}: {type(exc).__name__}: {exc}")
            continue
        totals["text_chars"] += chars
        totals["image_count"] += images
        if chars == 0:
            totals["pages_without_text"] += 1
        if (usable == 0 and image_share >= _OCR_NO_TEXT_IMAGE_SHARE) or (
            usable < _OCR_FEW_CHARS and image_share >= _OCR_FEW_CHARS_IMAGE_SHARE
        ):
            totals["pages_needing_ocr"] += 1
    if failures:
        more = len(failures) - _MAX_PAGE_WARNINGS
        listed = "; ".join(failures[:_MAX_PAGE_WARNINGS]) + (f"; and {more} more" if more > 0 else "")
        warnings.append(f"{len(failures)} of {page_count} pages could not be read: {listed}")
    ordered = sorted(sizes.items(), key=lambda item: -item[1])  # stable: ties keep document order
    return {
        **totals,
        "page_sizes_pt": [{"size": [w, h], "count": n} for (w, h), n in ordered],
        "annotation_types": annotation_types,
    }


def _count_annotations(page: Any, mupdf: Any, types: dict[str, int], totals: dict[str, int]) -> None:
    """Every entry of the page's /Annots array (links and form widgets included), by subtype."""
    annots = mupdf.pdf_dict_get(page._pdf_page().obj(), mupdf.PDF_ENUM_NAME_Annots)
    if not mupdf.pdf_is_array(annots):
        return
    for index in range(mupdf.pdf_array_len(annots)):
        annot = mupdf.pdf_array_get(annots, index)
        if not mupdf.pdf_is_dict(annot):
            continue
        subtype = mupdf.pdf_to_name(mupdf.pdf_dict_get(annot, mupdf.PDF_ENUM_NAME_Subtype)) or "Unknown"
        types[subtype] = types.get(subtype, 0) + 1
        totals["annotation_count"] += 1
        if subtype == "Widget":
            totals["widgets"] += 1


def _page_content(
    page: Any, flags: int, pymupdf: Any, collector: TextCollector | None = None
) -> tuple[int, int, int, float]:
    """Non-whitespace characters, of which mapped to Unicode, image count and share covered by images;
    ``collector`` gets the page's text in reading order (MuPDF's blocks sorted top-left first).

    The image count follows ``pdfimages -list``: one per placement (inline images and stencil masks
    included), plus one more when the image carries a soft mask or mask image of its own.
    """
    mupdf = pymupdf.mupdf
    stext = mupdf.FzStextPage(page.this, mupdf.FzStextOptions(flags))
    textpage = pymupdf.TextPage(stext)
    try:
        text = textpage.extractText()
        images = textpage.extractIMGINFO()
        # Sorted into reading order for the kept text only: MuPDF's sorted extraction does not clip
        # to the page as the counts above must (testOCR.pdf: 0 characters unsorted, 78 sorted).
        if collector is not None and not collector.full:
            collector.add(textpage.extractText(sort=True))
    finally:
        del textpage, stext
    chars = len("".join(text.split()))
    usable = chars - text.count(_UNMAPPED)
    count = sum(2 if image.get("has-mask") else 1 for image in images)
    rect = page.rect
    area = abs(rect.width * rect.height)
    covered = 0.0
    for image in images:
        clipped = pymupdf.Rect(image["bbox"]) & rect
        if not clipped.is_empty:
            covered += abs(clipped.width * clipped.height)
    share = min(covered / area, 1.0) if area > 0 else 0.0
    return chars, usable, count, share


def _forms(doc: Any) -> tuple[str | None, int | None]:
    """The catalog's form: ("acroform" | "xfa" | None, number of top-level fields)."""
    try:
        catalog = doc.pdf_catalog()
        kind, _ = doc.xref_get_key(catalog, "AcroForm")
        if kind not in ("dict", "xref"):
            return None, None
        xfa_kind, _ = doc.xref_get_key(catalog, "AcroForm/XFA")
        fields = doc.is_form_pdf
        count = int(fields) if fields is not False else 0
        return ("xfa" if xfa_kind in ("array", "xref") else "acroform"), count
    except Exception:
        return None, None


def _toc(doc: Any, warnings: list[str]) -> list[dict] | None:
    try:
        outline = doc.get_toc(simple=True)
    except Exception as exc:
        warnings.append(f"the outline (bookmarks) cannot be read: {exc}")
        return None
    return [
        {"level": int(level), "title": (title or "").strip(), "page": page if page >= 1 else None}
        for level, title, page in outline
    ]


def _pdf_version(doc: Any, info: dict[str, Any]) -> str | None:
    """The header version, or the catalog's /Version when that is newer (as poppler reports it)."""
    found = _VERSION.search(info.get("format") or "")
    version = (int(found.group(1)), int(found.group(2))) if found else None
    try:
        kind, value = doc.xref_get_key(doc.pdf_catalog(), "Version")
    except Exception:
        kind, value = "null", ""
    if kind == "name":
        override = _VERSION.search(value)
        if override:
            candidate = (int(override.group(1)), int(override.group(2)))
            if version is None or candidate > version:
                version = candidate
    return f"{version[0]}.{version[1]}" if version else None


def _text(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value


def _date(value: str | None, label: str, warnings: list[str]) -> str | None:
    if not value or not value.strip():
        return None
    parsed = parse_pdf_date(value)
    if parsed is None:
        warnings.append(f"the {label} {value!r} is not a valid PDF date")
    return parsed
