"""The shared real-world corpus (../shared/corpus) and the matching rules of its README."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = Path(os.environ.get("EXTRACTION_CORPUS_DIR", REPO_ROOT.parent / "shared" / "corpus"))


def corpus_entries() -> list[dict[str, Any]]:
    manifest = CORPUS_DIR / "expected.json"
    if not manifest.is_file():
        return []
    return json.loads(manifest.read_text(encoding="utf-8"))


def corpus_params(fmt: str | None = None) -> list[Any]:
    """pytest parameters, one per corpus entry; a single skip when the corpus is absent."""
    import pytest  # only here: .ci/run checks the corpus with this module before pytest is installed

    entries = [e for e in corpus_entries() if fmt is None or e["format"] == fmt]
    if not entries:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {CORPUS_DIR}"))]
    return [pytest.param(e, id=e["file"]) for e in entries]


_UNITS = {
    "mm": {"mm", "millimetre", "millimeter", "millimetres", "millimeters", "milli metre"},
    "cm": {"cm", "centimetre", "centimeter", "centimetres", "centimeters"},
    "m": {"m", "metre", "meter", "metres", "meters"},
    "in": {"in", "inch", "inches", '"'},
    "ft": {"ft", "foot", "feet"},
}


def _unit_name(value: str) -> str | None:
    cleaned = re.sub(r"[\s_.]+", "", value.strip().lower())
    for unit, spellings in _UNITS.items():
        if cleaned in {re.sub(r"[\s_.]+", "", s) for s in spellings}:
            return unit
    return None


def _parse_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _datetime_matches(actual: Any, expected: str) -> bool:
    if not isinstance(actual, str):
        return False
    try:
        got = _parse_datetime(actual)
    except ValueError:
        return False
    if len(expected) == 10:  # date only
        return got.date().isoformat() == expected
    want = _parse_datetime(expected)
    if want.tzinfo is None or got.tzinfo is None:
        return got.replace(tzinfo=None) == want.replace(tzinfo=None)
    return got == want


def _length(value: Any) -> float:
    if isinstance(value, (list, dict, str)):
        return len(value)
    return value


def matches(actual: Any, expected: Any) -> bool:
    """The matching rules of the corpus README, applied recursively."""
    if isinstance(expected, dict):
        if "contains" in expected and len(expected) == 1:
            needle = expected["contains"]
            if isinstance(actual, str):
                return isinstance(needle, str) and needle in actual
            if isinstance(actual, list):
                wanted = needle if isinstance(needle, list) else [needle]
                return all(any(matches(item, w) for item in actual) for w in wanted)
            if isinstance(actual, dict):
                return needle in actual
            return False
        if "approx" in expected:
            if not isinstance(actual, (int, float)) or isinstance(actual, bool):
                return False
            target = expected["approx"]
            tolerance = max(expected.get("abs", 0.0), expected.get("rel", 0.01) * abs(target))
            return math.isfinite(actual) and abs(actual - target) <= tolerance
        if "at_least" in expected or "at_most" in expected:
            if actual is None or isinstance(actual, bool):
                return False
            size = _length(actual)
            if "at_least" in expected and not size >= expected["at_least"]:
                return False
            return not ("at_most" in expected and not size <= expected["at_most"])
        if "count" in expected and len(expected) == 1:
            if isinstance(actual, (list, dict)):
                return len(actual) == expected["count"]
            return isinstance(actual, int) and not isinstance(actual, bool) and actual == expected["count"]
        if "datetime" in expected and len(expected) == 1:
            return _datetime_matches(actual, expected["datetime"])
        if "unit" in expected and len(expected) == 1:
            return isinstance(actual, str) and _unit_name(actual) == _unit_name(expected["unit"])
        if "one_of" in expected and len(expected) == 1:
            return any(matches(actual, option) for option in expected["one_of"])
        if "set" in expected and len(expected) == 1:
            if not isinstance(actual, list) or len(actual) != len(expected["set"]):
                return False
            remaining = list(actual)
            for want in expected["set"]:
                hit = next((i for i, item in enumerate(remaining) if matches(item, want)), None)
                if hit is None:
                    return False
                remaining.pop(hit)
            return True
        if not isinstance(actual, dict):
            return False
        return all(key in actual and matches(actual[key], value) for key, value in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(matches(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, bool) or expected is None:
        return actual is expected or actual == expected and type(actual) is type(expected)
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and not isinstance(actual, bool) and actual == expected
    return actual == expected


def mismatches(metadata: dict[str, Any], expect: dict[str, Any]) -> dict[str, Any]:
    """Keys of ``expect`` whose value does not match, with what was found instead."""
    return {
        key: {"expected": want, "actual": metadata.get(key, "<missing>")}
        for key, want in expect.items()
        if key not in metadata or not matches(metadata[key], want)
    }


def check_envelope(envelope: dict[str, Any], entry: dict[str, Any]) -> None:
    """Assert the corpus README's rules for one entry on one envelope (as JSON: a dict)."""
    from extraction_pipeline.extraction.registry import required_metadata_keys

    assert (envelope["format"], envelope["variant"]) == (entry["format"], entry["variant"])
    if entry["status"] != "either":
        assert envelope["status"] == entry["status"], envelope["error"]
    if envelope["status"] == "succeeded":
        assert envelope["error"] is None
        missing = required_metadata_keys(entry["format"]) - set(envelope["metadata"])
        assert not missing, f"required metadata keys missing: {sorted(missing)}"
        assert mismatches(envelope["metadata"], entry.get("expect", {})) == {}
        if envelope["metadata"].get("repaired") or envelope["metadata"].get("recovered"):
            assert envelope["warnings"], "a repaired or recovered file must carry a warning"
        if envelope["metadata"].get("content_readable") is False:
            assert envelope["warnings"], "content that could not be read must be explained by a warning"
    else:
        assert envelope["error"]["code"] and envelope["error"]["message"]
        if "error_code" in entry:
            assert envelope["error"]["code"] == entry["error_code"]


def check_renamed_copy(original: dict[str, Any], renamed: dict[str, Any]) -> None:
    """A copy with no extension or a wrong one is read by its content, and says so."""
    assert (renamed["format"], renamed["variant"], renamed["status"]) == (
        original["format"],
        original["variant"],
        original["status"],
    )
    assert renamed["file"]["sha256"] == original["file"]["sha256"]
    assert renamed["metadata"] == original["metadata"]
    assert renamed["extension_matches"] is False
    if original["format"] != "unknown":
        assert any("extension" in w for w in renamed["warnings"])
