"""The one place configuration is read: a TOML file plus environment overrides, into Settings."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from workers import environment
from workers.delivery.plugins import path_options
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


def source_mtime(source: os.PathLike | None) -> float | None:
    """When the configuration file last changed (None: no file, or unreadable): what a process
    compares to know that it must read the file again."""
    try:
        return os.stat(source).st_mtime if source else None
    except OSError:
        return None


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
    if env.get(environment.CONSOLE_TOKEN) and isinstance(doc.get("console", {}), dict):
        doc["console"] = {**doc.get("console", {}), "token": env[environment.CONSOLE_TOKEN]}
    if isinstance(doc.get("accounts"), list):
        doc["accounts"] = [_account_with_env(item, env) for item in doc["accounts"]]
    return doc


def _account_with_env(item: Any, env: Mapping[str, str]) -> Any:
    variable = _token_variable(item) if isinstance(item, dict) else None
    token = env.get(variable) if variable else None
    return {**item, "access_token": token} if token else item


def _token_variable(item: dict) -> str | None:
    """The environment variable that may hold an account's token: by page id, or by Instagram id
    for an Instagram Login account."""
    if item.get("login") == "instagram":
        key, prefix = item.get("instagram_id"), environment.IG_TOKEN_PREFIX
    else:
        key, prefix = item.get("page_id"), environment.PAGE_TOKEN_PREFIX
    return f"{prefix}{key}" if isinstance(key, str) else None


def _check(settings: Settings) -> None:
    """What types alone cannot say: tokens present, names unique, a store for an amqp broker."""
    for index, account in enumerate(settings.accounts):
        if not account.access_token:
            variable = _token_variable(account.model_dump())
            raise ConfigError(f"accounts[{index}].access_token: missing (or set {variable})")
    keys = [account.page_id for account in settings.accounts]
    for index, account in enumerate(settings.accounts):
        if keys.index(account.page_id) != index:
            raise ConfigError(f"accounts[{index}]: {account.page_id} is configured twice")
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
    """Each option the handler's type declares a path (`path_options`) is made relative to the file."""
    # base / an absolute path is that path; "~" is the user's home; a URL is left as it is
    resolved = {name: str(base / Path(value).expanduser()) for name in path_options(handler.type)
                if isinstance(value := handler.options.get(name), str) and value and "://" not in value}
    changed = {name: path for name, path in resolved.items() if path != handler.options[name]}
    return HandlerConfig.model_validate({**handler.model_dump(), **changed}) if changed else handler


def _config_error(exc: ValidationError) -> ConfigError:
    """The first problem pydantic found, worded with the key's path (`accounts[0].page_id: ...`)
    and the fix: an unknown key first (a misspelt one is what makes another missing), with the
    key it resembles; the variable that can hold a missing secret; quotes for a number given
    where text is wanted."""
    errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    error = errors[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    where = where.lstrip(".")
    kind, given = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return ConfigError(f"{where}: unknown key{_did_you_mean(str(error['loc'][-1]))}")
    if kind == "missing":
        variable = _SECRET_VARIABLES.get(where)
        return ConfigError(f"{where}: missing required key" + (f" (or set {variable})" if variable else ""))
    if kind == "string_type" and isinstance(given, int | float) and not isinstance(given, bool):
        return ConfigError(f'{where} must be a string: quote it ({error["loc"][-1]} = "{given}")')
    message = error["msg"].removeprefix("Value error, ")
    if kind != "value_error":
        message = f"{message} (got {type(given).__name__})"
    return ConfigError(f"{where}: {message}")


_SECRET_VARIABLES = {"meta.app_secrets": environment.APP_SECRET,
                     "meta.verify_token": environment.VERIFY_TOKEN}


def _did_you_mean(key: str) -> str:
    known = {name for model in _sections(Settings) for name in model.model_fields}
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _sections(model: type[BaseModel]) -> list[type[BaseModel]]:
    """The model and every section model its fields hold (directly or as a list of them)."""
    found = [model]
    for field in model.model_fields.values():
        for inner in (field.annotation, *get_args(field.annotation)):
            for candidate in (inner, *get_args(inner)):
                is_section = isinstance(candidate, type) and issubclass(candidate, BaseModel)
                if is_section and candidate not in found:
                    found += _sections(candidate)
    return found
