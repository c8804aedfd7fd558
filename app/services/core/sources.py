"""Media sources a caller names: syntax and scheme checked by app.media, host checked against SSRF."""

from __future__ import annotations

from app.config import Config
from app.errors import BadSourceError, Unprocessable
from app.media.sources import parse_source
from webhooks.urlsafety import UnsafeURL, check_url

# The meeting app uploads its own media (MediaRecorder chunks) instead of meetrec pulling a URL.
PUSH = "push"


def is_push(url: str) -> bool:
    return url in (PUSH, "push://")


def checked_source(config: Config, url: str) -> str:
    """Return `url` when meetrec may record it; 422 with a clear message otherwise."""
    if is_push(url):
        return PUSH
    try:
        source = parse_source(url)
        if source.kind != "synthetic":
            check_url(url, config.url_allowlist)
    except (BadSourceError, UnsafeURL) as e:
        raise Unprocessable(f"media_source refused: {e}", errors={"media_source": [str(e)]}) from e
    return source.url
