"""Groups: create and rename them (staff), list them, manage their members."""

from flask import Response, current_app

from ..auth import PRIVILEGED, READERS, current_user, has_role, readable_group, require
from ..extensions import db
from ..schemas.groups import (
    GroupCreateSchema,
    GroupListQuerySchema,
    GroupSchema,
    GroupUpdateSchema,
    MemberCreateSchema,
    MemberSchema,
)
from ..services import groups
from . import Blueprint, path_uuid

blp = Blueprint("groups", __name__, url_prefix="/api/groups",
                description="Groups with shared limits, and their members (staff manage).")


def _uuid(group_uuid: str) -> str:
    return path_uuid(group_uuid, "group_uuid")


@blp.route("/", methods=["GET"])
@blp.arguments(GroupListQuerySchema, location="query")
@blp.response(200, GroupSchema(many=True))
@blp.paginate()
def list_groups(args, pagination_parameters):
    """List groups by name: every group for staff, support and service, else your own."""
    me = current_user()
    page = groups.list_groups(db.session, current_app.config["TZ"], search=args.get("search"),
                              member_id=None if has_role(me, *PRIVILEGED) else me.id,
                              offset=pagination_parameters.first_item,
                              limit=pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


@blp.route("/", methods=["POST"])
@require("is_staff")
@blp.arguments(GroupCreateSchema)
@blp.response(201, GroupSchema)
def create_group(args):
    """Create a group; limits left out follow the group defaults."""
    group = groups.create_group(db.session, current_user(), args.pop("name"), args)
    return groups.group_record(db.session, current_app.config["TZ"], group.uuid)


@blp.route("/<group_uuid>/", methods=["GET"])
@blp.response(200, GroupSchema)
def get_group(group_uuid):
    """Return one group (staff, support and service: any; others: their own)."""
    uuid = readable_group(_uuid(group_uuid))
    return groups.group_record(db.session, current_app.config["TZ"], uuid)


@blp.route("/<group_uuid>/", methods=["PATCH"])
@require("is_staff")
@blp.arguments(GroupUpdateSchema)
@blp.response(200, GroupSchema)
def update_group(args, group_uuid):
    """Rename a group."""
    groups.rename_group(db.session, current_user(), _uuid(group_uuid), args["name"])
    return groups.group_record(db.session, current_app.config["TZ"], _uuid(group_uuid))


@blp.route("/<group_uuid>/members/", methods=["GET"])
@require(*READERS)
@blp.response(200, MemberSchema(many=True))
@blp.paginate()
def list_members(group_uuid, pagination_parameters):
    """List a group's members by username."""
    page = groups.list_members(db.session, groups.get_group(db.session, _uuid(group_uuid)),
                               pagination_parameters.first_item,
                               pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


@blp.route("/<group_uuid>/members/", methods=["POST"])
@require("is_staff")
@blp.arguments(MemberCreateSchema)
@blp.response(201, MemberSchema)
@blp.alt_response(409, description="The user is already a member.")
def add_member(args, group_uuid):
    """Add a user to a group: from now on their usage counts for the group too."""
    return groups.add_member(db.session, current_user(), _uuid(group_uuid), args["user_uuid"])


@blp.route("/<group_uuid>/members/<user_uuid>/", methods=["DELETE"])
@require("is_staff")
@blp.response(204)
def remove_member(group_uuid, user_uuid):
    """Remove a user from a group; what they used stays the group's usage."""
    groups.remove_member(db.session, current_user(), _uuid(group_uuid),
                         path_uuid(user_uuid, "user_uuid"))
    return Response(status=204)
