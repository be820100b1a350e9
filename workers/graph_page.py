"""One page of a Graph API list, read the same way by every reader: its objects and its cursor.

Meta's list answers are `{"data": [...], "paging": {"cursors": {"after": ...}, "next": url}}`;
anything else in that place (a missing key, a string, null) reads as no objects and no next page,
never as an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    """The objects of one page (dicts only) and the cursor of the next page (None: last page)."""

    items: list[dict]
    after: str | None

    @classmethod
    def of(cls, body: Any) -> Page:
        """Read a list answer, or an edge nested in a node (`conversation["messages"]`)."""
        body = body if isinstance(body, dict) else {}
        data = body.get("data")
        items = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
        return cls(items, _after(body.get("paging")))

    @property
    def nodes(self) -> list[dict]:
        """The objects that carry an id: the ones a reader can name again."""
        return [item for item in self.items if item.get("id")]


def _after(paging: Any) -> str | None:
    if not isinstance(paging, dict) or not paging.get("next"):
        return None  # Meta sends cursors on the last page too: only `next` says there is more
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return after if isinstance(after, str) and after else None
