"""The stand-in's page set-up endpoints, as Meta documents them: the Page node and its
`subscribed_apps` edge.

- `GET /{page-id}?fields=id,name` gives the requested fields of the Page.
- `GET /{page-id}/subscribed_apps` gives `{"data": [{"name", "id", "subscribed_fields"}]}`, the
  app whose page token asks (an empty list while it is not subscribed).
- `POST /{page-id}/subscribed_apps?subscribed_fields=a,b` sets the app's fields; `{"success": true}`.

These are not Conversations API calls: they are logged apart (`GraphWorld.setup_calls`) and do not
count against the conversations rate limit.
"""

from __future__ import annotations

from typing import Any

from workers.connect.checks import INSTAGRAM_FIELDS, PAGE_FIELDS
from workers.playground.graph_errors import error, no_object

KNOWN_FIELDS = PAGE_FIELDS | INSTAGRAM_FIELDS  # one stand-in serves the Facebook and Instagram hosts

GraphWorld = Any  # a workers.playground.graph_world.GraphWorld (which imports this module)



def is_setup_path(world: GraphWorld, parts: list[str]) -> bool:
    """Whether a request path is a known Page's node or its subscribed_apps edge."""
    known = parts[0] in world.tokens.values()
    return known and (len(parts) == 1 or parts[1:] == ["subscribed_apps"])


def answer_setup(world: GraphWorld, method: str, parts: list[str], query: dict,
                 page_id: str) -> tuple[int, dict]:
    """Answer a set-up request of the page whose token asks."""
    if parts[0] != page_id:
        return no_object(parts[0])
    if len(parts) == 1:
        if method != "GET":
            return 400, error(100, "Unsupported post request.", "GraphMethodException", 33)
        page = {"id": page_id, "name": world.page_names.get(page_id, f"Test Page {page_id}")}
        wanted = query.get("fields", "id,name").split(",")
        return 200, {key: value for key, value in page.items() if key in wanted}
    if method == "GET":
        fields = world.subscriptions.get(page_id)
        apps = [] if fields is None else [{"name": world.app_name, "id": world.app_id,
                                           "subscribed_fields": list(fields)}]
        return 200, {"data": apps}
    return _subscribe(world, query, page_id)


def _subscribe(world: GraphWorld, query: dict, page_id: str) -> tuple[int, dict]:
    given = [field.strip() for field in query.get("subscribed_fields", "").split(",") if field.strip()]
    if not given:
        return 400, error(100, "(#100) The parameter subscribed_fields is required", "OAuthException")
    unknown = [field for field in given if field not in KNOWN_FIELDS]
    if unknown:
        allowed = ", ".join(sorted(KNOWN_FIELDS))
        message = f'(#100) Param subscribed_fields[0] must be one of {{{allowed}}} - got "{unknown[0]}"'
        return 400, error(100, message, "OAuthException")
    world.subscriptions[page_id] = list(dict.fromkeys(given))
    return 200, {"success": True}
