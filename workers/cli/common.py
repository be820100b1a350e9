"""Small pieces the command modules share: options, durations, settings loading, tables, JSON."""

from __future__ import annotations

import errno
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import click
import redis

from workers import environment
from workers.crypto import Codec
from workers.durations import parse_duration
from workers.errors import RelayError
from workers.runtime.config import load_settings
from workers.settings import Settings
from workers.state import Store


class Duration(click.ParamType):
    """Seconds, or a number with a unit: 90, 90s, 15m, 2h, 7d."""

    name = "duration"

    def convert(self, value, param, ctx) -> float:
        """The duration in seconds."""
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DEFAULT_CONFIG = "inbox-relay.toml"  # in the current directory, when neither --config nor the variable
config_option = click.option("--config", type=click.Path(dir_okay=False), envvar=environment.CONFIG,
                             help="TOML configuration file (default: $INBOX_RELAY_CONFIG, "
                                  f"else ./{DEFAULT_CONFIG} if it exists).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
body_option = click.option("--show-body", is_flag=True,
                           help="Include message text and raw webhook data (hidden by default).")


def settings_or_exit(config: str | None) -> Settings:
    """Load the configuration, or stop with its error as a clean command-line message."""
    if not config:
        if not Path(DEFAULT_CONFIG).is_file():
            raise click.ClickException(f"no configuration: pass --config FILE, set INBOX_RELAY_CONFIG, "
                                       f"or write ./{DEFAULT_CONFIG} with `inbox-relay init`")
        config = DEFAULT_CONFIG
    try:
        return load_settings(config)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None


def port_free_or_exit(host: str, port: int) -> None:
    """Stop at once, before anything starts, when another process listens on the port: gunicorn
    would otherwise retry the bind for a while and the supervisor restart it again and again."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            holder = _listener_pid(port)
            who = f" (by pid {holder})" if holder else ""
            raise click.ClickException(f"port {port} on {host} is in use{who}; pass --port") from None


def _listener_pid(port: int) -> int | None:
    """The process listening on `port`, when this user may see it."""
    import psutil

    try:
        listening = [c for c in psutil.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]
    except psutil.Error:
        return None
    return next((c.pid for c in listening if c.pid), None)


def private_redis_for_this_command(settings: Settings) -> None:
    """With the private Redis, make sure it answers; one started here stops when the command ends.

    One that another process owns is used as it is, or reported when it answers an error: this
    command never starts a second one, nor stops one it did not start.
    """
    import atexit

    from workers.runtime.private_redis import ensure_embedded_redis, stop_embedded_redis

    if settings.embedded:
        try:
            owned = ensure_embedded_redis(settings, daemonize=False)
        except RelayError as exc:
            raise click.ClickException(str(exc)) from None
        if owned is not None:
            atexit.register(stop_embedded_redis, owned)


def store_for(settings: Settings) -> Store:
    """The shared Store, opening what is sealed with the configured keys."""
    return Store(settings.redis_store_url, codec=Codec(settings.encryption_keys))


def store_or_exit(settings: Settings) -> Store:
    """The shared Store (the private Redis answering, if it is the one), or a clean error."""
    private_redis_for_this_command(settings)
    store = store_for(settings)
    try:
        store.health.ping()
    except redis.RedisError as exc:  # the URL may hold a password: name the setting, not the URL
        raise click.ClickException(f"cannot reach the store (queue.store_url or queue.broker_url): "
                                   f"{type(exc).__name__}") from None
    return store


def when(epoch: float | None) -> str:
    """An epoch time as a UTC timestamp, '-' when absent."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(float(epoch), tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def echo_table(headers: list[str], rows: list[list]) -> None:
    """Print rows as left-aligned columns under a header."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [headers, ["-" * w for w in widths], *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def echo_json(value) -> None:
    """Print a value as indented JSON."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))
