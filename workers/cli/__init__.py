"""The `inbox-relay` command line, one module per command group."""
