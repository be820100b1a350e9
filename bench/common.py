"""Helpers the benchmarks share: webhook bodies, a jsonl tail, percentiles and a plain table."""

from __future__ import annotations

import json
import statistics
from pathlib import Path


def messaging_body(account: str, user: str, item: dict, *, timestamp: int, padding: int = 0) -> bytes:
    """A `page` delivery with one messaging item from `user` to `account` (item: e.g. {"read": ...})."""
    envelope = {"object": "page", "entry": [{"id": account, "time": timestamp, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": timestamp, **item}]}]}
    if padding:
        envelope["padding"] = "x" * padding  # ignored by the parser; brings a body to a given size
    return json.dumps(envelope).encode()


def read_events_body(account: str, senders: list[str], *, timestamp: int) -> bytes:
    """A `page` delivery of one `read` event from each of `senders` (events that need no Graph call)."""
    items = [{"sender": {"id": sender}, "recipient": {"id": account}, "timestamp": timestamp,
              "read": {"watermark": timestamp}} for sender in senders]
    return json.dumps({"object": "page", "entry": [{"id": account, "time": timestamp,
                                                     "messaging": items}]}).encode()


class JsonlTail:
    """The records appended to a jsonl file since the previous read, whole lines only."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = path, 0, b""

    def read(self) -> list[dict]:
        """New complete records (none if the file does not exist yet)."""
        if not self.path.exists():
            return []
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [json.loads(line) for line in lines if line]


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) of `values`."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def table(headers: list[str], rows: list[list]) -> str:
    """A left-aligned text table."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
