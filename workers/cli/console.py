"""`inbox-relay console`: the web console alone, and what `run` says about it."""

from __future__ import annotations

import os

import click

from workers import environment
from workers.cli.common import config_option, port_free_or_exit, settings_or_exit
from workers.runtime import logs
from workers.settings import Settings

HOW_TO_TURN_IT_ON = ("inbox-relay: the console is off; set [console] token (or "
                     f"{environment.CONSOLE_TOKEN}) to serve it on [console] listen")


def listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT split (an IPv6 host may stand in brackets)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--listen")
    return host.strip("[]"), int(port)


def console_plan(settings: Settings, webhook_port: int) -> tuple[str, int] | None:
    """Where `run` serves the console, or None (off: `run` prints HOW_TO_TURN_IT_ON). Never the
    webhook's port: Meta's deliveries and an operator's browser stay apart."""
    if not settings.console.enabled:
        return None
    host, port = listen_address(settings.console.listen)
    if port == webhook_port:
        raise click.ClickException(f"[console] listen {settings.console.listen} is the webhook's port; "
                                   "give the console a port of its own")
    return host, port


@click.command("console")
@config_option
@click.option("--listen", metavar="HOST:PORT", help="Where to serve it  [default: [console] listen]")
def console(config, listen) -> None:
    """The web console alone (gunicorn), for a node that only operates.

    It reads the event log and the store the configuration names; log in with [console] token.
    """
    from workers.runtime.private_redis import PrivateRedisUnhealthy, ensure_embedded_redis
    from workers.runtime.supervisor import console_command

    settings = settings_or_exit(config)
    if not settings.console.token:
        raise click.ClickException(HOW_TO_TURN_IT_ON.removeprefix("inbox-relay: "))
    host, port = listen_address(listen or settings.console.listen)
    port_free_or_exit(host, port)
    if settings.embedded:  # daemonized: it outlives this command, as `web` leaves it
        try:
            ensure_embedded_redis(settings)
        except PrivateRedisUnhealthy as exc:
            click.echo(f"inbox-relay: {exc}", err=True)
    click.echo(f"inbox-relay: console on http://{host}:{port}/console/")
    os.environ[environment.CONFIG] = str(settings.source_file.resolve())
    command = console_command(host, port)
    logs.configure()
    os.execvp(command[0], command)
