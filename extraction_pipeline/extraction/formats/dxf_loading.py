"""Loading a DXF with ezdxf: the standard reader first, ``ezdxf.recover`` for a damaged ASCII file.

``ezdxf.readfile`` reads ASCII and binary DXF and is the fast path; only when it fails is the file
handed to ``ezdxf.recover``, which repairs broken structure but reads ASCII DXF only. A recovered
file comes with a warning naming the standard reader's error and the first fixes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extraction_pipeline.extraction.errors import CorruptFile

BINARY_SENTINEL = b"AutoCAD Binary DXF\r\n\x1a\x00"
_MAX_FIX_MESSAGES = 3


def load_document(path: Path, binary: bool) -> tuple[Any, Any, list[str]]:
    """The document, the recover auditor (None when the standard reader succeeded) and warnings."""
    import ezdxf
    from ezdxf import recover

    try:
        return ezdxf.readfile(path), None, []
    except MemoryError:
        raise
    except Exception as exc:  # DXFStructureError, ValueError, OSError, StopIteration, ...
        first_error = _describe(exc)
    if binary:
        raise CorruptFile(f"damaged binary DXF, ezdxf cannot read it: {first_error}")
    try:
        doc, auditor = recover.readfile(path)
    except MemoryError:
        raise
    except Exception as exc:
        raise CorruptFile(
            f"not a readable DXF file: the reader failed ({first_error}) and recovery failed "
            f"({_describe(exc)})"
        ) from exc
    fixes = len(auditor.fixes)
    warning = f"damaged DXF recovered by ezdxf.recover with {fixes} fix(es); the standard reader failed: "
    warning += first_error
    shown = [fix.message for fix in auditor.fixes[:_MAX_FIX_MESSAGES]]
    if shown:
        warning += "; first fixes: " + " | ".join(shown)
    warnings = [warning]
    if auditor.errors:
        warnings.append(
            f"{len(auditor.errors)} error(s) in the DXF could not be fixed; the content may be incomplete"
        )
    return doc, auditor, warnings


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    text = str(exc).strip()
    if text.startswith(name + ":"):
        text = text[len(name) + 1 :].strip()
    return f"{name}: {text}"[:500] if text else name
