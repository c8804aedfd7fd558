"""Frames for events in one pass: the right frame for each moment, from a file or a URL, stored per event.

The video is real (the bundled ffmpeg encodes it): one solid colour a second, so a frame's colour says
which second it shows. Keyframes every half second, so sparse targets make the grabber seek.
"""

from __future__ import annotations

import http.server
import io
import logging
import random
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import imageio_ffmpeg
import pytest
from sqlalchemy import select

from app.errors import MediaError
from app.media import frames as media_frames
from app.models import SessionEvent
from app.services.core import recordings
from app.services.pipeline import frames

COLOURS = [
    ("red", (255, 0, 0)),
    ("lime", (0, 255, 0)),
    ("blue", (0, 0, 255)),
    ("yellow", (255, 255, 0)),
    ("cyan", (0, 255, 255)),
    ("magenta", (255, 0, 255)),
    ("white", (255, 255, 255)),
    ("black", (0, 0, 0)),
    ("gray", (128, 128, 128)),
    ("orange", (255, 165, 0)),
    ("purple", (128, 0, 128)),
    ("0x0080ff", (0, 128, 255)),
]
SECONDS = float(len(COLOURS))


VP8 = ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8")


def colour_video(path: Path, gop: int, codec: tuple[str, ...] = VP8) -> Path:
    """One second of each colour, 320x240 at 30 fps, in WebM (VP8 unless `codec` says otherwise), a
    keyframe every `gop` frames."""
    inputs = [a for name, _ in COLOURS for a in ("-f", "lavfi", "-i", f"color=c={name}:s=320x240:r=30:d=1")]
    graph = "".join(f"[{i}:v]" for i in range(len(COLOURS))) + f"concat=n={len(COLOURS)}:v=1:a=0"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *inputs,
            "-filter_complex", graph, *codec, "-b:v", "1M", "-g", str(gop), "-f", "webm", "-y", str(path),
        ],
        check=True, timeout=240,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_video(tmp_path_factory.mktemp("frames") / "colours.webm", gop=15)


@pytest.fixture(scope="module")
def one_keyframe_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keyframe only at the start, as a browser's MediaRecorder may write: a seek always lands there."""
    return colour_video(tmp_path_factory.mktemp("frames") / "one-keyframe.webm", gop=1000)


def centre_pixel(jpeg: bytes) -> tuple[int, ...]:
    """The RGB of a JPEG's centre pixel, as a browser decodes it (JFIF: full-range YCbCr)."""
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    plane = frame.planes[0]
    offset = frame.height // 2 * plane.line_size + frame.width // 2 * 3
    return tuple(bytes(plane)[offset : offset + 3])


def second_shown(jpeg: bytes) -> int:
    """Which second of the colour video a JPEG shows: the colour nearest its centre pixel."""
    pixel = centre_pixel(jpeg)
    distances = [sum((a - b) ** 2 for a, b in zip(pixel, rgb, strict=True)) for _, rgb in COLOURS]
    assert min(distances) < 40**2, f"centre pixel {tuple(pixel)} is none of the colours"
    return distances.index(min(distances))


def grab(video: Path | str, times: list[float]) -> dict[int, int]:
    """The second shown for each answered index of `times`, checking no index is answered twice."""
    shown: dict[int, int] = {}
    for g in media_frames.grab_jpegs(video, times, SECONDS):
        assert g.jpeg.startswith(b"\xff\xd8\xff")
        second = second_shown(g.jpeg)
        for i in g.indices:
            assert i not in shown
            shown[i] = second
    return shown


@pytest.mark.parametrize(
    ("at", "second"),
    [(0.0, 0), (0.5, 0), (2.98, 3), (3.0, 3), (5.5, 5), (11.5, 11)],  # 2.98: no frame until 3.0
)
def test_a_target_gets_the_first_frame_at_or_after_it(video, at, second):
    assert grab(video, [at]) == {0: second}


def test_many_unsorted_targets_each_get_their_frame(video):
    rng = random.Random(17)
    times = [rng.randrange(12) + rng.uniform(0.05, 0.95) for _ in range(300)]
    assert grab(video, times) == {i: int(t) for i, t in enumerate(times)}


def test_targets_on_one_frame_share_a_grab(video):
    assert [g.indices for g in media_frames.grab_jpegs(video, [4.5, 1.5, 4.5], SECONDS)] == [(1,), (0, 2)]


def test_targets_outside_the_video_are_clamped_to_it(video):
    assert grab(video, [100.0, -3.0, SECONDS]) == {0: 11, 1: 0, 2: 11}


def test_sparse_targets_far_apart_are_found_by_seeking(video):
    assert grab(video, [11.2, 0.3, 6.4]) == {0: 11, 1: 0, 2: 6}


def test_the_frames_after_the_last_target_of_a_keyframe_interval_are_not_decoded(video, caplog):
    # Keyframes every half second (15 frames): a target early in each interval needs its first frames;
    # the dozen after it are read, held back and dropped when the next keyframe comes (after the last
    # target the grabber stops reading).
    times = [0.05 + k * 0.5 for k in range(int(SECONDS * 2))]
    with caplog.at_level(logging.DEBUG, logger=media_frames.__name__):
        assert grab(video, times) == {i: int(t) for i, t in enumerate(times)}
    (line,) = [r.getMessage() for r in caplog.records if "not decoded" in r.getMessage()]
    skipped = int(re.search(r"(\d+) packets not decoded", line).group(1))
    assert skipped >= (len(times) - 1) * 10  # 12 an interval with these keyframes; none before `_Held`


def test_a_target_just_before_a_keyframe_is_decoded_from_the_frames_held_back(video):
    # 2.46 s: frame 74 (2.4667 s), the last before the keyframe at 2.5 s, decoded after the 13 held ones.
    assert grab(video, [2.46, 2.2, 0.46]) == {0: 2, 1: 2, 2: 0}


def test_a_video_with_one_keyframe_still_gives_every_frame(one_keyframe_video):
    times = [9.5, 0.5, 4.5, 10.5, 2.5]
    assert grab(one_keyframe_video, times) == {i: int(t) for i, t in enumerate(times)}


def test_black_and_white_come_out_full_range(video):
    """The decoded video is limited range (black at 16, white at 235): a JPEG holds 0 and 255."""
    grabs = {g.indices: centre_pixel(g.jpeg) for g in media_frames.grab_jpegs(video, [6.5, 7.5], SECONDS)}
    white, black = grabs[(0,)], grabs[(1,)]
    assert min(white) >= 250 and max(black) <= 5, (white, black)


def test_a_video_in_another_pixel_format_gets_its_colours(tmp_path):
    """4:4:4 VP9 (a recording pushed from a browser may be VP9): converted to the JPEG's 4:2:0."""
    vp9 = colour_video(
        tmp_path / "colours-444.webm", gop=15, codec=("-c:v", "libvpx-vp9", "-pix_fmt", "yuv444p")
    )
    times = [0.5, 6.5, 7.5, 11.5]
    assert grab(vp9, times) == {i: int(t) for i, t in enumerate(times)}


def test_no_targets_open_nothing(tmp_path):
    assert list(media_frames.grab_jpegs(tmp_path / "absent.webm", [], SECONDS)) == []


def test_a_file_that_is_not_a_video_raises_media_error(tmp_path):
    bogus = tmp_path / "bogus.webm"
    bogus.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError):
        list(media_frames.grab_jpegs(bogus, [1.0], SECONDS))


# --- a URL: what a finalize passes when the final file is not on local disk -------------------------


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file with byte ranges, as S3 does; records each request's Range header."""

    body = b""
    ranges: list[str] = []

    def do_GET(self) -> None:
        body, status = self.body, 200
        self.ranges.append(self.headers.get("Range", ""))
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start, end = 0, len(body) - 1
        if match:
            start, status = int(match[1]), 206
            end = min(int(match[2]), end) if match[2] else end
        self.send_response(status)
        self.send_header("Content-Type", "video/webm")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        self.end_headers()
        self.wfile.write(body[start : end + 1])

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(video) -> Iterator[tuple[str, list[str]]]:
    """`video` at an http URL on 127.0.0.1 (with a query, as a presigned link has), and the Range
    headers of the requests made."""
    handler = type("Handler", (_RangeHandler,), {"body": video.read_bytes(), "ranges": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_address[1]}/r/colours.webm?X-Amz-Signature=s3cr3t",
            handler.ranges,
        )
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_is_read_over_http(served):
    url, ranges = served
    times = [11.5, 0.5, 6.5, 6.6]
    assert grab(url, times) == {i: int(t) for i, t in enumerate(times)}
    assert ranges  # (the file is small: ffmpeg's read buffer may hold it all, so no second range)


def test_a_url_may_use_no_other_protocol(video):
    with pytest.raises(MediaError) as caught:
        list(media_frames.grab_jpegs(f"file://{video}", [1.0], SECONDS))
    assert "s3cr3t" not in str(caught.value)


def test_an_unreachable_url_raises_media_error_without_its_signature():
    with pytest.raises(MediaError) as caught:
        list(media_frames.grab_jpegs("http://127.0.0.1:9/r.webm?X-Amz-Signature=s3cr3t", [1.0], SECONDS))
    assert "s3cr3t" not in str(caught.value)


# --- the service: one screenshot object and key per event --------------------------------------------


def clicked_session(rt, client, auth, offsets: dict[str, float]) -> tuple[str, float]:  # type: ignore[no-untyped-def]
    """A pushed session with clicks (no screenshots) `offsets` seconds after its start: id and start."""
    session_id = client.post("/recordings", json={"media_source": "push"}, headers=auth).get_json()[
        "session_id"
    ]
    start = recordings.load(rt, session_id).created_at.timestamp()
    events = [
        {"id": i, "type": "click", "timestamp": start + at, "coordinates": {"x": 5, "y": 5}}
        for i, at in offsets.items()
    ]
    assert client.post(f"/recordings/{session_id}/events", json=events, headers=auth).status_code == 201
    return session_id, start


def screenshot_keys(rt, session_id: str) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    with rt.db.read() as s:
        query = select(SessionEvent.event_id, SessionEvent.screenshot_key)
        return dict(s.execute(query.where(SessionEvent.recording_id == session_id)).all())


def test_grab_pending_stores_each_events_frame(rt, client, auth, video, tmp_path):
    offsets = {"late": 9.5, "early": 1.5, "past-the-end": 40.0, "same-frame": 1.5}
    session_id, start = clicked_session(rt, client, auth, offsets)

    assert frames.grab_pending(rt, session_id, video, [[start, 0.0, SECONDS]], SECONDS, tmp_path) == (4, 0)
    shown = {i: second_shown(rt.storage.get_bytes(key)) for i, key in screenshot_keys(rt, session_id).items()}
    assert shown == {"late": 9, "early": 1, "past-the-end": 11, "same-frame": 1}
    assert list(tmp_path.iterdir()) == []  # the JPEGs never touch the disk
    assert frames.grab_pending(rt, session_id, video, [[start, 0.0, SECONDS]], SECONDS, tmp_path) == (0, 0)


def test_grab_pending_skips_the_events_of_an_unreadable_video(rt, client, auth, tmp_path):
    session_id, start = clicked_session(rt, client, auth, {"c1": 1.0, "c2": 2.0})
    bogus = tmp_path / "bogus.webm"
    bogus.write_bytes(b"not a video" * 100)
    assert frames.grab_pending(rt, session_id, bogus, [[start, 0.0, SECONDS]], SECONDS, tmp_path) == (0, 0)
    assert screenshot_keys(rt, session_id) == {"c1": None, "c2": None}
