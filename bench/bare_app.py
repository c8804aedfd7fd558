"""The bench's yardstick: a bare Flask app answering the JSON meetrec answers, with no database, no auth,
no schema and no logging or metrics. `BENCH_BODIES` maps an HTTP method to the body it answers."""

from __future__ import annotations

import json
import os

from flask import Flask, Response, request

app = Flask("bare")
BODIES: dict[str, str] = json.loads(os.environ.get("BENCH_BODIES", "{}"))
STATUS = {"POST": 201}


@app.route("/<path:anything>", methods=["GET", "POST", "DELETE"])
def answer(anything: str) -> Response:
    return Response(
        BODIES.get(request.method, "{}"), status=STATUS.get(request.method, 200), mimetype="application/json"
    )
