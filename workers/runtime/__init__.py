"""How inbox-relay runs: settings, per-process collaborators, Celery, the private Redis, the supervisor."""
