"""The PostHog session-recordings and playlists dialect under /api/projects."""
