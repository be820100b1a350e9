"""Times as Meta writes them (epoch seconds or milliseconds, numeric strings, ISO 8601), read as
epoch milliseconds: one reader for webhooks, Graph answers and sync alike."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: later "timestamps" are not times


def to_millis(value: Any) -> int | None:
    """Meta's timestamps as epoch milliseconds: numbers (seconds or milliseconds), numeric
    strings, ISO 8601; None for anything else, and for times before 1970 or after 9999."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) > MAX_MILLIS:
        return None  # beyond what a float holds, and no time anyway
    if isinstance(value, int | float):
        millis = float(value if abs(value) > 1e11 else value * 1000)  # seconds or milliseconds
        return int(millis) if math.isfinite(millis) and 0 <= millis <= MAX_MILLIS else None
    if isinstance(value, str) and value.strip():
        try:
            return to_millis(float(value))
        except ValueError:
            return _iso_millis(value)
    return None


def _iso_millis(value: str) -> int | None:
    try:
        return to_millis(datetime.fromisoformat(value).timestamp())
    except (ValueError, OverflowError, OSError):
        return None
