"""What `inbox-relay check` looks at: each account's token and webhook subscription, and the store's
encryption; each finding says in plain words what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from workers.connect.template import APP_SECRET_PLACEHOLDER, TOKEN_PLACEHOLDER
from workers.errors import GraphError, GraphRetryable, GraphTokenInvalid
from workers.graph import GraphClient
from workers.settings import Account, Settings

# The Page webhook fields inbox-relay turns into events (Messenger Platform "webhook events").
NEEDED_FIELDS = ("messages", "messaging_postbacks", "message_echoes", "message_reactions",
                 "message_reads", "message_deliveries", "messaging_referrals", "messaging_optins",
                 "messaging_handovers", "message_edits")
# The Page webhook fields a messaging app may subscribe to (Meta's Webhooks reference, Page object).
PAGE_FIELDS = frozenset({
    *NEEDED_FIELDS, "messaging_account_linking", "messaging_game_plays", "messaging_policy_enforcement",
    "standby", "feed",
})
PERMISSION_CODES = {10, 200, 210, 230}  # the token lacks a permission (or a task on the Page)


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, whether it is fine, and what to do if not."""

    subject: str
    ok: bool
    text: str


def graph_client(settings: Settings, *, timeout: float = 10.0) -> GraphClient:
    """A Graph client configured as the workers' is (appsecret_proof included)."""
    meta = settings.meta
    return GraphClient(meta.graph_url, meta.graph_version, timeout=timeout,
                       app_secret=meta.app_secrets[0] if meta.appsecret_proof else None)


def page_node(account: Account) -> str:
    """The account's page id, escaped for a Graph path."""
    return quote(account.page_id, safe="")


def read_page(graph: GraphClient, account: Account) -> dict:
    """`GET /{page-id}?fields=id,name` with the account's token; raises GraphError."""
    body, _ = graph.get(page_node(account), token=account.access_token, params={"fields": "id,name"})
    return body


def subscribed_fields(graph: GraphClient, account: Account) -> tuple[str | None, list[str]] | None:
    """The app subscribed to the page's webhooks and its fields; None when no app is.

    Meta lists the subscribed apps; when it lists several, the one that has most of the fields
    inbox-relay needs is taken for ours.
    """
    body, _ = graph.get(f"{page_node(account)}/subscribed_apps", token=account.access_token)
    apps = [app for app in body.get("data") or [] if isinstance(app, dict)]
    if not apps:
        return None
    best = max(apps, key=lambda app: len(set(_fields(app)) & set(NEEDED_FIELDS)))
    return best.get("name"), _fields(best)


def subscribe(graph: GraphClient, account: Account, fields: list[str]) -> None:
    """`POST /{page-id}/subscribed_apps?subscribed_fields=...` with the account's token."""
    graph.post(f"{page_node(account)}/subscribed_apps", token=account.access_token,
               params={"subscribed_fields": ",".join(fields)})


def check_account(graph: GraphClient, account: Account) -> list[Finding]:
    """The token works (the page reads), and the page sends every webhook field inbox-relay needs."""
    subject = f"account {account.page_id}"
    if account.access_token == TOKEN_PLACEHOLDER:
        return [Finding(subject, False, "access_token is still the placeholder `inbox-relay init` "
                                        f"wrote: set META_PAGE_TOKEN_{account.page_id} or put the "
                                        "page token in the file")]
    try:
        page = read_page(graph, account)
    except GraphError as exc:
        return [Finding(subject, False, describe(exc, account, "cannot read the page"))]
    findings = [Finding(subject, True, f"page {page.get('name', '?')!r}: the token works")]
    return [*findings, _subscription_finding(graph, account)]


def _subscription_finding(graph: GraphClient, account: Account) -> Finding:
    subject, fix = f"account {account.page_id}", f"run `inbox-relay subscribe --account {account.page_id}`"
    try:
        found = subscribed_fields(graph, account)
    except GraphError as exc:
        return Finding(subject, False, describe(exc, account, "cannot read the webhook subscriptions"))
    if found is None:
        return Finding(subject, False, f"no app is subscribed to this page's webhooks: {fix}")
    app, fields = found
    missing = [field for field in NEEDED_FIELDS if field not in fields]
    if missing:
        return Finding(subject, False, f"app {app!r} is not subscribed to the webhook fields "
                                       f"{', '.join(missing)}: {fix}")
    return Finding(subject, True, f"app {app!r} is subscribed to all {len(NEEDED_FIELDS)} webhook "
                                  "fields inbox-relay needs")


def describe(exc: GraphError, account: Account, what: str) -> str:
    """A Graph error in plain words with what to do; never the token."""
    if isinstance(exc, GraphTokenInvalid):
        return (f"token invalid or expired: make a new page token (Graph error {exc.code}) and set "
                f"META_PAGE_TOKEN_{account.page_id} or the account's access_token")
    if isinstance(exc, GraphRetryable) and exc.code is None:
        return f"{what}: the Graph API did not answer ({redact(exc.message, account)}); try again"
    hint = ""
    if exc.code in PERMISSION_CODES:
        hint = " (the token lacks a permission: pages_messaging and pages_manage_metadata are needed)"
    elif exc.code == 100:
        hint = " (is the page id right, and is the token this page's?)"
    return f"{what}: Graph error {exc.code}: {redact(exc.message, account)}{hint}"


def redact(text: str, account: Account) -> str:
    """`text` without the account's token, should an answer ever quote it."""
    return text.replace(account.access_token, "<token>") if account.access_token else text


def check_settings(settings: Settings) -> list[Finding]:
    """What the configuration alone can tell: placeholders, accounts, encryption of a shared Redis."""
    findings = []
    if APP_SECRET_PLACEHOLDER in settings.meta.app_secrets:
        findings.append(Finding("meta", False, "app_secrets still holds the placeholder `inbox-relay "
                                               "init` wrote: copy the app secret from the App Dashboard "
                                               "(App settings > Basic) or set META_APP_SECRET"))
    if not settings.accounts:
        findings.append(Finding("accounts", False, "no [[accounts]]: add one per Facebook Page "
                                                   "(`inbox-relay init --page-id ID` writes them)"))
    return [*findings, security_finding(settings)]


def security_finding(settings: Settings) -> Finding:
    """A shared Redis needs encryption keys, or `plaintext = true` to say plain text is intended."""
    if settings.embedded and not settings.queue.store_url:
        return Finding("security", True, "the private Redis in data_dir holds the shared state")
    if settings.security.encryption_keys:
        return Finding("security", True, "a shared Redis, with data at rest encrypted")
    if settings.security.plaintext:
        return Finding("security", True, "a shared Redis without encryption, as [security] "
                                         "plaintext = true says")
    return Finding("security", False, "a shared Redis without [security] encryption_keys: message "
                                      "text would be stored in plain text. Make a key with `inbox-relay "
                                      "keygen` and set it on every node (or INBOX_RELAY_ENCRYPTION_KEYS), "
                                      "or set [security] plaintext = true if that is intended")


def _fields(app: dict) -> list[str]:
    fields = app.get("subscribed_fields")
    return [f for f in fields if isinstance(f, str)] if isinstance(fields, list) else []
