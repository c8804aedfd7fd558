"""The bench's yardstick: a bare Flask app answering the JSON meetrec answers, with no database, no auth,
no schema and no logging or metrics; `asgi` serves it as meetrec's api is served. `BENCH_BODIES` maps
an HTTP method to the body it answers."""

from __future__ import annotations

import json
import os

from a2wsgi import WSGIMiddleware
from flask import Flask, Response, request

app = Flask("bare")
BODIES: dict[str, str] = json.loads(os.environ.get("BENCH_BODIES", "{}"))
STATUS = {"POST": 201}


@app.route("/<path:anything>", methods=["GET", "POST", "DELETE"])
def answer(anything: str) -> Response:
    return Response(
        BODIES.get(request.method, "{}"), status=STATUS.get(request.method, 200), mimetype="application/json"
    )


# Served as meetrec's api is: by uvicorn workers, the WSGI app on a pool of MEETREC_API_THREADS threads.
asgi = WSGIMiddleware(app, workers=int(os.environ.get("MEETREC_API_THREADS", "4")))  # type: ignore[arg-type]
