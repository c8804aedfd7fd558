"""The live WebM clock: a MediaRecorder stream's length from its head and tail bytes."""

from __future__ import annotations

import pytest

from app.media.webm_clock import CLUSTER_ID, stream_end, stream_seconds, stream_start


def test_a_whole_stream_measures_its_media(mediarecorder_stream):
    assert stream_seconds(mediarecorder_stream, mediarecorder_stream) == pytest.approx(4.0, abs=0.02)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_a_tail_from_anywhere_before_the_last_cluster_gives_the_same_length(mediarecorder_stream, cut):
    whole = stream_seconds(mediarecorder_stream, mediarecorder_stream)
    last_cluster = mediarecorder_stream.rfind(CLUSTER_ID)
    at = int(last_cluster * cut)
    assert stream_seconds(mediarecorder_stream[:5000], mediarecorder_stream[at:]) == whole


def test_a_tail_without_a_cluster_header_asks_for_more(mediarecorder_stream):
    last_cluster = mediarecorder_stream.rfind(CLUSTER_ID)
    assert stream_end(mediarecorder_stream[last_cluster + 4 :]) is None


def test_cluster_id_bytes_inside_a_frame_are_not_taken_for_a_cluster(mediarecorder_stream):
    # The stream ends with a BlockGroup (Opus: Block, BlockDuration, DiscardPadding in its last 10
    # bytes): four bytes of its frame become a Cluster's ID.
    fake = mediarecorder_stream[:-30] + CLUSTER_ID + mediarecorder_stream[-26:]
    assert fake.rfind(CLUSTER_ID) > mediarecorder_stream.rfind(CLUSTER_ID)
    assert stream_end(fake) == stream_end(mediarecorder_stream) is not None


def test_a_head_cut_before_the_first_frame_is_not_a_start(mediarecorder_stream):
    assert stream_start(mediarecorder_stream[:40]) is None
    assert stream_start(mediarecorder_stream[:5000]) is not None


@pytest.mark.parametrize("data", [b"", b"bytes", b"\x1a\x45\xdf\xa3 not really", bytes(range(256)) * 4])
def test_what_is_not_a_webm_stream_has_no_length(data):
    assert stream_seconds(data, data) is None
