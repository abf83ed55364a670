"""The plain text of a DXF drawing (ezdxf): what is written on it, for search.

Read from every layout (modelspace first, then the paperspace layouts in tab order) and then from
the block definitions, each in drawing order: TEXT, MTEXT (formatting codes removed), the values of
ATTRIB (an INSERT's attributes, a title block's fields) and ATTDEF, dimension text overrides, and
the text of MULTILEADERs. Special codes (``%%d``, ``\\P``, stacked fractions, fonts) become plain
characters. A dimension's own block (``*D``) is skipped: its text is the measurement, drawn again.
One entity that cannot be read is skipped, never the whole text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from extraction_pipeline.extraction.text import TextCollector

# ATTRIB and ATTDEF are TEXT entities for ezdxf: plain_text() resolves their special codes too.
_TEXT_LIKE = frozenset({"TEXT", "ATTRIB", "ATTDEF"})


def collect_text(doc: Any, collector: TextCollector) -> None:
    layouts = doc.layouts
    for name in layouts.names_in_taborder():
        _entities(layouts.get(name), collector)
        if collector.full:
            return
    for block in doc.blocks:
        if block.is_any_layout or str(block.name).upper().startswith("*D"):
            continue
        _entities(block, collector)
        if collector.full:
            return


def _entities(entities: Iterable[Any], collector: TextCollector) -> None:
    for entity in entities:
        if collector.full:
            return
        try:
            for piece in _text_of(entity):
                collector.add(piece)
        except Exception:  # noqa: BLE001, S112 - a damaged entity loses its own text, nothing more
            continue


def _text_of(entity: Any) -> Iterable[str]:
    kind = entity.dxftype()
    if kind in _TEXT_LIKE:
        yield _attribute_or_text(entity)
    elif kind == "MTEXT":
        yield entity.plain_text()
    elif kind == "INSERT":
        for attrib in entity.attribs:
            yield _attribute_or_text(attrib)
    elif kind == "DIMENSION":
        yield from _dimension_override(entity)
    elif kind in ("MULTILEADER", "MLEADER"):
        mtext = getattr(getattr(entity, "context", None), "mtext", None)
        if mtext is not None and mtext.default_content:
            yield _plain(mtext.default_content)


def _attribute_or_text(entity: Any) -> str:
    # A multi-line attribute (R2018) keeps its text in an embedded MTEXT.
    embedded = getattr(entity, "has_embedded_mtext_entity", False)
    if embedded:
        return str(entity.virtual_mtext_entity().plain_text())
    return str(entity.plain_text())


def _dimension_override(entity: Any) -> Iterable[str]:
    """The text a user typed over a dimension; ``<>`` stands for the measurement, `` `` hides it."""
    override = entity.dxf.get("text", "")
    if not override or override.strip() in ("", "<>"):
        return
    yield _plain(override.replace("<>", " "))


def _plain(content: str) -> str:
    """MTEXT content without its formatting codes."""
    from ezdxf.tools.text import plain_mtext

    plain = plain_mtext(content)
    return plain if isinstance(plain, str) else "\n".join(plain)
