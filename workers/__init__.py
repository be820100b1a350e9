"""Celery side of inbox-relay: events, hydration, handlers, the store and the command line."""
