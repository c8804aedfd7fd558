"""posthog-js ingest: the calls posthog-js makes to record a session, answered by meetrec."""
