"""JPEG frames of one video at many moments, in one pass over it.

One PyAV decode loop walks the video in time order. For the sorted targets it decodes forward and takes
the first frame at or after each one (what `ffmpeg -ss t -i video -frames:v 1` writes). When the next
target lies more than `SEEK_GOPS` keyframe intervals ahead it seeks to the keyframe before it instead,
so a few grabs on a long video decode a few keyframe intervals and many grabs never cost more than one
decode pass; the frames between a keyframe interval's last target and the next keyframe are not decoded
at all (`_Held`, for WebM's VP8 and VP9). JPEG encoding runs on a small thread pool beside the decoder
(libav releases the GIL), a bounded number of frames in flight. Pure media work: no storage, no database.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import av
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from app.errors import MediaError
from app.media.commands import KEYFRAME_SECONDS

log = logging.getLogger(__name__)

END_MARGIN = 0.1  # seconds: a target is clamped to [0, duration - END_MARGIN], as the poster is
SEEK_GOPS = 2.0  # seek when the next target is further ahead than this many keyframe intervals
DEFAULT_GOP = float(KEYFRAME_SECONDS)  # the interval assumed until the stream shows its own
FRAME_SLACK = 0.0005  # a frame stamped this little before a target (ms rounding) still answers it
JPEG_QSCALE = 3  # the poster's `-q:v 3`
ENCODE_THREADS = 2
IN_FLIGHT = 8  # decoded frames waiting for their JPEG: bounds memory (a 720p frame is 1.4 MB)
TIMEOUTS = (30.0, 30.0)  # seconds to open, then to wait for each read (a presigned URL may stall)
FILE_PROTOCOLS = "file"
URL_PROTOCOLS = "http,https,tcp,tls,crypto"


@dataclass(frozen=True)
class Grab:
    """One frame: the positions in the caller's `times` it answers, its timestamp (seconds), a JPEG."""

    indices: tuple[int, ...]
    at: float
    jpeg: bytes


def clamp(at: float, duration: float) -> float:
    """`at` within [0, duration - END_MARGIN]: a moment past the end gets the last frames."""
    return max(0.0, min(at, duration - END_MARGIN))


def grab_jpegs(video: Path | str, times: Sequence[float], duration: float) -> Generator[Grab, None, None]:
    """JPEGs of `video` (a local path, or an http(s) URL such as a presigned GET) at `times` seconds,
    each clamped to [0, duration - END_MARGIN], in time order; targets on the same frame share a Grab.

    A target the video has no frame for (it ends early, it cannot be decoded there) gets no Grab: the
    caller sees which indices never came. MediaError when the video cannot be opened or read; the
    Grabs yielded before it stand."""
    targets = sorted((clamp(t, duration), i) for i, t in enumerate(times))
    if not targets:
        return
    with _open(video) as container, ThreadPoolExecutor(ENCODE_THREADS) as pool:
        if not container.streams.video:
            raise MediaError(f"{_name(video)} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads too: VP8 decodes ~30% faster on 2 cores
        waiting: deque[tuple[tuple[int, ...], float, Future[bytes]]] = deque()
        failure: MediaError | None = None
        held = _Held(stream)
        try:
            for indices, frame in _frames_at(container, stream, targets, held):
                waiting.append((indices, frame.time or 0.0, pool.submit(_jpeg, frame)))
                while len(waiting) > IN_FLIGHT:
                    yield _done(*waiting.popleft())
        except (av.FFmpegError, OSError) as e:
            failure = MediaError(f"cannot read frames of {_name(video)}: {e}")
            failure.__cause__ = e
        while waiting:  # the frames decoded before a failure still count
            yield _done(*waiting.popleft())
        log.debug("%s: %d targets; %d packets not decoded", _name(video), len(targets), held.dropped)
        if failure is not None:
            raise failure


def _open(video: Path | str) -> av.container.InputContainer:
    """Open `video` allowing only the protocols it needs: `file` for a path (a `file:` prefix, so a
    colon or a leading dash in the name means nothing), http(s) and their transports for a URL."""
    if isinstance(video, str) and "://" in video:
        url, protocols = video, URL_PROTOCOLS
    else:
        url, protocols = f"file:{video}", FILE_PROTOCOLS
    try:
        return av.open(url, options={"protocol_whitelist": protocols}, timeout=TIMEOUTS)
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"cannot open {_name(video)}: {getattr(e, 'strerror', None) or e}") from e


def _name(video: Path | str) -> str:
    """How logs and errors name `video`: never a URL's query (a presigned link's signature)."""
    if isinstance(video, Path):
        return video.name
    parts = urlsplit(video)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else video


def _frames_at(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    targets: list[tuple[float, int]],
    held: _Held,
) -> Iterator[tuple[tuple[int, ...], VideoFrame]]:
    """For sorted (seconds, index) targets: each decoded frame that is the first at or after some of
    them, with their indices. Targets past the last frame get the last frame. `held` holds back the
    packets no target needs."""
    time_base = stream.time_base or Fraction(1, 1000)  # a demuxed stream always has one
    base = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
    pending = deque((base + t, i) for t, i in targets)
    walk = _Walk(base, time_base)
    while pending:
        if walk.far_from(pending[0][0]):
            if walk.seek(container, stream, pending[0][0]):
                held.reset()  # a source that cannot seek goes on from where it is: keep what is held
        ended = True
        for packet in container.demux(stream):
            walk.saw_packet(packet)
            for frame in (f for p in held.release(packet, pending) for f in _decode(stream, p)):
                if frame.time is None:
                    continue
                walk.saw_frame(frame)
                hits = []
                while pending and pending[0][0] <= frame.time + FRAME_SLACK:
                    hits.append(pending.popleft()[1])
                if hits:
                    yield tuple(hits), frame
            if not pending:
                return
            if walk.far_from(pending[0][0]):
                ended = False
                break
        if ended:
            if walk.last is not None:
                yield tuple(i for _, i in pending), walk.last
            return


class _Held:
    """Packets read but not decoded yet: those that cannot show the next target (they come before it)
    are held back, and dropped unread when a keyframe comes before the target does (it decodes without
    them), so the frames after a keyframe interval's last target are never decoded. Held packets are
    decoded, in order, when a packet at or past the target comes first, and at the end of the stream
    (its last frame answers targets past it).

    The next target is the first one after the packets already given to the decoder: a frame-threaded
    decoder answers a few packets late, and the packets read meanwhile are not needed for a target that
    is answered already. Only for codecs whose packets come in presentation order (VP8, VP9: WebM's
    video); for others every packet is decoded as it comes."""

    IN_ORDER = frozenset({"vp8", "vp9"})

    def __init__(self, stream: av.VideoStream):
        self.skips = stream.codec_context.name in self.IN_ORDER
        self.packets: list[av.Packet] = []
        self.decoded_to = float("-inf")  # the time of the last packet given to the decoder
        self.dropped = 0  # packets never decoded

    def release(self, packet: av.Packet, pending: deque[tuple[float, int]]) -> list[av.Packet]:
        """The packets to decode now that `packet` was read, `pending` the targets not answered yet
        (sorted, seconds first)."""
        if not self.skips:
            return [packet]
        if packet.pts is None or packet.time_base is None:  # the end of the stream's flush: decode all
            released, self.packets = [*self.packets, packet], []
            return released
        at = float(packet.pts * packet.time_base)
        if packet.is_keyframe:
            self._drop()
            self.decoded_to = at
            return [packet]
        target = next((t for t, _ in pending if t > self.decoded_to + FRAME_SLACK), None)
        if target is None or at + FRAME_SLACK < target:
            self.packets.append(packet)
            return []
        released, self.packets = [*self.packets, packet], []
        self.decoded_to = at
        return released

    def reset(self) -> None:
        """After a seek: nothing held, nothing in the decoder (a seek flushes it)."""
        self._drop()
        self.decoded_to = float("-inf")

    def _drop(self) -> None:
        self.dropped += len(self.packets)
        self.packets = []


class _Walk:
    """Where the decode loop is, and how far apart the stream's keyframes are (learned as it goes)."""

    def __init__(self, base: float, time_base: Fraction):
        self.position: float | None = None  # the time of the last frame decoded
        self.last: VideoFrame | None = None
        self.gop = DEFAULT_GOP
        self._base, self._time_base = base, time_base
        self._measured = False
        self._keyframe: float | None = None
        self._seeked_to: float | None = None  # the target of a seek whose first frame is still to come
        self._from: float | None = None  # the position that seek left
        self._seekable = True

    def far_from(self, target: float) -> bool:
        """Whether seeking to `target` beats decoding up to it; never before a seek's first frame came
        (a frame-threaded decoder holds a few packets back)."""
        here = self.position if self.position is not None else self._base
        return self._seekable and self._seeked_to is None and target - here > SEEK_GOPS * self.gop

    def seek(self, container: av.container.InputContainer, stream: av.VideoStream, target: float) -> bool:
        """Seek to the keyframe at or before `target` seconds; False when the source cannot seek."""
        try:
            container.seek(int(target / self._time_base), stream=stream, backward=True)
        except av.FFmpegError:  # no index, a source that cannot seek: decode forward from here
            self._seekable = False
            return False
        self._seeked_to, self._from = target, self.position
        self.last = None  # a frame from before the seek is not what the video shows at the target
        self._keyframe = None
        return True

    def saw_packet(self, packet: av.Packet) -> None:
        if not packet.is_keyframe or packet.pts is None or packet.time_base is None:
            return
        at = float(packet.pts * packet.time_base)
        if self._keyframe is not None and at > self._keyframe:
            interval = at - self._keyframe
            self.gop = max(self.gop, interval) if self._measured else interval
            self._measured = True
        self._keyframe = at

    def saw_frame(self, frame: VideoFrame) -> None:
        at = float(frame.time or 0.0)
        if self._seeked_to is not None:
            # The seek landed at or before where the loop already was: the keyframes are further apart
            # than assumed. Widen the interval so the next targets are decoded to, not sought.
            if self._from is not None and at <= self._from:
                self.gop = max(self.gop, self._seeked_to - at)
                self._measured = True
            self._seeked_to = None
        self.position, self.last = at, frame


def _decode(stream: av.VideoStream, packet: av.Packet) -> list[VideoFrame]:
    """The frames `packet` completes; none for a corrupt packet (skipped, as ffmpeg skips it)."""
    try:
        return stream.decode(packet)
    except av.InvalidDataError:
        return []


_local = threading.local()


def _jpeg(frame: VideoFrame) -> bytes:
    """`frame` as a full-range JPEG, with this thread's encoder (made again when the size changes)."""
    size = (frame.width, frame.height)
    if getattr(_local, "size", None) != size:
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width, encoder.height = size
        encoder.pix_fmt = "yuvj420p"
        encoder.time_base = Fraction(1, 1000)
        # PyAV cannot set a frame's quality, which `-q:v` sets: pinning the rate control's quantiser
        # range gives the same result.
        encoder.qmin = encoder.qmax = JPEG_QSCALE
        _local.size, _local.encoder, _local.count = size, encoder, 0
        _local.reformatter = VideoReformatter()  # keeps its swscale context between frames
    picture = _local.reformatter.reformat(frame, format="yuvj420p")
    picture.pts, picture.time_base = _local.count, _local.encoder.time_base
    _local.count += 1
    packets = _local.encoder.encode(picture)
    if not packets:
        raise MediaError("the JPEG encoder wrote nothing")
    return bytes(packets[0])


def _done(indices: tuple[int, ...], at: float, job: Future[bytes]) -> Grab:
    try:
        jpeg = job.result()
    except av.FFmpegError as e:
        raise MediaError(f"cannot encode a JPEG: {e}") from e
    return Grab(indices, at, jpeg)
