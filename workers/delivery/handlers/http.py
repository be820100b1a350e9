"""The built-in `http` handler: POSTs each event as JSON, signed per Standard Webhooks."""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from standardwebhooks.webhooks import Webhook
from urllib3.util.retry import Retry

from workers.delivery.handlers.deadline import Deadline, DeadlineAdapter
from workers.errors import HandlerRejected, HandlerRetryable
from workers.records import Event

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks spec asks for 24 to 64 random bytes
RETRYABLE_STATUS = {408, 429}
USER_AGENT = "inbox-relay"
MAX_BODY = 65536  # bytes of an answer read before the connection is dropped instead


def parse_secret(secret: str) -> Webhook:
    """A signer for a `whsec_<base64>` secret; ValueError with the reason if it is malformed."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError("secret: expected 'whsec_' followed by base64 (Standard Webhooks format)")
    encoded = secret[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret: the part after 'whsec_' is not valid base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"secret: decodes to {len(key)} bytes; use at least {MIN_SECRET_BYTES} random bytes")
    return Webhook(secret)


class HttpHandler:
    """POSTs the event record to `url`: 2xx succeeds; 408, 429, 5xx, network retry; others reject."""

    def __init__(self, *, name: str = "http", url: str, secret: str | None = None,
                 timeout: float = 10.0, connect_timeout: float = 3.0, headers: dict | None = None):
        if not isinstance(url, str) or not urlsplit(url).hostname or \
                not url.startswith(("http://", "https://")):
            raise ValueError("url: expected an http:// or https:// URL with a host")
        if timeout <= 0:
            raise ValueError("timeout: expected a positive number of seconds")
        if connect_timeout <= 0:
            raise ValueError("connect_timeout: expected a positive number of seconds")
        self.name, self.url, self.timeout = name, url, float(timeout)
        self.connect_timeout = min(float(connect_timeout), self.timeout)
        self.where = _redacted(url)
        self.signer = parse_secret(secret) if secret is not None else None
        self.headers = {str(k): str(v) for k, v in (headers or {}).items()}
        self.session = _session()

    def handle(self, event: Event) -> None:
        """Send one event; raises HandlerRetryable or HandlerRejected unless the answer is 2xx."""
        payload = json.dumps(event.to_dict())
        # `timeout` bounds the whole attempt, connect to last byte (Deadline), not each read.
        with Deadline(self.timeout) as deadline:
            try:
                response = self.session.post(self.url, data=payload.encode("utf-8"),
                                             headers=self._headers(event.id, payload), stream=True,
                                             timeout=(self.connect_timeout, self.timeout),
                                             allow_redirects=False)
                _drain_body(response)
            except requests.RequestException as exc:
                if deadline.expired or isinstance(exc, requests.Timeout):
                    raise HandlerRetryable(f"{self.where}: no answer within {self.timeout:g}s") from None
                raise HandlerRetryable(f"{self.where}: {type(exc).__name__}") from None
        _check(response, self.where)

    def _headers(self, event_id: str, payload: str) -> dict:
        now = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **self.headers,
                   "webhook-id": event_id, "webhook-timestamp": str(now)}
        if self.signer is not None:
            moment = datetime.fromtimestamp(now, tz=UTC)
            headers["webhook-signature"] = self.signer.sign(event_id, moment, payload)
        return headers

    def close(self) -> None:
        """Release the pooled connections."""
        self.session.close()


def _session() -> requests.Session:
    session = requests.Session()
    # Only failed connects are retried here: nothing was sent, so nothing can arrive twice.
    retry = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, backoff_factor=0.2)
    adapter = DeadlineAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _drain_body(response: requests.Response) -> None:
    # Read (and drop) a small body so the connection can be kept alive; a larger one is cut off.
    seen = 0
    for chunk in response.iter_content(16384):
        seen += len(chunk)
        if seen >= MAX_BODY:
            break


def _redacted(url: str) -> str:
    # Error strings are stored with dead letters: keep credentials and query tokens out of them.
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _check(response: requests.Response, where: str) -> None:
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return
    # The body stays out of the message: it may echo the event, and this string is stored.
    line = f"{where} answered HTTP {status} {(response.reason or '')[:60]}".strip()
    if status in RETRYABLE_STATUS or status >= 500:
        raise HandlerRetryable(line)
    raise HandlerRejected(line)
