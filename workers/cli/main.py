"""The `inbox-relay` command line."""

from __future__ import annotations

import os
import sys

import click

from workers import environment
from workers.cli.check import check
from workers.cli.common import config_option, port_free_or_exit
from workers.cli.common import settings_or_exit as _settings
from workers.cli.console import HOW_TO_TURN_IT_ON, console, console_plan
from workers.cli.dead_letters import dead_letters
from workers.cli.deliveries import deliveries
from workers.cli.events import events
from workers.cli.inbox import inbox
from workers.cli.init import init
from workers.cli.keys import keygen, rotate_keys
from workers.cli.send_test_event import send_test_event
from workers.cli.status import status
from workers.cli.subscribe import subscribe_command
from workers.cli.sync import sync
from workers.errors import RelayError
from workers.inbox.database import INBOX_FILE
from workers.inbox.integrity import check_intact
from workers.runtime import logs
from workers.runtime.data_dir import METRICS_ENV, clear_metrics, metrics_dir, private_dir, private_files
from workers.runtime.private_redis import (
    PrivateRedis,
    PrivateRedisUnhealthy,
    ensure_embedded_redis,
    stop_embedded_redis,
)
from workers.runtime.startup import start_checks
from workers.settings import Settings

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


def _prepared(config: str | None, log_level: str, log_format: str, *, serves_inbox: bool = True,
              accept_inbox_loss: bool = False, owns_redis: bool = False,
              ) -> tuple[Settings, PrivateRedis | None]:
    """Settings checked for a long-running command: handlers load, the inbox is whole and the one
    the store remembers, the key opens what is stored; the data dir is private, the private Redis
    runs (owned by this process if `owns_redis`) and gets a key on first start."""
    from workers.delivery.plugins import load_handlers

    settings = _settings(config)
    os.environ[logs.LEVEL_ENV] = log_level.lower()
    os.environ[logs.FORMAT_ENV] = log_format.lower()
    logs.configure()
    try:
        load_handlers(settings)
        private_dir(settings.data_dir)
        check_intact(settings.data_dir / INBOX_FILE)  # before anything starts
        owned = _private_redis(settings, owns=owns_redis)
        try:
            notices = start_checks(settings, serves_inbox=serves_inbox,
                                   accept_inbox_loss=accept_inbox_loss)
        except BaseException:
            stop_embedded_redis(owned)
            raise
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None
    for notice in notices:
        click.echo(notice, err=True)
    os.environ.setdefault(METRICS_ENV, str(metrics_dir(settings)))
    return settings, owned


def _private_redis(settings: Settings, *, owns: bool) -> PrivateRedis | None:
    """Start the private Redis unless it has an owner; one that runs unhealthy is reported, and
    start-up goes on: deliveries wait in the inbox, as through any broker outage."""
    if not settings.embedded:
        return None
    try:
        return ensure_embedded_redis(settings, daemonize=not owns)
    except PrivateRedisUnhealthy as exc:
        click.echo(f"inbox-relay: {exc}", err=True)
        return None


accept_loss_option = click.option(
    "--accept-inbox-loss", is_flag=True,
    help="Start although the inbox holds less than the store remembers (emptied, or its -wal "
         "lost): it goes on as a new inbox. Restore the file instead if you can.")


def log_options(command):
    """--log-level and --log-format, for the commands that start processes."""
    command = click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                           show_default=True, help="One JSON object per line, or plain text.")(command)
    return click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True,
                        help="Log level of every process (logs never show text or secrets).")(command)


class _Commands(click.Group):
    """The command group: an error inbox-relay raises on purpose ends a command with its one line."""

    def invoke(self, ctx: click.Context):
        """Run the command; a RelayError (a key that opens nothing, a damaged inbox) is its message."""
        try:
            return super().invoke(ctx)
        except RelayError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a file it cannot read or write: name it, not a traceback
            if exc.filename is None:
                raise
            where = os.path.abspath(exc.filename)
            raise click.ClickException(f"cannot use {where}: {exc.strerror} (data_dir and the files "
                                       "inbox-relay keeps must be writable by this user)") from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="inbox-relay")
def main() -> None:
    """inbox-relay: receive Messenger and Instagram webhooks, hydrate them, hand them to handlers."""
    private_files()
    logs.configure()


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--web-workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--concurrency", default=2, show_default=True, help="Celery worker processes.")
@accept_loss_option
@log_options
def run(config, host, port, web_workers, concurrency, accept_inbox_loss, log_level, log_format) -> None:
    """Web server and worker together (and the private Redis unless a broker is configured).

    Ready when it prints 'inbox-relay ready' (its web answers, and so do the broker and store);
    Ctrl-C or SIGTERM stops every process it started.
    """
    port_free_or_exit(host, port)
    _run(config, host, port, web_workers, concurrency, accept_inbox_loss, log_level, log_format)


@main.command()
@click.option("--dir", "directory", default="playground", show_default=True,
              type=click.Path(file_okay=False), help="Where it keeps its configuration, inbox and events.")
@click.option("--port", default=8000, show_default=True, help="Port of the webhook.")
@click.option("--graph-port", default=0, help="Port of the Graph API stand-in  [default: any free one]")
@log_options
def playground(directory, port, graph_port, log_level, log_format) -> None:
    """`run` against a Graph API stand-in, to watch hydration, sync and the sweep without Meta.

    The stand-in (in this process, on 127.0.0.1) serves one Page with Messenger and Instagram
    conversations; the configuration it writes into DIR points at it. `send-test-event
    --config DIR/inbox-relay.toml` then sends messages the stand-in knows, so they arrive hydrated.
    """
    from pathlib import Path

    from workers.playground.setup import banner, start_stand_in

    port_free_or_exit("127.0.0.1", port)
    config, server = start_stand_in(Path(directory), graph_port)
    for line in banner(config, server, port):
        click.echo(line)
    _run(str(config), "127.0.0.1", port, 2, 2, False, log_level, log_format)


def _run(config, host, port, web_workers, concurrency, accept_inbox_loss, log_level, log_format) -> None:
    from workers.connect.probe import probe_tokens_in_background
    from workers.runtime.supervisor import run as supervise

    console_at = console_plan(_settings(config), port)  # before anything starts, as the web's port
    if console_at is not None:
        port_free_or_exit(*console_at)
    settings, owned = _prepared(config, log_level, log_format, accept_inbox_loss=accept_inbox_loss,
                                owns_redis=True)
    click.echo(f"inbox-relay: console on http://{console_at[0]}:{console_at[1]}/console/"
               if console_at else HOW_TO_TURN_IT_ON, err=True)
    clear_metrics(settings)  # counts start with the run; `web` and `worker` alone keep theirs
    probe_tokens_in_background(settings)  # a one-line warning per account whose token fails
    code = supervise(settings, host=host, port=port, web_workers=web_workers, concurrency=concurrency,
                     redis_process=owned, console=console_at)
    # Everything it started has stopped: skip tearing down the modules it loaded (about a second).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@accept_loss_option
@log_options
def web(config, host, port, workers, accept_inbox_loss, log_level, log_format) -> None:
    """The webhook receiver alone (gunicorn); starts the private Redis if none is configured."""
    from workers.runtime.supervisor import web_command

    port_free_or_exit(host, port)
    settings, _ = _prepared(config, log_level, log_format, accept_inbox_loss=accept_inbox_loss)
    _exec(web_command(host, port, workers), settings)


@main.command()
@config_option
@click.option("--concurrency", default=2, show_default=True, help="Celery worker processes.")
@log_options
def worker(config, concurrency, log_level, log_format) -> None:
    """The Celery worker alone; starts the private Redis if none is configured."""
    from workers.runtime.supervisor import worker_command

    settings, _ = _prepared(config, log_level, log_format, serves_inbox=False)
    _exec(worker_command(concurrency), settings)


def _exec(command: list[str], settings: Settings) -> None:
    os.environ[environment.CONFIG] = str(settings.source_file.resolve())
    os.execvp(command[0], command)


main.add_command(console)
main.add_command(dead_letters)
main.add_command(deliveries)
main.add_command(events)
main.add_command(inbox)
main.add_command(status)
main.add_command(sync)
main.add_command(keygen)
main.add_command(rotate_keys)
main.add_command(init)
main.add_command(check)
main.add_command(subscribe_command)
main.add_command(send_test_event)

if __name__ == "__main__":
    main()
