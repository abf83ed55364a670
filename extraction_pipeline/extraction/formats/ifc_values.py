"""Defensive accessors for ifcopenshell entities: malformed instances must never fail an extraction."""

from __future__ import annotations

import math
from typing import Any

from extraction_pipeline.extraction.text import valid_unicode


def safe_attr(obj: Any, attribute: str) -> Any:
    if obj is None:
        return None
    try:
        return getattr(obj, attribute)
    except Exception:  # a header entity with too few attributes
        return None


def text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = valid_unicode(value).strip()
    return value or None


def joined(value: Any) -> str | None:
    """FILE_NAME author/organization are lists of strings; empty entries mean unknown."""
    items = value if isinstance(value, (list, tuple)) else [value]
    parts = [found for found in map(text, items) if found]
    return "; ".join(parts) or None


def by_type(model: Any, ifc_class: str) -> tuple[Any, ...]:
    try:
        return tuple(model.by_type(ifc_class))
    except RuntimeError:  # the class does not exist in this schema
        return ()


def attr(entity: Any, attribute: str) -> Any:
    try:
        return getattr(entity, attribute, None)
    except Exception:  # malformed instances may fail on access
        return None


def name(entity: Any) -> str | None:
    return text(attr(entity, "Name")) or text(attr(entity, "LongName"))


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        wrapped = attr(value, "wrappedValue") if value is not None and hasattr(value, "is_a") else None
        if isinstance(wrapped, (int, float)) and not isinstance(wrapped, bool):
            value = wrapped
        else:
            return None
    result = float(value)
    return result if math.isfinite(result) else None
