"""gunicorn settings (`--config python:webhook_app.gunicorn_conf`): one relay, in the master.

Without this file every web worker runs its own relay thread, which competes with requests for
its process; here the master, idle between signals, relays for all of them, and workers wake it
through a pipe they inherit.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401  (host names: imported here, never lazily in a thread)
import os
import warnings

from gevent.monkey import MonkeyPatchWarning

from workers.inbox.wakeup import WAKE_FD_ENV, PipeWakeup
from workers.runtime.config import load_settings
from workers.runtime.web_relay import build_relay

# The master imports ssl (the relay's clients) before gevent patches each web worker; the patch
# comes before the worker opens any connection, which is the case gevent's warning is about.
warnings.filterwarnings("ignore", category=MonkeyPatchWarning)


def when_ready(server) -> None:
    """Start the relay before the workers are forked; they find the pipe in the environment."""
    wakeup = PipeWakeup.create()
    server.inbox_relay = build_relay(load_settings(), wakeup=wakeup)
    server.inbox_relay.prepare()
    server.inbox_relay.ensure_running()
    os.environ[WAKE_FD_ENV] = str(wakeup.write_fd)


def post_worker_init(worker) -> None:
    """Serve one request of each kind before real ones: the lazy imports they trigger (codecs,
    werkzeug, prometheus-client) happen now, alone. Under gevent, two greenlets importing the same
    module at once can block the import lock for the whole process."""
    client = worker.wsgi.test_client()
    for path in ("/healthz", "/metrics", "/webhook"):  # GET /webhook: a handshake, refused
        client.get(path)


def on_exit(server) -> None:
    """Let the relay finish its batch."""
    relay = getattr(server, "inbox_relay", None)
    if relay is not None:
        relay.stop()


umask = 0o077                    # the inbox and every file the web side creates: owner only
worker_class = "webhook_app.server.ReadTimeoutGeventWorker"
worker_connections = 1000        # per web worker: slow clients cost a greenlet each
logger_class = "webhook_app.server.EscapingLogger"
accesslog = "-"
# The request line of the handshake carries hub.verify_token: log the path, never the query string.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
