"""The built-in handler plugins: jsonl, log, http and python."""
