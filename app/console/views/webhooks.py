"""Webhooks: the project's endpoints, each one's delivery attempts, and redelivery."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.console import auth, queries
from app.console.auth import current_key, rt
from app.console.blueprint import bp
from app.errors import DomainError
from app.services.outbox import deliveries, endpoints


@bp.get("/webhooks", endpoint="webhooks")
@auth.signed_in("webhook:write")
def webhooks_list():
    """The endpoints this key manages (an admin key: the project's) with their last answer and whether
    they are disabled."""
    return render_template("console/webhooks.html", endpoints=endpoints.list_for_key(rt(), current_key()))


@bp.get("/webhooks/<webhook_id>")
@auth.signed_in("webhook:write")
def webhook(webhook_id: str):
    """One endpoint and its delivery attempts, newest first, 50 a page."""
    key, page = current_key(), queries.page_number(request.args.get("page", "1"))
    endpoint = endpoints.get(rt(), key, webhook_id)
    attempts = deliveries.list_for_endpoint(rt(), key, webhook_id, page)
    return render_template(
        "console/webhook.html",
        endpoint=endpoint,
        rows=[(d, endpoint.id, endpoint.url) for d in attempts],
        page=page,
        more=len(attempts) == deliveries.PAGE_SIZE,
    )


@bp.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver")
@auth.signed_in("webhook:write")
def redeliver(webhook_id: str, delivery_id: str):
    """Send a logged delivery's event again now, then go back to the page the operator came from."""
    back = auth.safe_next(request.form.get("next") or url_for(".webhook", webhook_id=webhook_id))
    try:
        again = deliveries.redeliver(rt(), current_key(), webhook_id, delivery_id)
    except DomainError as e:
        flash(f"Not redelivered: {e.message}.", "error")
    else:
        flash(f"Redelivery queued as attempt {again.attempt}.", "info")
    return redirect(back, code=303)
