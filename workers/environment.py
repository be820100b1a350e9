"""Every environment variable inbox-relay reads, named once: the second channel beside the
configuration file. Users set the first group; inbox-relay sets the second for the processes it
starts, which inherit them."""

# Set by users (secrets kept out of the file, or the file's place).
CONFIG = "INBOX_RELAY_CONFIG"                    # the configuration file, instead of --config
APP_SECRET = "META_APP_SECRET"                   # comma-separated; replaces [meta] app_secrets
VERIFY_TOKEN = "META_VERIFY_TOKEN"               # replaces [meta] verify_token
PAGE_TOKEN_PREFIX = "META_PAGE_TOKEN_"           # + page id: that account's access token
IG_TOKEN_PREFIX = "META_IG_TOKEN_"               # + instagram id: an Instagram Login account's token
ENCRYPTION_KEYS = "INBOX_RELAY_ENCRYPTION_KEYS"  # comma-separated; replaces [security] encryption_keys
BROKER_URL = "INBOX_RELAY_BROKER_URL"            # replaces [queue] broker_url
CONSOLE_TOKEN = "INBOX_RELAY_CONSOLE_TOKEN"      # replaces [console] token

# Set by inbox-relay for its children.
LOG_LEVEL = "INBOX_RELAY_LOG_LEVEL"              # the CLI's --log-level
LOG_FORMAT = "INBOX_RELAY_LOG_FORMAT"            # the CLI's --log-format
SUPERVISED = "INBOX_RELAY_SUPERVISED"            # `run` owns the private Redis; a worker leaves it be
NICE = "INBOX_RELAY_NICE"                        # how much lower the worker `run` starts runs
WAKE_FD = "INBOX_RELAY_WAKE_FD"                  # the pipe web workers wake the master's relay with
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"         # where each process writes its counts for /metrics
