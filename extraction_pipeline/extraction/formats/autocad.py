"""What DWG and DXF share: AutoCAD's Julian dates ($TDCREATE, $TDUPDATE, DWGPROPS)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

_JULIAN_1970 = 2440588  # 1970-01-01
# 1900-01-01 up to (not including) 2100-01-01: anything else is a placeholder or garbage.
_FIRST_DAY, _END_DAY = 2415021, 2488070


def julian_to_iso(value: Any) -> str | None:
    """A Julian date (day number plus the fraction of the day since midnight) as ISO 8601, to the
    nearest second; None when it is not a number or outside 1900-2099."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or not _FIRST_DAY <= number < _END_DAY:
        return None
    seconds = math.floor((number - _JULIAN_1970) * 86_400 + 0.5)
    return (datetime(1970, 1, 1) + timedelta(seconds=seconds)).isoformat()
