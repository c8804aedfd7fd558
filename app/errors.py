"""One home for meetrec's exceptions (the `webhooks` package keeps its own: it imports nothing of ours).

Services raise domain errors (`DomainError` and its subclasses): they say what went wrong, never which
HTTP status that is. The API's single error handler maps each class to a status through one table
(`app.api.errors.STATUS`), and the console shows the same message on its error page.
"""

from __future__ import annotations


class MeetrecError(Exception):
    """Base of every meetrec error."""


class ConfigError(MeetrecError):
    """A setting is missing or invalid."""


class StorageError(MeetrecError):
    """Object storage failed (infrastructure, not the caller's fault)."""


class QueueError(MeetrecError):
    """The job queue (Redis) failed (infrastructure, not the caller's fault)."""


class MediaError(MeetrecError):
    """ffmpeg or a media file failed.

    `kind` says what a capture may do about it: "internal" (our side failed: retrying the same
    command will not help until an operator does), "bad_media" (the source or its URL is unusable as
    given), "source_unreachable" (nothing answered: it may come up later) or "source_lost" (it was
    read, then dropped: reconnect into a new segment sequence).
    """

    kind = "internal"


class BadSourceError(MediaError):
    """The media source is unusable: the caller's input, not our infrastructure."""

    kind = "bad_media"


class SourceUnreachable(BadSourceError):
    """The source did not answer: refused, unresolvable, no route, or silent past the timeout."""

    kind = "source_unreachable"


class SourceLost(BadSourceError):
    """The source was being read and then dropped, stalled or ended its stream."""

    kind = "source_lost"


class SealError(MeetrecError, ValueError):
    """A sealed value does not open with this secret key (changed key, or a tampered value)."""


class LeaseLost(MeetrecError):
    """Another capture took the recording's lease while this one was uploading."""


class DomainError(MeetrecError):
    """A request a service refuses: `message` for a human, `errors` field by field; no HTTP status."""

    def __init__(self, message: str, *, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(DomainError):
    """The thing asked for does not exist, or is not the caller's to see."""


class Gone(DomainError):
    """The thing existed and has ended (a meeting that was shut down)."""


class Conflict(DomainError):
    """The thing's current state refuses the request (stopped, under legal hold, disabled)."""


class SegmentConflict(Conflict):
    """A chunk's sequence number already holds different bytes."""


class ChunksClosed(Conflict):
    """A pushed chunk came after the recording's stop was requested: it is not part of the recording."""


class BadPayload(DomainError):
    """A body that cannot be read: malformed JSON, corrupt compression, events missing required fields."""


class UnsupportedEncoding(DomainError):
    """A body in a content type or content encoding the route does not read."""


class StreamConflict(Conflict):
    """A WebSocket stream's frames came from a connection that is behind the stream: it reconnects."""


class Unauthorized(DomainError):
    """No valid credential came with the request."""


class Forbidden(DomainError):
    """The credential lacks the permission the request needs."""


class Unprocessable(DomainError):
    """The request is well-formed but a value in it is refused."""


class RecordingNotAvailable(DomainError):
    """Recording is switched off for this room."""


class NotAcceptable(DomainError):
    """The room cannot start a recording now: one is already running, or it has no media source."""


class PayloadTooLarge(DomainError):
    """The request carries more than a limit allows (events in a batch, a screenshot's bytes)."""


class Unavailable(DomainError):
    """Something the request needs is down or not configured (Redis, the secret key): try again later."""
