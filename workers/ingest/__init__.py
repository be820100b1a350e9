"""Stage 2: webhook envelopes into typed events, routed to hydration or straight to handlers."""
