"""Everything behind the HTTP edge: inbox and relay, ingest, hydration, delivery, state, CLI, runtime."""
