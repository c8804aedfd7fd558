"""The bench's yardstick: a bare Flask app answering the same JSON meetrec answers, with no database,
no auth and no schema. `BENCH_BODY` holds the body to send."""

from __future__ import annotations

import json
import os

from flask import Flask, Response

app = Flask("bare")
BODY = os.environ.get("BENCH_BODY", "{}")
json.loads(BODY)  # fail early on a broken body


@app.get("/<path:anything>")
def answer(anything: str) -> Response:
    return Response(BODY, mimetype="application/json")
