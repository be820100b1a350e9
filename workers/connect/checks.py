"""What `inbox-relay check` looks at: each account's token and webhook subscription, and the store's
encryption; each finding says in plain words what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from workers import environment
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
# An Instagram Login account's fields (`/me/subscribed_apps`): those inbox-relay needs, and all.
INSTAGRAM_NEEDED_FIELDS = ("messages", "message_reactions", "messaging_seen", "messaging_postbacks",
                           "messaging_referral")
INSTAGRAM_FIELDS = frozenset({
    *INSTAGRAM_NEEDED_FIELDS, "comments", "live_comments", "mentions", "messaging_handover",
    "messaging_optins", "standby", "story_insights",
})
PERMISSION_CODES = {10, 200, 210, 230}  # the token lacks a permission (or a task on the Page)


def needed_fields(account: Account) -> tuple[str, ...]:
    """The webhook fields inbox-relay needs from this kind of account."""
    return INSTAGRAM_NEEDED_FIELDS if account.instagram_login else NEEDED_FIELDS


def known_fields(account: Account) -> frozenset[str]:
    """The webhook fields this kind of account may subscribe to."""
    return INSTAGRAM_FIELDS if account.instagram_login else PAGE_FIELDS


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, whether it is fine, and what to do if not."""

    subject: str
    ok: bool
    text: str


def graph_client(settings: Settings, *, timeout: float = 10.0,
                 account: Account | None = None) -> GraphClient:
    """A Graph client configured as the workers' is (appsecret_proof included), on the host of
    `account` (graph.instagram.com for Instagram Login)."""
    meta = settings.meta
    if account is not None and account.instagram_login:
        return GraphClient(meta.instagram_graph_url, meta.graph_version, timeout=timeout)
    return GraphClient(meta.graph_url, meta.graph_version, timeout=timeout,
                       app_secret=meta.app_secrets[0] if meta.appsecret_proof else None)


def page_node(account: Account) -> str:
    """The node of the account's own edges (its page id, or `me`), escaped for a Graph path."""
    return quote(account.node, safe="")


def read_page(graph: GraphClient, account: Account, token: str) -> dict:
    """`GET /{page-id}?fields=id,name` (Instagram Login: `GET /me?fields=user_id,username`);
    raises GraphError."""
    fields = "user_id,username" if account.instagram_login else "id,name"
    body, _ = graph.get(page_node(account), token=token, params={"fields": fields})
    return body


def subscribed_fields(graph: GraphClient, account: Account,
                      token: str) -> tuple[str | None, list[str]] | None:
    """The app subscribed to the account's webhooks and its fields; None when no app is.

    Meta lists the subscribed apps; when it lists several, the one that has most of the fields
    inbox-relay needs is taken for ours.
    """
    body, _ = graph.get(f"{page_node(account)}/subscribed_apps", token=token)
    apps = [app for app in body.get("data") or [] if isinstance(app, dict)]
    if not apps:
        return None
    best = max(apps, key=lambda app: len(set(_fields(app)) & set(needed_fields(account))))
    return best.get("name"), _fields(best)


def subscribe(graph: GraphClient, account: Account, fields: list[str], token: str) -> None:
    """`POST /{page-id}/subscribed_apps?subscribed_fields=...` (or `/me/...`) with the token."""
    graph.post(f"{page_node(account)}/subscribed_apps", token=token,
               params={"subscribed_fields": ",".join(fields)})


def check_account(graph: GraphClient, account: Account, token: str) -> list[Finding]:
    """The token works (the page, or the Instagram account, reads), and it sends every webhook
    field inbox-relay needs."""
    subject = f"account {account.page_id}"
    if account.access_token == TOKEN_PLACEHOLDER:
        return [Finding(subject, False, "access_token is still the placeholder `inbox-relay init` "
                                        f"wrote: set {token_variable(account)} or put the token in the file")]
    try:
        found = read_page(graph, account, token)
    except GraphError as exc:
        what = "cannot read the Instagram account" if account.instagram_login else "cannot read the page"
        return [Finding(subject, False, describe(exc, account, what))]
    if account.instagram_login:
        if str(found.get("user_id")) != account.instagram_id:
            return [Finding(subject, False, f"the token is Instagram account {found.get('user_id')!r}'s, "
                                            f"not {account.instagram_id}'s: use that account's token")]
        findings = [Finding(subject, True, f"Instagram @{found.get('username', '?')}: the token works")]
    else:
        findings = [Finding(subject, True, f"page {found.get('name', '?')!r}: the token works")]
    return [*findings, _subscription_finding(graph, account, token)]


def token_variable(account: Account) -> str:
    """The environment variable that can hold the account's token."""
    if account.instagram_login:
        return f"{environment.IG_TOKEN_PREFIX}{account.instagram_id}"
    return f"{environment.PAGE_TOKEN_PREFIX}{account.page_id}"


def _subscription_finding(graph: GraphClient, account: Account, token: str) -> Finding:
    subject, fix = f"account {account.page_id}", f"run `inbox-relay subscribe --account {account.page_id}`"
    try:
        found = subscribed_fields(graph, account, token)
    except GraphError as exc:
        return Finding(subject, False, describe(exc, account, "cannot read the webhook subscriptions"))
    if found is None:
        return Finding(subject, False, f"no app is subscribed to this account's webhooks: {fix}")
    app, fields = found
    needed = needed_fields(account)
    missing = [field for field in needed if field not in fields]
    if missing:
        return Finding(subject, False, f"app {app!r} is not subscribed to the webhook fields "
                                       f"{', '.join(missing)}: {fix}")
    return Finding(subject, True, f"app {app!r} is subscribed to all {len(needed)} webhook "
                                  "fields inbox-relay needs")


def describe(exc: GraphError, account: Account, what: str) -> str:
    """A Graph error in plain words with what to do; never the token."""
    if isinstance(exc, GraphTokenInvalid):
        kind = "Instagram user token (Instagram Login)" if account.instagram_login else "page token"
        return (f"token invalid or expired: make a new {kind} (Graph error {exc.code}) and set "
                f"{token_variable(account)} or the account's access_token")
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
