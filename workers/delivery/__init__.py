"""Stage 4: handing settled events to handler plugins, each isolated, retried, dead-lettered."""
