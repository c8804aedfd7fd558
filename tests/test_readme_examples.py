"""The event examples README.md and the OpenAPI document show are events the API accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app import payloads
from app.api.rrweb.schemas import EXAMPLE_REPLAY, INGEST_EXAMPLES
from app.api.sessions import events
from app.api.sessions.schemas import EVENTS_EXAMPLES, EXAMPLE_EVENTS, START_EXAMPLES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SCREENSHOT_LIMIT = 5 * 1024 * 1024
TYPES = {"click", "key", "scroll", "text", "custom"}


def section(title: str) -> str:
    return README.split(f"\n### {title}\n", 1)[1].split("\n## ", 1)[0]


def readme_interaction_examples() -> list[dict]:
    """The example column of the interaction events table."""
    table = section("Event formats").split("**Web replay events**")[0]
    return [json.loads(cell) for cell in re.findall(r"\| `(\{.*?\})` \|$", table, re.MULTILINE)]


def readme_replay_example() -> list[dict]:
    return json.loads(re.findall(r"```json\n(.*?)```", section("Event formats"), re.DOTALL)[0])


def test_the_readme_shows_every_interaction_type_and_each_parses():
    shown = readme_interaction_examples()
    assert sorted(e["type"] for e in shown) == sorted(TYPES)
    assert [e.type for e in events.parse_batch(shown, None, SCREENSHOT_LIMIT)] == [e["type"] for e in shown]


def test_the_readme_replay_example_parses():
    assert len(payloads.parse_events(json.dumps(readme_replay_example()).encode(), "application/json")) == 3


def test_the_openapi_interaction_examples_parse():
    assert {e["type"] for e in EXAMPLE_EVENTS} == TYPES
    for name, example in EVENTS_EXAMPLES.items():
        if name == "screenshot":  # elided base64: its shape is the point, not its bytes
            continue
        assert events.parse_batch(example["value"], None, SCREENSHOT_LIMIT)


@pytest.mark.parametrize("example", INGEST_EXAMPLES.values(), ids=INGEST_EXAMPLES.keys())
def test_the_openapi_replay_examples_parse(example):
    assert payloads.parse_events(json.dumps(example["value"]).encode(), "application/json")


def test_the_openapi_replay_example_as_ndjson_parses():
    body = "\n".join(json.dumps(event) for event in EXAMPLE_REPLAY).encode()
    assert len(payloads.parse_events(body, "application/x-ndjson")) == len(EXAMPLE_REPLAY)


def test_the_openapi_shows_the_examples(client):
    spec = client.get("/openapi.json").get_json()
    events_body = spec["paths"]["/recordings/{recording_id}/events"]["post"]["requestBody"]
    assert events_body["content"]["application/json"]["examples"]["one-of-each"]["value"] == EXAMPLE_EVENTS
    start_body = spec["paths"]["/recordings"]["post"]["requestBody"]["content"]["application/json"]
    assert start_body["examples"] == START_EXAMPLES
    ingest = spec["paths"]["/rrweb/recordings/{recording_id}/ingest"]["post"]["requestBody"]["content"]
    assert ingest["application/json"]["examples"]["replay"]["value"] == EXAMPLE_REPLAY
