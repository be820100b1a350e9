"""The one place configuration is read: a TOML file plus environment overrides for secrets."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.config_checks import (REQUIRED, list_of_tables, reject_unknown, string_list,
                                   table)
from workers.errors import ConfigError



@dataclass(frozen=True)
class Account:
    """One Facebook Page, optionally with its linked Instagram professional account."""

    page_id: str
    access_token: str
    instagram_id: str | None = None
    calls_per_second: float = 2.0


@dataclass(frozen=True)
class HandlerConfig:
    """One `[[handlers]]` table: the plugin type, its delivery policy and its own options."""

    type: str
    name: str
    max_attempts: int
    max_age: float
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Everything inbox-relay is configured with, typed and validated."""

    app_secrets: tuple[str, ...]
    verify_token: str
    graph_url: str = "https://graph.facebook.com"
    graph_version: str = "v27.0"
    appsecret_proof: bool = False
    accounts: tuple[Account, ...] = ()
    handlers: tuple[HandlerConfig, ...] = ()
    broker_url: str = ""
    store_url: str = ""
    data_dir: Path = Path("./var")
    visibility_timeout: float = 60.0
    replay_window: float = 900.0
    max_body_bytes: int = 1024 * 1024
    coalesce_seconds: float = 0.3
    hydrate_max_age: float = 600.0
    throttle_seconds: float = 60.0
    paused_recheck_seconds: float = 30.0
    source: Path | None = None

    @property
    def max_countdown(self) -> float:
        """The longest retry delay a task may ask for: Redis would hand a longer one out twice."""
        return min(300.0, self.visibility_timeout / 2)

    @property
    def embedded(self) -> bool:
        """True when inbox-relay runs its own private Redis in data_dir."""
        return not self.broker_url

    @property
    def redis_socket(self) -> Path:
        """The unix socket of the private Redis."""
        return self.data_dir.resolve() / "redis.sock"

    @property
    def celery_broker_url(self) -> str:
        """The broker URL Celery connects to."""
        return self.broker_url or f"redis+socket://{self.redis_socket}"

    @property
    def redis_store_url(self) -> str:
        """The redis-py URL of the shared Store."""
        if self.store_url:
            return self.store_url
        if self.embedded:
            return f"unix://{self.redis_socket}"
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        raise ConfigError("queue.store_url: required when queue.broker_url is not a redis:// URL")

    def account_for(self, entry_id: str | None) -> Account | None:
        """The account a webhook `entry.id` (page id or Instagram id) belongs to."""
        for account in self.accounts:
            if entry_id in (account.page_id, account.instagram_id):
                return account
        return None


# table -> key -> (type, default); REQUIRED marks keys without a default.
_META = {"app_secrets": (list, REQUIRED), "verify_token": (str, REQUIRED),
         "graph_url": (str, "https://graph.facebook.com"), "graph_version": (str, "v27.0"),
         "appsecret_proof": (bool, False)}
_ACCOUNT = {"page_id": (str, REQUIRED), "access_token": (str, ""), "instagram_id": (str, None),
            "calls_per_second": (float, 2.0)}
_QUEUE = {"broker_url": (str, ""), "store_url": (str, ""), "data_dir": (str, "./var"),
          "visibility_timeout": (float, 60.0), "replay_window": (float, 900.0)}
_WEB = {"max_body_bytes": (int, 1024 * 1024)}
_HYDRATION = {"coalesce_seconds": (float, 0.3), "max_age": (float, 600.0),
              "throttle_seconds": (float, 60.0), "paused_recheck_seconds": (float, 30.0)}
_HANDLER_POLICY = {"type": (str, REQUIRED), "name": (str, None), "max_attempts": (int, 8),
                   "max_age": (float, 3600.0)}
_TOP = {"meta", "accounts", "queue", "web", "hydration", "handlers"}


def load_settings(path: str | os.PathLike | None = None, *, env: dict | None = None) -> Settings:
    """Read the TOML file named by `path` or INBOX_RELAY_CONFIG, then apply env overrides."""
    env = os.environ if env is None else env
    path = path or env.get("INBOX_RELAY_CONFIG")
    if not path:
        raise ConfigError("no configuration: pass --config FILE or set INBOX_RELAY_CONFIG")
    source = Path(path)
    try:
        doc = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {source}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return settings_from_dict(doc, env=env, source=source)


def settings_from_dict(doc: dict, *, env: dict | None = None, source: Path | None = None) -> Settings:
    """Validate a parsed configuration document into Settings."""
    env = os.environ if env is None else env
    reject_unknown(doc, _TOP, "")
    meta = table(doc.get("meta", {}), _META, "meta", overrides=_meta_env(env))
    queue = table(doc.get("queue", {}), _QUEUE, "queue",
                   overrides=_present({"broker_url": env.get("INBOX_RELAY_BROKER_URL")}))
    web = table(doc.get("web", {}), _WEB, "web")
    hydration = table(doc.get("hydration", {}), _HYDRATION, "hydration")
    data_dir = Path(queue["data_dir"])
    if source is not None and not data_dir.is_absolute():
        data_dir = source.parent / data_dir
    secrets = string_list(meta["app_secrets"], "meta.app_secrets")
    return Settings(
        app_secrets=secrets, verify_token=meta["verify_token"],
        graph_url=meta["graph_url"].rstrip("/"), graph_version=meta["graph_version"],
        appsecret_proof=meta["appsecret_proof"],
        accounts=_accounts(doc.get("accounts", []), env),
        handlers=_handlers(doc.get("handlers", []), source),
        broker_url=queue["broker_url"], store_url=queue["store_url"], data_dir=data_dir,
        visibility_timeout=queue["visibility_timeout"], replay_window=queue["replay_window"],
        max_body_bytes=web["max_body_bytes"],
        coalesce_seconds=hydration["coalesce_seconds"], hydrate_max_age=hydration["max_age"],
        throttle_seconds=hydration["throttle_seconds"],
        paused_recheck_seconds=hydration["paused_recheck_seconds"],
        source=source,
    )


def _meta_env(env: dict) -> dict:
    secrets = env.get("META_APP_SECRET")
    return _present({
        "app_secrets": [s.strip() for s in secrets.split(",") if s.strip()] if secrets else None,
        "verify_token": env.get("META_VERIFY_TOKEN"),
    })


def _present(values: dict) -> dict:
    return {key: value for key, value in values.items() if value is not None}


def _accounts(items: Any, env: dict) -> tuple[Account, ...]:
    accounts = []
    for index, item in enumerate(list_of_tables(items, "accounts")):
        where = f"accounts[{index}]"
        page_id = item.get("page_id")
        token = env.get(f"META_PAGE_TOKEN_{page_id}") if isinstance(page_id, str) else None
        values = table(item, _ACCOUNT, where, overrides=_present({"access_token": token}))
        if not values["access_token"]:
            raise ConfigError(f"{where}.access_token: missing (or set META_PAGE_TOKEN_{page_id})")
        accounts.append(Account(**values))
    return tuple(accounts)


def _handlers(items: Any, source: Path | None) -> tuple[HandlerConfig, ...]:
    handlers, names = [], set()
    for index, item in enumerate(list_of_tables(items, "handlers")):
        where = f"handlers[{index}]"
        policy = table({k: v for k, v in item.items() if k in _HANDLER_POLICY}, _HANDLER_POLICY, where)
        name = policy["name"] or policy["type"]
        if name in names:
            raise ConfigError(f"{where}.name: '{name}' is used twice; give each handler a unique name")
        names.add(name)
        options = {k: v for k, v in item.items() if k not in _HANDLER_POLICY}
        if "path" in options and source is not None and not Path(str(options["path"])).is_absolute():
            options["path"] = str(source.parent / str(options["path"]))
        handlers.append(HandlerConfig(type=policy["type"], name=name, options=options,
                                      max_attempts=policy["max_attempts"], max_age=policy["max_age"]))
    return tuple(handlers)
