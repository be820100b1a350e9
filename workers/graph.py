"""The Graph API client: one request path, pooled connections, errors classified by code."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from workers.errors import GraphError, GraphPermanent, GraphRetryable, GraphThrottled, GraphTokenInvalid
from workers.metrics import GRAPH_CALLS

log = logging.getLogger(__name__)

RETRYABLE_CODES = {1, 2, 1200}  # 1200: "temporary send message failure"
THROTTLED_CODES = {4, 17, 32, 613, 80001, 80002, 80006}
TOKEN_CODES = {190, 102}
PRESSURE_PERCENT = 90       # back off once any usage header reports this share of a limit
PRESSURE_WAIT = 30.0


class GraphClient:
    """GETs from (and POSTs to) the Graph API with a timeout on every call; raises GraphError subclasses."""

    def __init__(self, base_url: str, version: str, *, app_secret: str | None = None,
                 timeout: float = 10.0):
        self.root = base_url.rstrip("/")
        self.base = f"{self.root}/{version}"
        self.app_secret = app_secret
        self.timeout = timeout
        self.session = requests.Session()
        # Connection-level retries only: Graph errors are classified and retried by the caller.
        retry = Retry(total=2, connect=2, read=0, status=0, backoff_factor=0.2,
                      allowed_methods={"GET"})
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
        self.session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=8))

    def get(self, path: str, *, token: str, params: dict | None = None,
            versioned: bool = True) -> tuple[dict, float]:
        """GET one object; returns its body and the seconds the usage headers ask us to back off.

        The token travels in the Authorization header, never in the URL, which urllib3, proxies
        and access logs print. `versioned=False`: a path Meta documents without the version
        (graph.instagram.com/refresh_access_token).
        """
        return self._request("GET", path, token=token, params=params, versioned=versioned)

    def close(self) -> None:
        """Release the pooled connections (the configuration reloaded, or the process stops)."""
        self.session.close()

    def post(self, path: str, *, token: str, params: dict | None = None) -> tuple[dict, float]:
        """POST to an edge (parameters in the query string, as Meta documents them); like `get`."""
        return self._request("POST", path, token=token, params=params)

    def _request(self, method: str, path: str, *, token: str, params: dict | None,
                 versioned: bool = True) -> tuple[dict, float]:
        params = dict(params or {})
        if self.app_secret:
            params["appsecret_proof"] = appsecret_proof(self.app_secret, token)
        endpoint = _endpoint(path)
        base = self.base if versioned else self.root
        try:
            response = self.session.request(method, f"{base}/{path.lstrip('/')}", params=params,
                                            headers={"Authorization": f"Bearer {token}"},
                                            timeout=self.timeout)
        except requests.RequestException as exc:
            GRAPH_CALLS.labels(endpoint, "transient").inc()
            raise GraphRetryable(f"network error: {type(exc).__name__}") from None
        backoff = usage_backoff(response.headers)
        body = _json_or_none(response)
        if response.status_code >= 400 or body is None or "error" in body:
            error = classify(response.status_code, body, backoff)
            GRAPH_CALLS.labels(endpoint, OUTCOMES[type(error)]).inc()
            raise error
        GRAPH_CALLS.labels(endpoint, "ok").inc()
        return body, backoff


OUTCOMES = {GraphThrottled: "throttled", GraphTokenInvalid: "token_invalid",
            GraphRetryable: "transient", GraphPermanent: "permanent", GraphError: "permanent"}


def _endpoint(path: str) -> str:
    """A label that names the kind of read, not the object (ids would make endless series)."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last if "/" in path.strip("/") else "node"


def appsecret_proof(app_secret: str, token: str) -> str:
    """HMAC-SHA256 of the access token keyed with the app secret, as Meta defines it."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def classify(status: int, body: dict | None, backoff: float = 0.0) -> GraphError:
    """Turn an error answer into the GraphError subclass that says what to do; by code, not status."""
    error = (body or {}).get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        kind = GraphRetryable if status >= 500 or status in (408, 429) else GraphPermanent
        return kind(f"HTTP {status} without a Graph error body", status=status)
    code, subcode = _int_or_none(error.get("code")), _int_or_none(error.get("error_subcode"))
    trace = str(error["fbtrace_id"])[:64] if error.get("fbtrace_id") else None
    message = str(error.get("message", ""))[:300]
    if code in THROTTLED_CODES or status == 429:
        return GraphThrottled(message, code, subcode, status, trace, retry_after=backoff)
    found: type[GraphError] = GraphPermanent
    if code in TOKEN_CODES:
        found = GraphTokenInvalid
    elif code in RETRYABLE_CODES or error.get("is_transient") or status >= 500:
        found = GraphRetryable
    return found(message, code, subcode, status, trace)


def _int_or_none(value: object) -> int | None:
    """A Graph error number; a bool or a string of digits is not one Meta sends, but is kept as one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def usage_backoff(headers) -> float:
    """Seconds to stop calling, from X-Business-Use-Case-Usage and X-App-Usage (0: no pressure)."""
    wait = 0.0
    for bucket in _buc_buckets(headers.get("X-Business-Use-Case-Usage")):
        minutes = _number(bucket.get("estimated_time_to_regain_access"))
        wait = max(wait, minutes * 60, PRESSURE_WAIT if _pressed(bucket) else 0.0)
    app_usage = _loads(headers.get("X-App-Usage"))
    if isinstance(app_usage, dict) and _pressed(app_usage):
        wait = max(wait, PRESSURE_WAIT)
    return wait


def _buc_buckets(header: str | None) -> list[dict]:
    usage = _loads(header)
    if not isinstance(usage, dict):
        return []
    buckets = [b for value in usage.values() if isinstance(value, list) for b in value]
    return [b for b in buckets if isinstance(b, dict)]


def _pressed(usage: dict) -> bool:
    shares = ("call_count", "total_time", "total_cputime")
    return any(_number(usage.get(name)) >= PRESSURE_PERCENT for name in shares)


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _loads(text: str | None):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _json_or_none(response: requests.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
