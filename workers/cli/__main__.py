"""`python -m workers.cli`: the same as the `inbox-relay` command."""

from workers.cli.main import main

main()
