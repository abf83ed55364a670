"""Text that JSON on stdout and PostgreSQL's JSONB can carry."""

from __future__ import annotations


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD.

    They come from file names that were not UTF-8 (surrogate escapes), from ifcopenshell handing
    back raw bytes of a damaged file, and from DXF ``\\U+D800`` escapes.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates outside the escape range
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
