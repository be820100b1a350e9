"""Connecting to Meta: a configuration to start from, token and subscription checks, test deliveries."""
