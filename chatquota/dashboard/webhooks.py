"""Staff pages for alerts: thresholds, webhooks (add, edit, test, delete), their delivery log.

Forms are checked by the API's own schemas, so the browser and the API
accept exactly the same webhooks; bad input re-renders the form and changes
nothing.
"""

import secrets

from flask import current_app, g, redirect, render_template, request, url_for
from marshmallow import ValidationError

from .. import deliverer
from ..extensions import db
from ..schemas.alerts import AlertThresholdsSchema, WebhookCreateSchema, WebhookUpdateSchema
from ..schemas.fields import Uuid
from ..services import alerts, webhooks
from ..services.errors import WebhookNotFound
from ..services.events import EVENT_TYPES, FORMATS
from . import bp
from .pages import paging
from .websession import signed_in


def _errors(error: ValidationError) -> dict[str, str]:
    """Return each field's first message (list fields report per item)."""
    found = {}
    for field, messages in error.normalized_messages().items():
        while isinstance(messages, dict):
            messages = next(iter(messages.values()))
        found[field] = messages[0] if isinstance(messages, list) else str(messages)
    return found


def _submitted(form, creating: bool) -> dict:
    body = {"url": form.get("url", "").strip(), "format": form.get("format", ""),
            "events": form.getlist("events")}
    if creating or form.get("secret"):  # editing: an empty secret keeps the one stored
        body["secret"] = form.get("secret", "")
    return body


def _render_list(form: dict | None = None, errors: dict | None = None,
                 thresholds_text: str | None = None, threshold_error: str | None = None,
                 status: int = 200):
    if thresholds_text is None:
        thresholds_text = ", ".join(map(str, alerts.get_thresholds(db.session)))
    page = render_template(
        "dashboard/webhooks.html", webhooks=webhooks.list_webhooks(db.session, 0, 200).items,
        form=form or {"url": "", "format": "json", "events": list(EVENT_TYPES),
                      "secret": secrets.token_hex(16)},
        errors=errors or {}, formats=FORMATS, event_types=EVENT_TYPES,
        thresholds_text=thresholds_text, threshold_error=threshold_error, saved=request.args.get("saved"))
    return page, status


@bp.get("/admin/webhooks/")
@signed_in("is_staff")
def webhooks_page():
    """List webhooks; forms to add one and to change the alert thresholds."""
    return _render_list()


@bp.post("/admin/webhooks/")
@signed_in("is_staff")
def add_webhook():
    """Add a webhook; bad input re-renders the form."""
    body = _submitted(request.form, creating=True)
    try:
        fields = WebhookCreateSchema().load(body)
    except ValidationError as error:
        return _render_list(form=body, errors=_errors(error), status=400)
    made = webhooks.create_webhook(db.session, g.user, **fields)
    return redirect(url_for("dashboard.webhook", webhook_uuid=made.uuid, saved="added"))


@bp.post("/admin/webhooks/thresholds/")
@signed_in("is_staff")
def set_thresholds():
    """Replace the alert thresholds ("80, 100"; empty: no alerts)."""
    text = request.form.get("thresholds", "")
    try:
        given = AlertThresholdsSchema().load(
            {"thresholds": text.replace(",", " ").replace("%", " ").split()})
    except ValidationError as error:
        return _render_list(thresholds_text=text, threshold_error=_errors(error)["thresholds"],
                            status=400)
    alerts.set_thresholds(db.session, g.user, given["thresholds"])
    return redirect(url_for("dashboard.webhooks_page", saved="thresholds"))


def _webhook(webhook_uuid: str):
    try:
        return webhooks.get_webhook(db.session, Uuid().deserialize(webhook_uuid))
    except ValidationError:
        raise WebhookNotFound() from None


def _render_webhook(webhook, form: dict | None = None, errors: dict | None = None,
                    status: int = 200):
    page, size = paging()
    log = webhooks.list_deliveries(db.session, webhook, current_app.config["TZ"],
                                   (page - 1) * size, size)
    return render_template(
        "dashboard/webhook.html", webhook=webhook, formats=FORMATS, event_types=EVENT_TYPES,
        form=form or {"url": webhook.url, "format": webhook.format, "events": webhook.event_types},
        errors=errors or {}, deliveries=log.items, total=log.total, page=page, page_size=size,
        pages=max(1, -(-log.total // size)), saved=request.args.get("saved")), status


@bp.get("/admin/webhooks/<webhook_uuid>/")
@signed_in("is_staff")
def webhook(webhook_uuid: str):
    """Show a webhook's form, test and delete buttons, and its delivery log."""
    return _render_webhook(_webhook(webhook_uuid))


@bp.post("/admin/webhooks/<webhook_uuid>/")
@signed_in("is_staff")
def edit_webhook(webhook_uuid: str):
    """Change a webhook; an empty secret keeps the stored one."""
    found = _webhook(webhook_uuid)
    body = _submitted(request.form, creating=False)
    try:
        changes = WebhookUpdateSchema().load(body)
    except ValidationError as error:
        return _render_webhook(found, form=body, errors=_errors(error), status=400)
    webhooks.update_webhook(db.session, g.user, found.uuid, changes)
    return redirect(url_for("dashboard.webhook", webhook_uuid=found.uuid, saved="saved"))


@bp.post("/admin/webhooks/<webhook_uuid>/test/")
@signed_in("is_staff")
def test_webhook(webhook_uuid: str):
    """Send a test event now; its outcome tops the delivery log."""
    found = _webhook(webhook_uuid)
    deliverer.send_test(db.session, current_app.config, found.uuid)
    return redirect(url_for("dashboard.webhook", webhook_uuid=found.uuid, saved="tested"))


@bp.post("/admin/webhooks/<webhook_uuid>/delete/")
@signed_in("is_staff")
def delete_webhook(webhook_uuid: str):
    """Delete a webhook and its delivery log."""
    webhooks.delete_webhook(db.session, g.user, _webhook(webhook_uuid).uuid)
    return redirect(url_for("dashboard.webhooks_page", saved="deleted"))
