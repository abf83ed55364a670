"""The title block of a DXF: the attributes (ATTRIB) of its block references."""

from __future__ import annotations

from typing import Any

from extraction_pipeline.extraction.formats.dxf_facts import clean_text


def title_block_attributes(doc: Any) -> dict[str, str]:
    """Tag -> value of the ATTRIBs of block references; paper space first, where title blocks live.

    When several references carry the same tag, the first one wins.
    """
    layouts = [doc.layouts.get(name) for name in doc.layouts.names_in_taborder()]
    layouts.sort(key=lambda layout: layout.is_modelspace)  # paper space layouts first
    attributes: dict[str, str] = {}
    for layout in layouts:
        for insert in layout.query("INSERT"):
            for attrib in insert.attribs:
                tag = clean_text(attrib.dxf.get("tag", "")).strip()
                if not tag or tag in attributes:
                    continue
                attributes[tag] = clean_text(_attrib_text(attrib))
    return attributes


def _attrib_text(attrib: Any) -> str:
    try:
        if attrib.has_embedded_mtext_entity:
            return attrib.virtual_mtext_entity().plain_text()
    except Exception:  # a broken embedded MTEXT: fall back to the single-line value
        pass
    return attrib.dxf.get("text", "")
