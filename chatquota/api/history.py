"""Usage over time: raw usage events and tokens per day."""

from flask import current_app

from ..schemas.administration import EventQuerySchema, HistoryQuerySchema, HistorySchema
from ..auth import PRIVILEGED, current_user, has_role, readable_group, target_user
from ..extensions import db
from ..schemas.metering import UsageEventSchema
from ..services import groups, history
from ..services.accounts import UserRecord
from . import Blueprint

blp = Blueprint("history", __name__, url_prefix="/api/chat-quota",
                description="Usage history: events and daily totals.")


def subject(user_uuid: str | None) -> UserRecord | None:
    """Return whose usage to read: the named user, else None (all) if privileged, else oneself."""
    if user_uuid is None and has_role(current_user(), *PRIVILEGED):
        return None
    return target_user(user_uuid, *PRIVILEGED)


@blp.route("/events/", methods=["GET"])
@blp.arguments(EventQuerySchema, location="query")
@blp.response(200, UsageEventSchema(many=True))
@blp.paginate()
def events(args, pagination_parameters):
    """List usage events, newest first: your own, or anyone's for privileged roles."""
    user = subject(args.pop("user_uuid", None))
    page = history.list_events(db.session, current_app.config["TZ"], user=user, **args,
                               offset=pagination_parameters.first_item,
                               limit=pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


@blp.route("/history/", methods=["GET"])
@blp.arguments(HistoryQuerySchema, location="query")
@blp.response(200, HistorySchema)
def usage_history(args):
    """Return tokens charged per local day over the last `days` days (user or group), for charts."""
    tz = current_app.config["TZ"]
    if "group_uuid" in args:
        group = groups.get_group(db.session, readable_group(args["group_uuid"]))
        return history.daily_history(db.session, tz, args["days"], group=group).fields()
    return history.daily_history(db.session, tz, args["days"],
                                 subject(args.get("user_uuid"))).fields()
