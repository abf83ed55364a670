"""Hand-written PDFs for the tests: exactly the objects a test needs, with a valid xref table.

For the hostile and edge cases PyMuPDF would not write; ordinary PDFs (pages, text, images, an
outline) come from ``extraction_pipeline.samples.pdf_bytes`` / ``write_pdf``.
"""

from __future__ import annotations


def pdf_bytes(objects: list[bytes], *, info: int | None = None) -> bytes:
    """A PDF with a correct cross-reference table; object 1 must be the catalog."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"/Size %d /Root 1 0 R" % (len(objects) + 1)
    if info is not None:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n<< " + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
