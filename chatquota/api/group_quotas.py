"""Group quotas: a group's usage, its limits, and the defaults of groups."""

from flask import Response, current_app

from ..auth import READERS, current_user, readable_group, require
from ..extensions import connection, db
from ..schemas.administration import DefaultsSchema
from ..schemas.groups import GroupQuerySchema, SetGroupQuotaRequestSchema
from ..schemas.quota import ChatQuotaSchema
from ..services import groups, limits
from ..services.usage import group_report
from . import Blueprint

blp = Blueprint("group_quotas", __name__, url_prefix="/api/chat-quota",
                description="Group quotas: a group's usage and limits, group defaults.")


def _limits(defaults: dict[str, int]) -> dict[str, int]:
    return {f"{period}_limit": value for period, value in defaults.items()}


@blp.route("/group-usage/", methods=["GET"])
@blp.arguments(GroupQuerySchema, location="query")
@blp.response(200, ChatQuotaSchema)
def group_usage(args):
    """Return a group's limits and usage: the 15 fields (`system_default`: the group default)."""
    uuid = readable_group(args["group_uuid"])
    return group_report(connection(), uuid, current_app.config["TZ"]).fields()


@blp.route("/set_group_quota/", methods=["POST"])
@require("is_staff", "is_support")
@blp.arguments(SetGroupQuotaRequestSchema)
@blp.response(200)
@blp.doc(description=(
    "Set some of a group's daily, weekly and monthly limits, as set_quota does a "
    "user's. Per field: a number 0..2**53-1 is that many tokens, `-1` is unlimited, "
    "`null` resets the limit to the group default, and a field left out keeps its "
    "current value. Answers 200 with an empty body; every change is audited."))
def set_group_quota(args):
    """Set a group's limits: null resets to the group default, an omitted field is kept."""
    group_uuid = args.pop("group_uuid")
    groups.set_group_quota(db.session, current_user(), group_uuid, args)
    return Response(status=200, mimetype="application/json")


@blp.route("/group-defaults/", methods=["GET"])
@require(*READERS)
@blp.response(200, DefaultsSchema)
def get_group_defaults():
    """Return the default limit of each period for groups whose limit is null."""
    return _limits(limits.get_defaults(db.session, limits.GROUP))


@blp.route("/group-defaults/", methods=["PUT"])
@require("is_staff")
@blp.arguments(DefaultsSchema)
@blp.response(200, DefaultsSchema)
def put_group_defaults(args):
    """Change some group defaults; fields left out keep their value."""
    changes = {field.removesuffix("_limit"): value for field, value in args.items()}
    return _limits(limits.set_defaults(db.session, current_user(), changes, limits.GROUP))
