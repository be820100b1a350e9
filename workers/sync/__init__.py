"""Stage 5: bringing past conversations in (sync), and sweeping for messages no webhook brought."""
