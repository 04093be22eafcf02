"""The two Waldur-compatible endpoints: read usage, set a user's quota."""

from flask import Response, current_app

from ..auth import PRIVILEGED, current_user, require, target_user
from ..extensions import connection, db
from ..schemas.quota import ChatQuotaSchema, SetTokenQuotaRequestSchema, UserQuerySchema
from ..services import limits
from ..services.usage import quota_report
from . import Blueprint

blp = Blueprint("chat_quota", __name__, url_prefix="/api/chat-quota",
                description="Token quotas: usage and limits.")


@blp.route("/usage/", methods=["GET"])
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, ChatQuotaSchema)
@blp.doc(operationId="chat_quota_usage_retrieve", summary="List Chat Quota Usage")
def usage(args):
    """Return the current token quota and usage of a user (yourself by default)."""
    user = target_user(args.get("user_uuid"), *PRIVILEGED)
    return quota_report(connection(), user, current_app.config["TZ"]).fields()


@blp.route("/set_quota/", methods=["POST"])
@require("is_staff", "is_support")
@blp.arguments(SetTokenQuotaRequestSchema)
@blp.response(200)
@blp.doc(operationId="chat_quota_set_quota", summary="Set token quota for user", description=(
    "Set some of a user's daily, weekly and monthly limits. Per field: a number "
    "0..2**53-1 is that many tokens, `-1` is unlimited, `null` resets the limit to "
    "the system default, and a field left out keeps its current value. "
    "Answers 200 with an empty body; every change is written to the audit log."))
def set_quota(args):
    """Set a user's limits: null resets to the default, an omitted field is kept."""
    user_uuid = args.pop("user_uuid")
    limits.set_quota(db.session, current_user(), user_uuid, args)
    return Response(status=200, mimetype="application/json")  # as DRF: empty body, JSON type
