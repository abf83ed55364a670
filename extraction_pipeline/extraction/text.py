"""Text that JSON on stdout and PostgreSQL's JSONB can carry."""

from __future__ import annotations

import re


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


# What `EXTRACTION_MAX_TEXT_CHARS` defaults to: most characters of text kept per file.
DEFAULT_MAX_TEXT_CHARS = 1_000_000


class TextCollector:
    """A file's plain text, gathered piece by piece (a page, a TEXT entity, a product name) and
    capped at ``limit`` characters: past the cap nothing more is kept and ``truncated`` is set, so an
    extractor can stop reading as soon as ``full`` says so.

    Pieces are tidied (trailing blanks off every line, no more than one empty line in a row, NUL and
    other control characters but tab and newline removed), empty ones skipped, and joined by
    newlines; lone surrogates become U+FFFD.
    ``seen`` pieces (names repeated by every instance of a part, say) can be skipped with ``unique``.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("the text limit must be >= 0")
        self.limit = limit
        self.truncated = False
        self._parts: list[str] = []
        self._size = 0
        self._seen: set[str] = set()

    @property
    def full(self) -> bool:
        return self.truncated or self._size >= self.limit

    def add(self, piece: str | None, *, unique: bool = False) -> None:
        if piece is None or self.truncated:
            return
        piece = _tidy(piece)
        if not piece:
            return
        if unique:
            if piece in self._seen:
                return
            self._seen.add(piece)
        separator = 1 if self._parts else 0
        room = self.limit - self._size - separator
        if len(piece) > room:
            self.truncated = True
            if room <= 0:
                return
            piece = piece[:room]
        self._parts.append(valid_unicode(piece))
        self._size += separator + len(piece)

    def text(self) -> str | None:
        """The text gathered, or None when the file carried none."""
        return "\n".join(self._parts) if self._parts else None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_EMPTY_LINES = re.compile(r"\n{3,}")


def _tidy(piece: str) -> str:
    piece = _CONTROL.sub(" ", piece.replace("\r\n", "\n").replace("\r", "\n"))
    lines = "\n".join(line.rstrip() for line in piece.split("\n"))
    return _EMPTY_LINES.sub("\n\n", lines).strip()
