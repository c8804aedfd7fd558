"""Record web pages: the snippets that send a page's sessions to meetrec (posthog-js, or meetrec's own
recorder), filled in with this meetrec's address and the project's public token; admins rotate it."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from app.console import auth
from app.console.auth import current_key, rt
from app.console.blueprint import bp
from app.services.access import keys


@bp.get("/capture", endpoint="capture")
@auth.signed_in()
def capture_page():
    """The project's public token and the two snippets that record a web page into meetrec."""
    token = keys.public_token(rt(), current_key().project_id)
    return render_template("console/capture.html", token=token, base=rt().config.public_url)


@bp.post("/capture/rotate", endpoint="rotate_token")
@auth.signed_in("admin")
def rotate_token():
    """Replace the project's public token: pages still sending the old one are refused from now on."""
    keys.rotate_public_token(rt(), current_key().project_id)
    flash("A new token replaces the old one: put it in the snippets on your pages.", "info")
    return redirect(url_for(".capture"), code=303)
