"""Administration: system defaults, alert thresholds, every user's quota, the audit log."""

from flask import current_app

from ..schemas.administration import (
    AuditEntrySchema,
    AuditQuerySchema,
    DefaultsSchema,
    QuotaListQuerySchema,
    UserQuotaSchema,
)
from ..schemas.alerts import AlertThresholdsSchema
from ..auth import READERS, current_user, require
from ..extensions import db
from ..services import accounts, alerts, audit, groups, limits
from ..services.overview import list_quotas
from . import Blueprint

blp = Blueprint("administration", __name__, url_prefix="/api/chat-quota",
                description="Administration: system defaults, all quotas, audit log.")

def _limits(defaults: dict[str, int]) -> dict[str, int]:
    return {f"{period}_limit": value for period, value in defaults.items()}


@blp.route("/defaults/", methods=["GET"])
@require(*READERS)
@blp.response(200, DefaultsSchema)
def get_defaults():
    """Return the system default limit of each period."""
    return _limits(limits.get_defaults(db.session))


@blp.route("/defaults/", methods=["PUT"])
@require("is_staff")
@blp.arguments(DefaultsSchema)
@blp.response(200, DefaultsSchema)
def put_defaults(args):
    """Change some system defaults; fields left out keep their value."""
    changes = {field.removesuffix("_limit"): value for field, value in args.items()}
    return _limits(limits.set_defaults(db.session, current_user(), changes))


@blp.route("/alert-thresholds/", methods=["GET"])
@require(*READERS)
@blp.response(200, AlertThresholdsSchema)
def get_alert_thresholds():
    """Return the alert thresholds: percentages of each period's limit that send an alert."""
    return {"thresholds": list(alerts.get_thresholds(db.session))}


@blp.route("/alert-thresholds/", methods=["PUT"])
@require("is_staff")
@blp.arguments(AlertThresholdsSchema)
@blp.response(200, AlertThresholdsSchema)
def put_alert_thresholds(args):
    """Replace the alert thresholds; `[]` turns alerts off."""
    return {"thresholds": list(alerts.set_thresholds(db.session, current_user(),
                                                     args["thresholds"]))}


@blp.route("/quotas/", methods=["GET"])
@require(*READERS)
@blp.arguments(QuotaListQuerySchema, location="query")
@blp.response(200, UserQuotaSchema(many=True))
@blp.paginate()
def quotas(args, pagination_parameters):
    """List every user's (or a group's members') quota and usage, searched and sorted."""
    group_uuid = args.pop("group_uuid", None)
    group = groups.get_group(db.session, group_uuid) if group_uuid else None
    page = list_quotas(db.session, current_app.config["TZ"], **args, group=group,
                       offset=pagination_parameters.first_item,
                       limit=pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return [row.fields() for row in page.items]


@blp.route("/audit/", methods=["GET"])
@require(*READERS)
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditEntrySchema(many=True))
@blp.paginate()
def audit_log(args, pagination_parameters):
    """List changes to limits, defaults, users and tokens, newest first."""
    target = args.get("user_uuid")
    page = audit.list_entries(
        db.session,
        target_user=accounts.get_user(db.session, target) if target else None,
        action=args.get("action"),
        offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
    )
    pagination_parameters.item_count = page.total
    return page.items
