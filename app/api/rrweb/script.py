"""`GET /rrweb/record.js`: meetrec's first-party recorder, for pages that use neither SDK.

One classic script: the vendored npm `rrweb` bundle (`static/vendor/rrweb/rrweb.min.js`, defines
`window.rrweb`) followed by the client (`static/recorder/meetrec-record.js`, defines `window.rrwebCloud`).
Both files are read once per process (and gzipped once: ~300 KB becomes ~90 KB for a browser that
accepts gzip) and served with a strong ETag of their bytes, cached for a day
(a new meetrec version is picked up within a day, or at once by a revalidating browser), and readable
from any page: `Access-Control-Allow-Origin: *` and `Cross-Origin-Resource-Policy: cross-origin`, so
`<script src crossorigin>` and pages that require CORP load it too.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flask import Request, Response

PARTS = ("vendor/rrweb/rrweb.min.js", "recorder/meetrec-record.js")
CACHE_CONTROL = "public, max-age=86400"
CONTENT_TYPE = "text/javascript"  # Flask adds "; charset=utf-8"


@dataclass(frozen=True)
class Bundle:
    body: bytes
    gzipped: bytes
    etag: str


@cache
def bundle(static_folder: str) -> Bundle:
    """The script's bytes, gzipped and ETag, from the static folder (made on first use, then kept)."""
    body = b"\n;\n".join(Path(static_folder, part).read_bytes() for part in PARTS) + b"\n"
    return Bundle(body, gzip.compress(body, mtime=0), hashlib.sha256(body).hexdigest()[:32])


def response(request: Request, static_folder: str) -> Response:
    """record.js as a cacheable answer: 200 with the script, or 304 when `If-None-Match` is current."""
    found = bundle(static_folder)
    if request.accept_encodings["gzip"] > 0:  # the quality the client gives gzip (0: refused)
        answer = Response(found.gzipped, mimetype=CONTENT_TYPE)
        answer.headers["Content-Encoding"] = "gzip"
        answer.set_etag(found.etag + "-gzip")
    else:
        answer = Response(found.body, mimetype=CONTENT_TYPE)
        answer.set_etag(found.etag)
    answer.headers["Vary"] = "Accept-Encoding"
    answer.headers["Cache-Control"] = CACHE_CONTROL
    answer.headers["Access-Control-Allow-Origin"] = "*"
    answer.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    answer.make_conditional(request)  # in place: 304 without a body when the ETag matches
    return answer
