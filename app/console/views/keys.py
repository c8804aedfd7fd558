"""API keys (admin): the project's keys, minting one (its secret shown once) and revoking one."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from app.console import auth
from app.console.auth import current_key, rt
from app.console.blueprint import bp
from app.errors import Unprocessable
from app.services.access import keys
from app.services.access.scopes import DEFAULT_SCOPES, POSTHOG_SCOPES, SCOPES
from app.services.operations import key_admin

# The form's checkboxes: meetrec's own scopes first, then PostHog's.
SCOPE_CHOICES = (sorted(SCOPES - POSTHOG_SCOPES), sorted(POSTHOG_SCOPES))


@bp.get("/keys", endpoint="keys")
@auth.signed_in("admin")
def keys_list():
    """The project's keys, newest first, with when each was last used, and the form that mints one."""
    return _page()


@bp.post("/keys")
@auth.signed_in("admin")
def create_key():
    """Mint a key from the form; the page that answers shows its secret, this once."""
    form = request.form
    name = form.get("name", "").strip()[:200] or "console"
    scopes, origins = tuple(form.getlist("scope")), tuple(form.get("origins", "").replace(",", " ").split())
    try:
        key, raw = keys.create_key(rt(), current_key().project_id, scopes, name=name, origins=origins)
    except Unprocessable as e:
        flash(f"Not created: {e.message}.", "error")
        return redirect(url_for(".keys"), code=303)
    return _page(created=key, secret=raw)


@bp.get("/keys/<key_id>/revoke")
@auth.signed_in("admin")
def confirm_revoke_key(key_id: str):
    """Ask for confirmation before revoking a key."""
    key = keys.project_key(rt(), current_key().project_id, key_id)
    return render_template("console/confirm_revoke_key.html", key=key, own=key.id == current_key().id)


@bp.post("/keys/<key_id>/revoke")
@auth.signed_in("admin")
def revoke_key(key_id: str):
    """Revoke a key now; revoking the key this session signed in with signs it out."""
    key = key_admin.revoke(rt(), current_key().project_id, key_id)
    if key.id == current_key().id:
        auth.sign_out()
        flash("You revoked the key you were signed in with, so you are signed out.", "info")
        return redirect(url_for(".sign_in"), code=303)
    flash(f"Key {key.name} ({key.prefix}…) revoked: it no longer works.", "info")
    return redirect(url_for(".keys"), code=303)


def _page(**created: Any) -> str:
    """The keys page, with the key just minted and its secret when `created` holds them."""
    return render_template(
        "console/keys.html",
        keys=keys.list_keys(rt(), current_key().project_id),
        scope_choices=SCOPE_CHOICES,
        default_scopes=DEFAULT_SCOPES,
        signed_in_with=current_key().id,
        **created,
    )
