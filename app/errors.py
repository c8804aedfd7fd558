"""One home for meetrec's exceptions.

Domain errors carry the HTTP status the API answers with, so services raise them and the API's single
error handler turns them into the one JSON error shape.
"""

from __future__ import annotations


class MeetrecError(Exception):
    """Base of every meetrec error."""


class ConfigError(MeetrecError):
    """A setting is missing or invalid."""


class StorageError(MeetrecError):
    """Object storage failed (infrastructure, not the caller's fault)."""


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


class ApiError(MeetrecError):
    """An error the API reports to its caller with `status`."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.errors = errors or {}


class NotFound(ApiError):
    status = 404


class Gone(ApiError):
    status = 410


class Conflict(ApiError):
    status = 409


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class Unprocessable(ApiError):
    status = 422
