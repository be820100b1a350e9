"""Stage 3: message details and conversation ids from the Graph API, within its limits."""
