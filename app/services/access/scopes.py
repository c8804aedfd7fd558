"""The scopes an API key may carry, in a module of their own: the command line lists them without
loading the database layer."""

from __future__ import annotations

# PostHog's scope names are scopes too: a key may be limited to, say, session_recording:read. The
# PostHog routes also accept the meetrec scope each maps to (app.api.posthog.access.SCOPE_MAP).
POSTHOG_SCOPES = frozenset(
    {
        "session_recording:read",
        "session_recording:write",
        "session_recording_playlist:read",
        "session_recording_playlist:write",
        "sharing_configuration:read",
        "sharing_configuration:write",
        "project:read",
        "project:write",
    }
)
SCOPES = (
    frozenset({"recording:read", "recording:write", "room:write", "ingest", "webhook:write", "admin"})
    | POSTHOG_SCOPES
)
DEFAULT_SCOPES = ("recording:read", "recording:write", "room:write", "webhook:write", "ingest")
