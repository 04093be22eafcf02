"""Webhooks that receive alerts: staff add, change, delete and test them, and read their log."""

from flask import Response, current_app

from .. import deliverer
from ..auth import current_user, require
from ..extensions import db
from ..schemas.alerts import DeliverySchema, WebhookCreateSchema, WebhookSchema, WebhookUpdateSchema
from ..services import webhooks
from . import Blueprint, path_uuid

blp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks",
                description="Webhooks that receive alerts, and their delivery log (staff).")


def _uuid(webhook_uuid: str) -> str:
    return path_uuid(webhook_uuid, "webhook_uuid")


@blp.route("/", methods=["GET"])
@require("is_staff")
@blp.response(200, WebhookSchema(many=True))
@blp.paginate()
def list_webhooks(pagination_parameters):
    """List webhooks, oldest first (secrets are never shown)."""
    page = webhooks.list_webhooks(db.session, pagination_parameters.first_item,
                                  pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


@blp.route("/", methods=["POST"])
@require("is_staff")
@blp.arguments(WebhookCreateSchema)
@blp.response(201, WebhookSchema)
def create_webhook(args):
    """Add a webhook; alerts written from now on are delivered to it."""
    return webhooks.create_webhook(db.session, current_user(), **args)


@blp.route("/<webhook_uuid>/", methods=["GET"])
@require("is_staff")
@blp.response(200, WebhookSchema)
def get_webhook(webhook_uuid):
    """Return one webhook."""
    return webhooks.get_webhook(db.session, _uuid(webhook_uuid))


@blp.route("/<webhook_uuid>/", methods=["PATCH"])
@require("is_staff")
@blp.arguments(WebhookUpdateSchema)
@blp.response(200, WebhookSchema)
def update_webhook(args, webhook_uuid):
    """Change a webhook's url, secret, format or events; fields left out keep their value."""
    return webhooks.update_webhook(db.session, current_user(), _uuid(webhook_uuid), args)


@blp.route("/<webhook_uuid>/", methods=["DELETE"])
@require("is_staff")
@blp.response(204)
def delete_webhook(webhook_uuid):
    """Delete a webhook with its delivery log; what it has pending is not sent."""
    webhooks.delete_webhook(db.session, current_user(), _uuid(webhook_uuid))
    return Response(status=204)


@blp.route("/<webhook_uuid>/test/", methods=["POST"])
@require("is_staff")
@blp.response(200, DeliverySchema)
def test(webhook_uuid):
    """Send a test event now (one attempt, logged); the answer says what the receiver did."""
    return deliverer.send_test(db.session, current_app.config, _uuid(webhook_uuid))


@blp.route("/<webhook_uuid>/deliveries/", methods=["GET"])
@require("is_staff")
@blp.response(200, DeliverySchema(many=True))
@blp.paginate()
def deliveries(webhook_uuid, pagination_parameters):
    """List a webhook's deliveries, newest first, each with every attempt."""
    page = webhooks.list_deliveries(
        db.session, webhooks.get_webhook(db.session, _uuid(webhook_uuid)),
        current_app.config["TZ"], pagination_parameters.first_item,
        pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items
