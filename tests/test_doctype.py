"""The EBML DocType tells WebM from Matroska (ffprobe names both "matroska,webm").

A recording is delivered as WebM whichever path made it (stream copy or a transcode at finalize); a
Matroska file under a .webm name fails verification.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.errors import MediaError
from app.media import assemble
from app.media.ebml import doc_type


def encode(ffmpeg: str, output: Path, fmt: str, *codec: str, seconds: int = 2) -> Path:
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=15,format=yuv420p",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            str(seconds),
            *codec,
            "-f",
            fmt,
            str(output),
        ],  # fmt: skip
        check=True,
        timeout=60,
    )
    return output


VP8_OPUS = ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus")


def test_webm_and_matroska_have_their_own_doctype(config, tmp_path):
    assert doc_type(encode(config.ffmpeg_path, tmp_path / "a.webm", "webm", *VP8_OPUS)) == "webm"
    assert doc_type(encode(config.ffmpeg_path, tmp_path / "a.mkv", "matroska", *VP8_OPUS)) == "matroska"


def test_a_file_that_is_not_ebml_has_no_doctype(tmp_path):
    (tmp_path / "x.webm").write_bytes(b"RIFF....AVI LIST")
    with pytest.raises(MediaError):
        doc_type(tmp_path / "x.webm")


def test_matroska_under_a_webm_name_fails_verification(config, tmp_path):
    fake = encode(config.ffmpeg_path, tmp_path / "recording.webm", "matroska", *VP8_OPUS)
    with pytest.raises(MediaError, match="matroska, not WebM"):
        assemble.verify(fake, 2.0, expect_audio=True)


def test_a_transcode_at_finalize_delivers_webm(config, tmp_path):
    h264 = ("-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-c:a", "aac")
    parts = [encode(config.ffmpeg_path, tmp_path / f"seg-{i}.mkv", "matroska", *h264) for i in range(2)]
    assert [doc_type(p) for p in parts] == ["matroska", "matroska"]
    output = tmp_path / "recording.webm"
    profile = assemble.TranscodeProfile.from_name(config.transcode_profile)
    result = assemble.assemble_segments(config.ffmpeg_path, parts, output, profile=profile, workdir=tmp_path)
    assert result.transcoded
    assemble.verify(output, result.expected_seconds, expect_audio=result.has_audio)
    assert doc_type(output) == "webm"


def test_a_stream_copy_delivers_webm(config, tmp_path):
    parts = [encode(config.ffmpeg_path, tmp_path / f"seg-{i}.mkv", "matroska", *VP8_OPUS) for i in range(2)]
    output = tmp_path / "recording.webm"
    profile = assemble.TranscodeProfile.from_name(config.transcode_profile)
    result = assemble.assemble_segments(config.ffmpeg_path, parts, output, profile=profile, workdir=tmp_path)
    assert not result.transcoded
    assert doc_type(output) == "webm"
