"""The web console: the event log, the store and replay, for an operator's browser.

Served apart from the webhook (`inbox-relay console`, or `run` with a `[console] token`); see
DESIGN.md section 5. Everything it shows is rendered by autoescaping templates: message text
comes from strangers.
"""

from __future__ import annotations

from webhook_app.console.app import create_app, serve

__all__ = ["create_app", "serve"]
