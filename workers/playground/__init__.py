"""The playground: inbox-relay with a Graph API stand-in, to watch hydration and sync without Meta."""
