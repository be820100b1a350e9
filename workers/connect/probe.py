"""At `inbox-relay run`'s start: one cheap Graph read per account, in the background, and a one-line
warning for each account whose token fails. Never fatal, never in the way of starting."""

from __future__ import annotations

import logging
import threading

from workers.connect.checks import describe, graph_client, read_page
from workers.connect.template import TOKEN_PLACEHOLDER
from workers.connect.tokens import known_token
from workers.errors import GraphError, GraphRetryable, GraphTokenInvalid
from workers.graph import GraphClient
from workers.settings import Account, Settings

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 3.0  # seconds per Graph call


def probe_tokens_in_background(settings: Settings) -> threading.Thread | None:
    """Start the token probe on a daemon thread (None when there is no account to probe)."""
    if not settings.accounts:
        return None
    thread = threading.Thread(target=probe_tokens, args=(settings,), name="token-probe", daemon=True)
    thread.start()
    return thread


def probe_tokens(settings: Settings) -> list[str]:
    """Read each account's page once; log (and return) a warning line for each that fails."""
    warnings = [line for account in settings.accounts
                if (line := _probe(graph_client(settings, timeout=PROBE_TIMEOUT, account=account),
                                   account, known_token(settings, account)))]
    for line in warnings:
        log.warning("%s", line)
    return warnings


def _probe(graph: GraphClient, account: Account, token: str) -> str | None:
    if account.access_token == TOKEN_PLACEHOLDER:
        return f"account {account.page_id}: access_token is still the placeholder `inbox-relay init` wrote"
    try:
        read_page(graph, account, token)
    except GraphRetryable as exc:
        if exc.code is None:  # no answer (offline, a firewall): nothing learnt about the token
            log.info("account %s: token not checked: the Graph API did not answer", account.page_id)
            return None
        return _line(account, exc)
    except GraphError as exc:
        return _line(account, exc)
    except Exception as exc:  # a probe must never stop `run`
        log.info("account %s: token not checked (%s)", account.page_id, type(exc).__name__)
    return None


def _line(account: Account, exc: GraphError) -> str:
    text = f"account {account.page_id}: {describe(exc, account, 'its page cannot be read')}"
    if isinstance(exc, GraphTokenInvalid):
        text += "; its messages wait for hydration until then"
    return text + " (`inbox-relay check` tells more)"
