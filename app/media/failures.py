"""Why an ffmpeg run failed, read from its exit code and the tail of its log.

The answer is an exception from `app.errors` whose class and `kind` tell the caller what to do:

- `MediaError` ("internal"): our side (disk, memory, a missing encoder, an option ffmpeg refuses).
- `BadSourceError` ("bad_media"): the source answered but is unusable as given (not media, no video, a
  protocol meetrec does not allow, a 404). Retrying the same URL will not help.
- `SourceUnreachable` ("source_unreachable"): nothing usable answered (refused, unresolvable, no route,
  silent past the timeout). It may come up later.
- `SourceLost` ("source_lost"): the source was read, then dropped, stalled or failed mid-stream. A
  capture reconnects into a new segment sequence.

Only a clear sign may blame the source: anything unrecognised is "internal".
"""

from __future__ import annotations

import errno
import re
import signal

from app.errors import BadSourceError, MediaError, SourceLost, SourceUnreachable

# Lowercased stderr fragments, checked in this order. A source's own URL options come first (libsrt
# rejects an unknown one as "Option not found", like an option of ours would be); then our own faults,
# since a full disk or a missing encoder can also surface as an I/O error on the input side.
_OURS = "internal"
_BAD = "bad_media"
_NET = "network"  # unreachable before media flowed, lost after
_FRAGMENTS = (
    ("query string option", _BAD, "the source URL has an option ffmpeg does not know"),
    ("no such file or directory", _OURS, "a local file is missing"),  # sources are URLs: a path is ours
    ("no space left on device", _OURS, "the spool disk is full"),
    ("disk quota exceeded", _OURS, "the spool disk quota is exhausted"),
    ("read-only file system", _OURS, "the spool is read-only"),
    ("cannot allocate memory", _OURS, "out of memory"),
    ("too many open files", _OURS, "out of file descriptors"),
    ("unknown encoder", _OURS, "an encoder is missing from this ffmpeg"),
    ("encoder not found", _OURS, "an encoder is missing from this ffmpeg"),
    ("error while opening encoder", _OURS, "the encoder refused its settings"),
    ("error opening output", _OURS, "the output cannot be written"),
    ("unrecognized option", _OURS, "ffmpeg does not know an option meetrec passed"),
    ("option not found", _OURS, "ffmpeg does not know an option meetrec passed"),
    ("not on whitelist", _BAD, "the source needs a protocol meetrec does not allow"),
    ("protocol not found", _BAD, "the source's protocol is not supported"),
    ("connection refused", _NET, "the source refused the connection"),
    ("connection timed out", _NET, "the source did not answer in time"),
    ("operation timed out", _NET, "the source did not answer in time"),
    ("no route to host", _NET, "the source's host is unreachable"),
    ("network is unreachable", _NET, "the source's network is unreachable"),
    ("connection reset by peer", _NET, "the source closed the connection"),
    ("failed to resolve hostname", _NET, "the source's host name does not resolve"),
    ("name or service not known", _NET, "the source's host name does not resolve"),
    ("server returned 5", _NET, "the source's server failed"),
    ("server returned 4", _BAD, "the source's server refused the request"),
    ("method describe failed", _BAD, "the RTSP server refused the stream"),
    ("cannot read rtmp handshake", _BAD, "the source does not speak RTMP"),
    ("matches no streams", _BAD, "the source has no video stream"),
    ("invalid data found when processing input", _BAD, "the source is not media ffmpeg can read"),
    ("could not find codec parameters", _BAD, "the source's streams cannot be decoded"),
    # libsrt reports a failed handshake (no listener, wrong passphrase) and a vanished peer only as EIO.
    ("input/output error", _NET, "the source's connection failed"),
    ("end of file", _NET, "the source ended the connection"),
    ("error opening input", _BAD, "the source cannot be opened"),
)
# What an input that stopped on an error (rather than at a clean end of stream) leaves in the log of an
# ffmpeg that still exits 0: it takes a read error for the end of its input.
_INPUT_ENDED_ON_ERROR = (
    "error during demuxing",
    "failed to reload playlist",
    "connection refused",
    "connection reset by peer",
    "connection timed out",
    "operation timed out",
    "input/output error",
    "server returned",
)
# ffmpeg >= 7 exits with the low byte of its AVERROR, i.e. 256 - errno for system errors.
_ERRNO_KINDS = {
    **dict.fromkeys((errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOMEM, errno.EMFILE), _OURS),
    **dict.fromkeys(
        (errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET,
         errno.EIO),
        _NET,
    ),
}  # fmt: skip
_URL_QUERY = re.compile(r"(\w+://[^\s?]+)\?\S+")
_LOG_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")


def classify_failure(returncode: int, stderr_tail: str, *, started: bool = False) -> MediaError:
    """Turn a failed ffmpeg run (exit code != 0) into the error that says whose fault it is.

    `started` says media had flowed (the run's written time advanced): then every fault of the source
    is `SourceLost`, since the source worked and stopped working; before that a network fault is
    `SourceUnreachable`. Judged from stderr first, then from the exit code. The message names the cause
    and quotes ffmpeg.
    """
    lines = _lines(stderr_tail)
    if returncode < 0:
        return MediaError(f"ffmpeg was killed by {_signal_name(-returncode)}{quote_line(lines[-1:])}")
    for fragment, kind, cause in _FRAGMENTS:
        hits = [line for line in lines if fragment in line.lower()]
        if hits:
            return _error(kind, started, f"{cause}{quote_line(hits[:1])}")
    if returncode == 255 and not lines:  # how ffmpeg ends on SIGTERM/SIGINT
        return MediaError("ffmpeg was interrupted by a signal (exit 255)")
    code = 256 - returncode if 128 < returncode < 255 else 0
    if code in _ERRNO_KINDS:
        return _error(
            _ERRNO_KINDS[code], started, f"ffmpeg failed: {errno.errorcode[code]}{quote_line(lines[-1:])}"
        )
    return MediaError(f"ffmpeg exited with {returncode}{quote_line(lines[-1:])}")


def input_failure(stderr_tail: str) -> SourceLost | None:
    """For an ffmpeg that exited 0 by itself: `SourceLost` when its input ended on an error, else None.

    None means a clean end: the source ended its stream (an HLS playlist's ENDLIST, a file's end) or
    the run's `-t` limit was reached.
    """
    for line in _lines(stderr_tail):
        if any(fragment in line.lower() for fragment in _INPUT_ENDED_ON_ERROR):
            return SourceLost(f"the source dropped{quote_line([line])}")
    return None


def quote_line(lines: list[str]) -> str:
    """`: <first line>`, with URL query strings cut: presigned links carry their signature there."""
    if not lines:
        return ""
    return ": " + _URL_QUERY.sub(r"\1?…", lines[0])[:300]


def _error(kind: str, started: bool, message: str) -> MediaError:
    if kind == _OURS:
        return MediaError(message)
    if started:
        return SourceLost(message)
    return SourceUnreachable(message) if kind == _NET else BadSourceError(message)


def _lines(stderr_tail: str) -> list[str]:
    return [_LOG_PREFIX.sub("", line).strip() for line in stderr_tail.splitlines() if line.strip()]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
