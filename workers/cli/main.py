"""The `inbox-relay` command line."""

from __future__ import annotations

import logging
import os
import sys

import click

from workers.cli.common import config_option
from workers.cli.common import settings_or_exit as _settings
from workers.cli.dead_letters import dead_letters
from workers.cli.deliveries import deliveries
from workers.cli.status import status
from workers.errors import RelayError
from workers.runtime.settings import Settings


def _check_handlers(settings: Settings) -> None:
    from workers.delivery.plugins import load_handlers

    try:
        load_handlers(settings)
    except RelayError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """inbox-relay: receive Messenger and Instagram webhooks, hydrate them, hand them to handlers."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--web-workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--concurrency", default=2, show_default=True, help="Celery worker processes.")
def run(config, host, port, web_workers, concurrency) -> None:
    """Web server and worker together (and the private Redis unless a broker is configured).

    Ready when it prints 'inbox-relay ready'; Ctrl-C or SIGTERM stops every process it started.
    """
    from workers.runtime.supervisor import run as supervise

    settings = _settings(config)
    _check_handlers(settings)
    sys.exit(supervise(settings, host=host, port=port, web_workers=web_workers,
                       concurrency=concurrency))


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
def web(config, host, port, workers) -> None:
    """The webhook receiver alone (gunicorn); starts the private Redis if none is configured."""
    from workers.runtime.private_redis import ensure_embedded_redis
    from workers.runtime.supervisor import web_command

    settings = _settings(config)
    if settings.embedded:
        ensure_embedded_redis(settings, daemonize=True)
    _exec(web_command(host, port, workers), settings)


@main.command()
@config_option
@click.option("--concurrency", default=2, show_default=True, help="Celery worker processes.")
def worker(config, concurrency) -> None:
    """The Celery worker alone; starts the private Redis if none is configured."""
    from workers.runtime.supervisor import worker_command

    settings = _settings(config)
    _check_handlers(settings)
    _exec(worker_command(concurrency), settings)


def _exec(command: list[str], settings: Settings) -> None:
    os.environ["INBOX_RELAY_CONFIG"] = str(settings.source_file.resolve())
    os.execvp(command[0], command)


main.add_command(dead_letters)
main.add_command(deliveries)
main.add_command(status)

if __name__ == "__main__":
    main()
