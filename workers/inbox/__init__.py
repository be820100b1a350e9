"""Stage 1 behind the edge: the durable local inbox and the relay that publishes it to the broker."""
