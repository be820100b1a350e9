"""Durations as people write them in a configuration file or on the command line."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FORMAT = "a duration like 90, 90s, 15m, 2h or 7d"


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number of seconds or a number with a unit (s, m, h, d); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not {FORMAT}")
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
    if not match:
        raise ValueError(f"{value!r} is not {FORMAT}")
    return float(match[1]) * UNITS[match[2] or "s"]
