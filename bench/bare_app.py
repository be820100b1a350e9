"""Baseline for bench/ingest.py: a bare Flask app whose POST /webhook only checks the HMAC."""

from __future__ import annotations

import os

from flask import Flask, Response, request

from webhook_app.signature import SignatureError, verify


def create_app() -> Flask:
    """The baseline app; secrets from BARE_APP_SECRETS (comma-separated), like meta.app_secrets."""
    secrets = tuple(os.environ.get("BARE_APP_SECRETS", "test-app-secret").split(","))
    app = Flask(__name__)

    @app.post("/webhook")
    def receive():
        """403 unless signed with one of the secrets; else 200."""
        try:
            verify(request.get_data(cache=False), request.headers.get("X-Hub-Signature-256"), secrets)
        except SignatureError:
            return Response("bad signature", 403, mimetype="text/plain")
        return Response("EVENT_RECEIVED", 200, mimetype="text/plain")

    @app.get("/healthz")
    def healthz():
        """200 while serving."""
        return Response("ok", 200, mimetype="text/plain")

    return app
