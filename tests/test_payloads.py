"""rrweb batch bodies: content encodings, JSON and NDJSON shapes, event checks, stored lines (pure unit)."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import brotli
import pytest
import zstandard

from app import payloads
from app.errors import BadPayload, PayloadTooLarge, UnsupportedEncoding
from app.payloads import MAX_DEPTH, encode_lines, encoding_of, inflate, parse_events

COMPRESS = {
    "gzip": gzip.compress,
    "br": lambda data: brotli.compress(data, quality=5),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}
CODECS = sorted(COMPRESS)
EVENTS = [
    {"type": 4, "data": {"href": "https://example.com/", "width": 1280, "height": 720},
     "timestamp": 1700000000000},
    {"type": 2, "data": {"node": {"type": 0, "childNodes": [], "id": 1}, "initialOffset": {"top": 0}},
     "timestamp": 1700000000001},
    {"type": 3, "data": {"source": 1, "positions": [{"x": 10, "y": 20, "id": 5, "timeOffset": -40}]},
     "timestamp": 1700000000050},
    {"type": 3, "data": {"source": 5, "text": "héllo \u2028 wörld 🙂", "isChecked": False, "id": 9},
     "timestamp": 1700000000100},
]  # fmt: skip


def _array(events: list) -> bytes:
    return json.dumps(events).encode()


def _wrapped(events: list) -> bytes:
    return json.dumps({"events": events, "recordingId": "r-1"}).encode()


def _ndjson(events: list) -> bytes:
    """NDJSON as a sloppy client sends it: CRLF, blank lines, a blank last line."""
    return b"\r\n\r\n".join(json.dumps(e, ensure_ascii=False).encode() for e in events) + b"\r\n  \n"


SHAPES = {
    "array": (_array, "application/json"),
    "wrapped": (_wrapped, "application/json"),
    "ndjson": (_ndjson, "application/x-ndjson"),
}


def _reason(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.message


# encoding_of


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, "identity"), ("", "identity"), ("identity", "identity"), ("GZIP", "gzip"), (" x-gzip ", "gzip"),
     ("br", "br"), ("Zstd", "zstd")],
)  # fmt: skip
def test_encoding_of_names_the_one_encoding(header, expected):
    assert encoding_of(header) == expected


@pytest.mark.parametrize("header", ["deflate", "gzip, br", "compress", "*", "gzip;q=1", "brotli", "br,zstd"])
def test_encoding_of_refuses_anything_else(header):
    with pytest.raises(UnsupportedEncoding):
        encoding_of(header)


# inflate


@pytest.mark.parametrize("encoding", CODECS)
def test_inflate_round_trips(encoding):
    data = _array(EVENTS) * 50
    assert inflate(COMPRESS[encoding](data), encoding, len(data)) == data


def test_identity_is_the_body_itself():
    assert inflate(b"[1]", "identity", 3) == b"[1]"


def test_identity_over_the_limit_is_too_large():
    with pytest.raises(PayloadTooLarge):
        inflate(b"[1]", "identity", 2)


@pytest.mark.parametrize("encoding", CODECS)
def test_inflate_allows_exactly_the_limit(encoding):
    assert inflate(COMPRESS[encoding](b"a" * 1000), encoding, 1000) == b"a" * 1000


@pytest.mark.parametrize("encoding", CODECS)
def test_inflate_refuses_one_byte_past_the_limit(encoding):
    with pytest.raises(PayloadTooLarge):
        inflate(COMPRESS[encoding](b"a" * 1001), encoding, 1000)


@pytest.mark.parametrize("encoding", CODECS)
def test_bomb_stops_at_the_limit_without_inflating(encoding):
    bomb = COMPRESS[encoding](bytes(50 << 20))
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            inflate(bomb, encoding, 1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


@pytest.mark.parametrize("encoding", CODECS)
def test_empty_content_inflates_to_nothing(encoding):
    assert inflate(COMPRESS[encoding](b""), encoding, 10) == b""


def test_concatenated_gzip_members_are_all_read():
    assert inflate(gzip.compress(b"[1,") + gzip.compress(b"2]"), "gzip", 100) == b"[1,2]"


def test_concatenated_zstd_frames_are_all_read():
    cctx = zstandard.ZstdCompressor()
    assert inflate(cctx.compress(b"[1,") + cctx.compress(b"2]"), "zstd", 100) == b"[1,2]"


def test_gzip_zero_padding_is_allowed():
    assert inflate(gzip.compress(b"[1]") + bytes(8), "gzip", 100) == b"[1]"


def test_concatenated_members_count_against_the_limit_together():
    with pytest.raises(PayloadTooLarge):
        inflate(gzip.compress(b"a" * 60) + gzip.compress(b"b" * 60), "gzip", 100)


@pytest.mark.parametrize("encoding", CODECS)
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda c: c[: len(c) // 2], id="truncated"),
        pytest.param(lambda c: c[:-1], id="last-byte-missing"),
        pytest.param(lambda c: c + b"garbage!", id="trailing-garbage"),
        pytest.param(lambda c: b"not compressed at all, just text", id="not-compressed"),
        pytest.param(lambda c: b"", id="empty"),
        pytest.param(lambda c: c[:12] + bytes(b ^ 0x5A for b in c[12:40]) + c[40:], id="corrupt"),
    ],
)
def test_damaged_data_is_a_bad_payload(encoding, damage):
    body = damage(COMPRESS[encoding](_array(EVENTS) * 20))
    with pytest.raises(BadPayload) as excinfo:
        inflate(body, encoding, 1 << 20)
    assert _reason(excinfo) == f"the body is not valid {encoding} data"


def test_inflate_refuses_an_unknown_encoding():
    with pytest.raises(UnsupportedEncoding):
        inflate(b"x", "deflate", 100)


# parse_events: shapes and content types


@pytest.mark.parametrize("encoding", CODECS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_compressed_batches_parse_in_every_shape(encoding, shape):
    build, content_type = SHAPES[shape]
    raw = inflate(COMPRESS[encoding](build(EVENTS)), encoding, 1 << 20)
    assert parse_events(raw, content_type) == EVENTS


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/octet-stream"])
def test_untyped_bodies_are_sniffed(shape, content_type):
    build, _ = SHAPES[shape]
    assert parse_events(build(EVENTS), content_type) == EVENTS


@pytest.mark.parametrize(
    ("content_type", "shape"),
    [("application/json; charset=utf-8", "array"), ("Application/JSON", "wrapped"),
     ("application/ndjson", "ndjson"), ("APPLICATION/X-NDJSON ; q=1", "ndjson")],
)  # fmt: skip
def test_content_type_parameters_and_case_are_ignored(content_type, shape):
    assert parse_events(SHAPES[shape][0](EVENTS), content_type) == EVENTS


def test_a_lone_event_object_is_a_batch_of_one():
    assert parse_events(json.dumps(EVENTS[0]).encode(), "application/json") == EVENTS[:1]


def test_ndjson_lines_are_events_not_batches():
    with pytest.raises(BadPayload) as excinfo:
        parse_events(_array(EVENTS[:2]), "application/x-ndjson")
    assert excinfo.value.errors == {"events": {"0": ["an event must be a JSON object"]}}


def test_a_json_body_of_several_documents_is_malformed():
    with pytest.raises(BadPayload, match="the body is not valid JSON: Extra data at line 3 column 1"):
        parse_events(_ndjson(EVENTS[:2]), "application/json")


@pytest.mark.parametrize("content_type", ["text/html", "application/xml", "multipart/form-data; boundary=x"])
def test_other_content_types_are_unsupported(content_type):
    with pytest.raises(UnsupportedEncoding):
        parse_events(_array(EVENTS), content_type)


# parse_events: malformed bodies


@pytest.mark.parametrize("raw", [b"\xff\xfe[]", _array(EVENTS)[:-9] + b"\xc3(]", "[é]".encode("latin-1")])
def test_a_body_that_is_not_utf8_is_a_bad_payload(raw):
    with pytest.raises(BadPayload, match="not valid UTF-8"):
        parse_events(raw, None)


def test_malformed_json_is_a_bad_payload():
    with pytest.raises(BadPayload, match="the body is not valid JSON"):
        parse_events(b'[{"type": 3,', "application/json")


def test_malformed_ndjson_names_the_line():
    body = b'{"type": 3, "timestamp": 1}\n\n{"type": 3, "timestamp": 2}\r\n{"type": 3, "timestamp": }\n'
    with pytest.raises(BadPayload, match=r"^line 4 is not valid JSON: Expecting value at column 26$"):
        parse_events(body, "application/x-ndjson")


def test_sniffed_ndjson_with_a_bad_line_names_it():
    with pytest.raises(BadPayload, match=r"^line 2 is not valid JSON"):
        parse_events(b'{"type": 3, "timestamp": 1}\n{"type": 3,\n', None)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"9" * 5000])
@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson", None])
def test_numbers_json_does_not_have_are_refused(literal, content_type):
    body = b'{"type": 3, "timestamp": 1, "data": {"x": ' + literal + b"}}"
    with pytest.raises(BadPayload, match="not valid JSON"):
        parse_events(body, content_type)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson", None])
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000])
def test_deep_nesting_is_a_bad_payload_not_a_recursion_error(content_type, body):
    with pytest.raises(BadPayload, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_events(body, content_type)


def _nested_event(depth: int) -> dict:
    """An event that nests `depth` levels, counting the event object itself as 1."""
    data: dict = {}
    for _ in range(depth - 2):
        data = {"n": data}
    return {"type": 2, "timestamp": 1, "data": data}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_nesting_up_to_max_depth_is_accepted(shape):
    build, content_type = SHAPES[shape]
    event = _nested_event(MAX_DEPTH)
    assert parse_events(build([EVENTS[0], event]), content_type) == [EVENTS[0], event]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_nesting_past_max_depth_names_the_event(shape):
    build, content_type = SHAPES[shape]
    with pytest.raises(BadPayload, match="^1 event is invalid$") as excinfo:
        parse_events(build([EVENTS[0], _nested_event(MAX_DEPTH + 1)]), content_type)
    assert excinfo.value.errors == {"events": {"1": [f"the event nests deeper than {MAX_DEPTH} levels"]}}


@pytest.mark.parametrize("body", [b"", b"   ", b"\r\n\n \n"])
@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson", None])
def test_a_blank_body_is_an_empty_batch(body, content_type):
    with pytest.raises(BadPayload, match="^no events in the batch$"):
        parse_events(body, content_type)


@pytest.mark.parametrize("body", [b"[]", b'{"events": []}', b"[]\n"])
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_a_batch_without_events_is_a_bad_payload(body, content_type):
    with pytest.raises(BadPayload, match="^no events in the batch$"):
        parse_events(body, content_type)


@pytest.mark.parametrize("body", [b"3", b'"events"', b"null", b"true"])
def test_a_body_that_is_no_batch_is_a_bad_payload(body):
    with pytest.raises(BadPayload, match="JSON array of events"):
        parse_events(body, "application/json")


def test_events_must_be_an_array():
    with pytest.raises(BadPayload, match='"events" must be an array'):
        parse_events(b'{"events": {"type": 3, "timestamp": 1}}', "application/json")


@pytest.mark.parametrize("shape", ["array", "ndjson"])
def test_more_than_max_events_is_too_large(shape):
    build, content_type = SHAPES[shape]
    with pytest.raises(PayloadTooLarge):
        parse_events(build([{"type": 3, "timestamp": 1}] * (payloads.MAX_EVENTS + 1)), content_type)


def test_max_events_is_accepted(monkeypatch):
    monkeypatch.setattr(payloads, "MAX_EVENTS", 3)
    assert len(parse_events(_array(EVENTS[:3]), None)) == 3
    with pytest.raises(PayloadTooLarge):
        parse_events(_array(EVENTS), None)


# parse_events: event fields


@pytest.mark.parametrize(
    ("event", "problems"),
    [
        ({"timestamp": 1}, ["type is required"]),
        ({"type": "3", "timestamp": 1}, ["type must be an integer"]),
        ({"type": 3.0, "timestamp": 1}, ["type must be an integer"]),
        ({"type": True, "timestamp": 1}, ["type must be an integer"]),
        ({"type": -1, "timestamp": 1}, ["type must be from 0 to 255"]),
        ({"type": 256, "timestamp": 1}, ["type must be from 0 to 255"]),
        ({"type": 3}, ["timestamp is required"]),
        ({"type": 3, "timestamp": "1700000000000"}, ["timestamp must be a number"]),
        ({"type": 3, "timestamp": False}, ["timestamp must be a number"]),
        ({"type": 3, "timestamp": -1}, [f"timestamp must be from 0 to {payloads.MAX_TIMESTAMP}"]),
        ({"type": 3, "timestamp": -0.5}, [f"timestamp must be from 0 to {payloads.MAX_TIMESTAMP}"]),
        ({"type": 3, "timestamp": 2**64}, [f"timestamp must be from 0 to {payloads.MAX_TIMESTAMP}"]),
        ({"type": 3, "timestamp": 1, "data": None}, ["data must be an object"]),
        ({"type": 3, "timestamp": 1, "data": [1]}, ["data must be an object"]),
        ({"type": None, "timestamp": None, "data": "x"},
         ["type is required", "timestamp is required", "data must be an object"]),
        ([{"type": 3, "timestamp": 1}], ["an event must be a JSON object"]),
        ("event", ["an event must be a JSON object"]),
    ],
)  # fmt: skip
def test_a_bad_event_is_described(event, problems):
    with pytest.raises(BadPayload, match="^1 event is invalid$") as excinfo:
        parse_events(_array([EVENTS[0], event, EVENTS[1]]), "application/json")
    assert excinfo.value.errors == {"events": {"1": problems}}


def test_at_most_ten_bad_events_are_described_and_all_are_counted():
    events = [EVENTS[0]] + [{"type": "x", "timestamp": i} for i in range(12)]
    with pytest.raises(BadPayload, match="^12 events are invalid$") as excinfo:
        parse_events(_ndjson(events), "application/x-ndjson")
    assert excinfo.value.errors == {"events": {str(i): ["type must be an integer"] for i in range(1, 11)}}


def test_server_assigned_keys_are_removed_and_others_kept():
    event = {"type": 3, "timestamp": 5, "sequenceId": 9, "recordingId": "r", "delay": 2, "windowId": "w"}
    assert parse_events(_array([event]), None) == [{"type": 3, "timestamp": 5, "delay": 2, "windowId": "w"}]


@pytest.mark.parametrize(("timestamp", "expected"), [(1700000000000.9, 1700000000000), (0.2, 0), (7, 7)])
def test_timestamps_become_whole_milliseconds(timestamp, expected):
    [event] = parse_events(_array([{"type": 3, "timestamp": timestamp}]), None)
    assert event["timestamp"] == expected and type(event["timestamp"]) is int


def test_absent_data_stays_absent():
    assert parse_events(b'{"type": 0, "timestamp": 1}', None) == [{"type": 0, "timestamp": 1}]


# encode_lines


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_encoded_lines_round_trip(shape):
    build, content_type = SHAPES[shape]
    events = parse_events(build(EVENTS), content_type)
    block = encode_lines(events)
    lines = block.split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(EVENTS) + 1
    assert all(line.startswith(b"{") and line.endswith(b"}") for line in lines[:-1])
    assert [json.loads(line) for line in lines[:-1]] == EVENTS
    assert parse_events(block, "application/x-ndjson") == EVENTS


def test_encoded_lines_are_compact_utf8():
    block = encode_lines([{"type": 3, "timestamp": 1, "data": {"text": "é \u2028 🙂", "xs": [1, 2.5]}}])
    assert block == '{"type":3,"timestamp":1,"data":{"text":"é \u2028 🙂","xs":[1,2.5]}}\n'.encode()


def test_a_lone_surrogate_is_escaped_not_an_error():
    block = encode_lines([{"type": 3, "timestamp": 1, "data": {"text": "half \ud83d"}}, EVENTS[0]])
    first, second, _ = block.split(b"\n")
    assert first == b'{"type":3,"timestamp":1,"data":{"text":"half \\ud83d"}}'
    assert json.loads(second) == EVENTS[0]
    assert json.loads(first)["data"]["text"] == "half \ud83d"


def test_no_events_encode_to_nothing():
    assert encode_lines([]) == b""
