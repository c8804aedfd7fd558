"""Media source URLs: which schemes meetrec records, and what ffmpeg may open for each.

Only URLs ffmpeg reads over the network, plus the built-in synthetic meeting. Local files, `concat:`,
`subfile:`, `data:`, pipes, nested protocols (`crypto+http:`, `async:`) and anything that could smuggle an
option or a filter graph are refused. Whether the *host* is safe to reach (SSRF) is checked elsewhere
(`app.services.core.sources`); this module only judges the URL's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from app.errors import BadSourceError

SYNTHETIC = "synthetic://meeting"
MAX_URL_LENGTH = 2048

# Per scheme, the protocols ffmpeg may open while reading it; never `file`, `pipe`, `fd`, `concat`, `data`,
# `subfile`, `tls`, `https` or `httpproxy`. A capture gives ffmpeg the source through `app.media.egress`,
# which turns https/rtmps/rtsps into plain protocols to a loopback gateway or relay that does the TLS and
# the address checks: so ffmpeg never needs TLS, and a read of a raw https/rtmps/rtsps URL (bypassing the
# egress) fails on the whitelist. Each list was checked against ffmpeg 9: dropping an entry makes a real
# read fail with "Protocol '...' not on whitelist". The lists bind nested opens too: an HLS playlist naming
# a `file:` or `httpproxy:` segment fails the same way (tests/test_egress.py, test_media_sources.py).
WHITELISTS: dict[str, str] = {
    # libsrt owns its UDP socket, so nothing below `srt` is opened through ffmpeg.
    "srt": "srt",
    "rtmp": "rtmp,tcp",
    "rtmps": "rtmp,tcp",
    # Captures pin RTSP to TCP interleaved transport (see commands.py), so no `udp`/`rtp` is needed.
    "rtsp": "rtsp,tcp",
    "rtsps": "rtsp,tcp",
    # HTTP may be progressive or HLS/DASH, and `crypto` decrypts AES-128 segments. `tcp` only carries
    # `http` to the gateway (HLS and DASH open http(s) and file URIs only). HLS is a demuxer reading
    # through these, not a protocol: ffmpeg 9 has no `hls` protocol to allow.
    "http": "http,tcp,crypto",
    "https": "http,tcp,crypto",
}

# SRT options that would make the worker listen on a port instead of calling the source.
_SRT_LISTENING_MODES = {"listener", "rendezvous"}


@dataclass(frozen=True)
class MediaSource:
    """A validated source: `kind` is "synthetic" (built in) or "pull" (a URL ffmpeg reads)."""

    url: str
    scheme: str
    kind: Literal["synthetic", "pull"]
    # Input options the egress adds for ffmpeg's way to the source (`-http_proxy`, `-rtmp_tcurl`).
    input_options: tuple[str, ...] = ()


def parse_source(url: str) -> MediaSource:
    """Validate `url` as a media source; raise BadSourceError with a clear reason otherwise."""
    url = (url or "").strip()
    if url == SYNTHETIC:
        return MediaSource(url, "synthetic", "synthetic")
    _check_characters(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in WHITELISTS:
        allowed = ", ".join(f"{s}://" for s in WHITELISTS)
        raise BadSourceError(f"scheme {scheme or '(none)'!r} is not allowed; use {allowed} or {SYNTHETIC}")
    if not url[len(scheme) :].startswith("://") or not parts.hostname:
        raise BadSourceError(f"a {scheme}:// source needs a host, e.g. {scheme}://host/path")
    if scheme == "srt":
        _check_srt_mode(url)
    return MediaSource(url, scheme, "pull")


def protocol_whitelist(source: MediaSource) -> str:
    """The `-protocol_whitelist` for reading a pull `source` (never includes `file`)."""
    if source.kind != "pull":
        raise ValueError(f"{source.url} is not read through a protocol")
    return WHITELISTS[source.scheme]


def _check_characters(url: str) -> None:
    if not url:
        raise BadSourceError("the media source is empty")
    if len(url) > MAX_URL_LENGTH:
        raise BadSourceError(f"the media source URL is longer than {MAX_URL_LENGTH} characters")
    if url.startswith("-"):
        raise BadSourceError("a media source cannot start with '-'")  # ffmpeg would read it as an option
    if "|" in url:
        raise BadSourceError("a media source cannot contain '|'")  # concat:/subfile: style lists
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise BadSourceError("a media source cannot contain whitespace or control characters")


def _check_srt_mode(url: str) -> None:
    # Every `mode` is checked: which duplicate ffmpeg honours is its business, not a way around this check.
    # libsrt's URL parser reads options after the first `?` wherever it is, a `#` included: so does this.
    if "#" in url:
        raise BadSourceError("an srt:// source cannot contain '#'")
    query = url.partition("?")[2]
    modes = {value.lower() for key, value in parse_qsl(query) if key.lower().strip() == "mode"}
    refused = sorted(modes & _SRT_LISTENING_MODES)
    if refused:
        raise BadSourceError(f"srt mode={refused[0]} is not allowed: meetrec calls the source (mode=caller)")
