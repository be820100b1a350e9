"""The event log (section 1 of the design): what happened to every event, kept `[events] keep`."""
