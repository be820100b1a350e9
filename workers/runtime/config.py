"""The one place configuration is read: a TOML file plus environment overrides, into Settings."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workers import environment
from workers.errors import ConfigError
from workers.settings import HandlerConfig, Settings


def load_settings(path: str | os.PathLike | None = None, *,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file named by `path` or INBOX_RELAY_CONFIG, then apply env overrides."""
    env = os.environ if env is None else env
    path = path or env.get(environment.CONFIG)
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


def settings_from_dict(doc: dict, *, env: Mapping[str, str] | None = None,
                       source: Path | None = None) -> Settings:
    """Validate a parsed configuration document (with env overrides) into Settings."""
    env = os.environ if env is None else env
    if "source" in doc:
        raise ConfigError("source: unknown key")
    try:
        settings = Settings.model_validate({**_with_env(doc, env), "source": source})
    except ValidationError as exc:
        raise _config_error(exc) from None
    _check(settings)
    return _relative_to(settings, source.parent) if source is not None else settings


def _with_env(doc: dict, env: Mapping[str, str]) -> dict:
    """The document with the secrets the environment holds put in place of the file's."""
    doc = dict(doc)
    if isinstance(doc.get("meta"), dict):
        meta = doc["meta"] = dict(doc["meta"])
        if env.get(environment.APP_SECRET):
            meta["app_secrets"] = [s.strip() for s in env[environment.APP_SECRET].split(",") if s.strip()]
        if env.get(environment.VERIFY_TOKEN):
            meta["verify_token"] = env[environment.VERIFY_TOKEN]
    keys = [key.strip() for key in env.get(environment.ENCRYPTION_KEYS, "").split(",") if key.strip()]
    if keys and isinstance(doc.get("security", {}), dict):
        doc["security"] = {**doc.get("security", {}), "encryption_keys": keys}
    if env.get(environment.BROKER_URL) and isinstance(doc.get("queue", {}), dict):
        doc["queue"] = {**doc.get("queue", {}), "broker_url": env[environment.BROKER_URL]}
    if isinstance(doc.get("accounts"), list):
        doc["accounts"] = [_account_with_env(item, env) for item in doc["accounts"]]
    return doc


def _account_with_env(item: Any, env: Mapping[str, str]) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("page_id"), str):
        return item
    token = env.get(f"{environment.PAGE_TOKEN_PREFIX}{item['page_id']}")
    return {**item, "access_token": token} if token else item


def _check(settings: Settings) -> None:
    """What types alone cannot say: tokens present, names unique, a store for an amqp broker."""
    for index, account in enumerate(settings.accounts):
        if not account.access_token:
            raise ConfigError(f"accounts[{index}].access_token: missing "
                              f"(or set META_PAGE_TOKEN_{account.page_id})")
    names: set[str] = set()
    for index, handler in enumerate(settings.handlers):
        if handler.name in names:
            raise ConfigError(f"handlers[{index}].name: '{handler.name}' is used twice; "
                              "give each handler a unique name")
        names.add(handler.name)
    queue = settings.queue
    if queue.broker_url and not queue.store_url and \
            not queue.broker_url.startswith(("redis://", "rediss://")):
        raise ConfigError("queue.store_url: required when queue.broker_url is not a redis:// URL")


def _relative_to(settings: Settings, base: Path) -> Settings:
    """Paths in the file are relative to the file."""
    data_dir = settings.queue.data_dir
    queue = settings.queue.model_copy(
        update={"data_dir": data_dir if data_dir.is_absolute() else base / data_dir})
    handlers = tuple(_handler_relative_to(handler, base) for handler in settings.handlers)
    return settings.model_copy(update={"queue": queue, "handlers": handlers})


def _handler_relative_to(handler: HandlerConfig, base: Path) -> HandlerConfig:
    path = handler.options.get("path")
    if path is None or Path(str(path)).is_absolute():
        return handler
    values = {**handler.model_dump(), "path": str(base / str(path))}
    return HandlerConfig.model_validate(values)


_MESSAGES = {"missing": "missing required key", "extra_forbidden": "unknown key"}


def _config_error(exc: ValidationError) -> ConfigError:
    """The first problem pydantic found, worded with the key's path: `accounts[0].page_id: ...`."""
    error = exc.errors()[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
    if error["type"] not in _MESSAGES and error["type"] != "value_error":
        message = f"{message} (got {type(error['input']).__name__})"
    return ConfigError(f"{where.lstrip('.')}: {message}")
