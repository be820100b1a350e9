"""The configuration's shape: each key declared once, with its type and default.

pydantic checks types strictly and refuses unknown keys; `workers.runtime.config` reads the file
and words pydantic's findings with the key's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from workers.account import Account, Section
from workers.crypto import check_key
from workers.durations import parse_duration
from workers.errors import ConfigError
from workers.records import Kind

NonEmpty = Annotated[str, Field(min_length=1)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
KEY_FILE = "encryption.key"


def _list_as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


Secrets = Annotated[tuple[NonEmpty, ...], BeforeValidator(_list_as_tuple), Field(min_length=1)]


class MetaSettings(Section):
    """`[meta]`: the app's secrets and the Graph API it talks to."""

    app_secrets: Secrets
    verify_token: NonEmpty
    graph_url: str = "https://graph.facebook.com"
    graph_version: str = "v27.0"
    appsecret_proof: bool = False
    instagram_graph_url: str = "https://graph.instagram.com"  # the host of Instagram Login accounts
    token_refresh_before: Duration = 10 * 86400.0  # how early an Instagram user token is refreshed

    @model_validator(mode="after")
    def _refresh_within_a_tokens_life(self) -> MetaSettings:
        if not 3600 <= self.token_refresh_before <= 59 * 86400:
            raise ValueError("token_refresh_before: between \"1h\" and \"59d\" (a long-lived Instagram "
                             "token lasts 60 days, and Meta refreshes one only once it is a day old)")
        return self


class QueueSettings(Section):
    """`[queue]`: broker, shared store and the local data directory."""

    broker_url: str = ""
    store_url: str = ""
    data_dir: Path = Path("./var")
    visibility_timeout: float = Field(60.0, gt=0)
    replay_window: float = 900.0
    dedup_days: float = Field(30.0, gt=0)   # how long "handler X has event Y" is remembered
    retention: Duration = 7 * 86400.0        # published inbox rows and dead letters go after this

    @model_validator(mode="before")
    @classmethod
    def _path_from_text(cls, values: Any) -> Any:
        if isinstance(values, dict) and isinstance(values.get("data_dir"), str):
            return {**values, "data_dir": Path(values["data_dir"])}
        return values


class WebSettings(Section):
    """`[web]`: limits of the webhook receiver."""

    max_body_bytes: int = Field(1024 * 1024, gt=0)
    ready_backlog_seconds: float = Field(60.0, gt=0)  # /readyz fails when a delivery waits longer


class HydrationSettings(Section):
    """`[hydration]`: coalescing, give-up and back-off times of Graph reads."""

    coalesce_seconds: float = 0.3
    max_age: float = 600.0
    throttle_seconds: float = 60.0
    paused_recheck_seconds: float = 30.0


class SecuritySettings(Section):
    """`[security]`: encryption at rest."""

    encryption_keys: Annotated[tuple[NonEmpty, ...], BeforeValidator(_list_as_tuple)] = ()
    plaintext: bool = False  # true: a shared Redis without keys, knowingly (silences the warning)

    @model_validator(mode="after")
    def _keys_are_fernet_keys(self) -> SecuritySettings:
        for index, key in enumerate(self.encryption_keys):
            try:
                check_key(key)
            except ValueError:
                raise ValueError(f"encryption_keys[{index}] is not a key made by "
                                 "`inbox-relay keygen` (32 bytes, URL-safe base64)") from None
        return self


def _off_or_duration(value: Any) -> Any:
    return None if value in ("off", None) else parse_duration(value)


class SyncSettings(Section):
    """`[sync]`: the periodic gap sweep."""

    # How often to re-read conversations updated since the last sweep; "off" turns it off.
    sweep_every: Annotated[float | None, BeforeValidator(_off_or_duration)] = 15 * 60.0


class EventsSettings(Section):
    """`[events]`: the event log (what happened to every event) and how long it keeps it."""

    log_url: str = ""  # empty: SQLite in data_dir (one machine); postgresql://... for many; "off"
    keep: Duration = 7 * 86400.0


class ConsoleSettings(Section):
    """`[console]`: the web console, served apart from the webhook; off without a token."""

    listen: str = Field("127.0.0.1:8001", pattern=r"^(off|\S+:\d{1,5})$")  # HOST:PORT, or "off"
    token: str = ""  # what an operator logs in with (env INBOX_RELAY_CONSOLE_TOKEN)

    @property
    def enabled(self) -> bool:
        """True when `run` serves the console: a token is set and listen is not "off"."""
        return bool(self.token) and self.listen != "off"


class HandlerConfig(BaseModel):
    """`[[handlers]]`: the plugin type, its delivery policy; every other key goes to the plugin."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    type: str
    name: str = Field("", pattern=r"^[^|]*$")  # "|" separates the parts of a queue name
    kinds: Annotated[tuple[Kind, ...], BeforeValidator(_list_as_tuple)] | None = None
    max_attempts: int = Field(8, ge=1)
    max_age: float = 3600.0
    # Isolation in time: calls of this handler in flight at once across every worker, so that a
    # hung endpoint holds at most this many pool processes; and the circuit breaker.
    concurrency: int = Field(1, ge=1)
    pause_after: int = Field(5, ge=0)         # failed attempts in a row that pause it; 0: never
    pause_for: Duration = Field(30.0, gt=0)   # the first pause; doubles while the probe fails

    @property
    def options(self) -> dict[str, Any]:
        """The plugin's own keys: passed to its factory as keyword arguments."""
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _name_defaults_to_type(self) -> HandlerConfig:
        if not self.name:
            object.__setattr__(self, "name", self.type)
        return self


class Settings(Section):
    """Everything inbox-relay is configured with, typed and validated."""

    meta: MetaSettings
    accounts: Annotated[tuple[Account, ...], BeforeValidator(_list_as_tuple)] = ()
    queue: QueueSettings = QueueSettings()
    web: WebSettings = WebSettings()
    hydration: HydrationSettings = HydrationSettings()
    security: SecuritySettings = SecuritySettings()
    sync: SyncSettings = SyncSettings()
    events: EventsSettings = EventsSettings()
    console: ConsoleSettings = ConsoleSettings()
    handlers: Annotated[tuple[HandlerConfig, ...], BeforeValidator(_list_as_tuple)] = ()
    source: Path | None = None

    @property
    def source_file(self) -> Path:
        """The file these settings were read from, for child processes to read it again."""
        if self.source is None:
            raise ConfigError("these settings were not read from a configuration file")
        return self.source

    @property
    def key_file(self) -> Path:
        """Where `run` keeps the key it made for the private Redis."""
        return self.data_dir / KEY_FILE

    @property
    def encryption_keys(self) -> tuple[str, ...]:
        """The configured keys; else, on the private Redis, the key `run` made in data_dir."""
        if self.security.encryption_keys or not self.embedded or not self.key_file.exists():
            return self.security.encryption_keys
        return (self.key_file.read_text(encoding="ascii").strip(),)

    @property
    def max_countdown(self) -> float:
        """The longest retry delay a task may ask for: Redis would hand a longer one out twice."""
        return min(300.0, self.queue.visibility_timeout / 2)

    @property
    def slot_lease(self) -> float:
        """How long a handler slot stays taken at most: a task's hard time limit (celery_setup)."""
        return self.queue.visibility_timeout * 0.75

    @property
    def embedded(self) -> bool:
        """True when inbox-relay runs its own private Redis in data_dir."""
        return not self.queue.broker_url

    @property
    def data_dir(self) -> Path:
        """Where the inbox, the private Redis and its files live."""
        return self.queue.data_dir

    @property
    def redis_socket(self) -> Path:
        """The unix socket of the private Redis."""
        return self.data_dir.resolve() / "redis.sock"

    @property
    def celery_broker_url(self) -> str:
        """The broker URL Celery connects to."""
        return self.queue.broker_url or f"redis+socket://{self.redis_socket}"

    @property
    def redis_store_url(self) -> str:
        """The redis-py URL of the shared Store."""
        if self.queue.store_url:
            return self.queue.store_url
        if self.embedded:
            return f"unix://{self.redis_socket}"
        return self.queue.broker_url  # a redis:// broker: checked at load

    def account_for(self, entry_id: str | None) -> Account | None:
        """The account a webhook `entry.id` (page id or Instagram id) or a command's `--account`
        names: its own key first (an Instagram Login account's is its instagram_id), so that one
        beside a Page linked to the same Instagram account is found; else the Page linked to it."""
        for account in self.accounts:
            if entry_id == account.page_id:
                return account
        for account in self.accounts:
            if entry_id == account.instagram_id:
                return account
        return None
