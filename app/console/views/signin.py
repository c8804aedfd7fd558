"""Signing in and out of the console."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.console import auth
from app.console.blueprint import bp


@bp.get("/")
@auth.signed_in()
def index():
    """The console's front page is the recordings list."""
    return redirect(url_for(".recordings"))


@bp.get("/sign-in")
def sign_in():
    """The sign-in form: an API key with recording:read or admin scope."""
    return render_template("console/sign_in.html", next=request.args.get("next", ""))


@bp.post("/sign-in")
def sign_in_submit():
    """Sign in with an API key; a wrong key gets the form again (401)."""
    key = auth.sign_in(request.form.get("api_key", ""))
    if key is None:
        error = "That key is unknown, revoked, or lacks the recording:read scope."
        return render_template("console/sign_in.html", next=request.form.get("next", ""), error=error), 401
    return redirect(auth.safe_next(request.form.get("next")), code=303)


@bp.post("/sign-out")
def sign_out():
    """End the console session."""
    auth.sign_out()
    flash("You are signed out.", "info")
    return redirect(url_for(".sign_in"), code=303)
