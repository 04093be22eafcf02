"""Accounts: users, their roles and active flag, and their API tokens."""

from flask import Response

from ..schemas.administration import (
    NewTokenSchema,
    SearchQuerySchema,
    TokenCreateSchema,
    TokenSchema,
    UserCreateSchema,
    UserSchema,
    UserUpdateSchema,
)
from ..auth import READERS, current_user, require
from ..extensions import db
from ..security import NO_STORE
from ..services import accounts
from . import Blueprint, path_uuid

blp = Blueprint("users", __name__, url_prefix="/api/users",
                description="Users and API tokens (staff manage, support reads).")

def _user(user_uuid: str):
    return accounts.get_user(db.session, path_uuid(user_uuid, "user_uuid"))


@blp.route("/", methods=["GET"])
@require(*READERS)
@blp.arguments(SearchQuerySchema, location="query")
@blp.response(200, UserSchema(many=True))
@blp.paginate()
def list_users(args, pagination_parameters):
    """List users by username, optionally those whose name contains `search`."""
    page = accounts.list_users(db.session, search=args.get("search"),
                               offset=pagination_parameters.first_item,
                               limit=pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


@blp.route("/", methods=["POST"])
@require("is_staff")
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema)
def create_user(args):
    """Create a user with the given roles; its limits follow the defaults."""
    return accounts.create_user(db.session, current_user(), args.pop("username"),
                                args.pop("uuid", None), **args)


@blp.route("/me/", methods=["GET"])
@blp.response(200, UserSchema)
def me():
    """Return the authenticated user."""
    return current_user()


@blp.route("/<user_uuid>/", methods=["GET"])
@require(*READERS)
@blp.response(200, UserSchema)
def get_user(user_uuid):
    """Return one user."""
    return _user(user_uuid)


@blp.route("/<user_uuid>/", methods=["PATCH"])
@require("is_staff")
@blp.arguments(UserUpdateSchema)
@blp.response(200, UserSchema)
def update_user(args, user_uuid):
    """Change a user's roles or `is_active` (inactive: every token fails at once)."""
    return accounts.update_user(db.session, current_user(), path_uuid(user_uuid, "user_uuid"),
                                args)


@blp.route("/<user_uuid>/tokens/", methods=["GET"])
@require(*READERS)
@blp.response(200, TokenSchema(many=True))
@blp.paginate()
def list_tokens(user_uuid, pagination_parameters):
    """List a user's tokens, newest first, without their keys."""
    page = accounts.list_tokens(db.session, _user(user_uuid),
                                pagination_parameters.first_item,
                                pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


@blp.route("/<user_uuid>/tokens/", methods=["POST"])
@require("is_staff")
@blp.arguments(TokenCreateSchema)
@blp.response(201, NewTokenSchema, headers={"Cache-Control": {
    "description": "`no-store`: no cache keeps the key.", "schema": {"type": "string"}}})
def issue_token(args, user_uuid):
    """Issue a token for a user; the key is in this response and never again."""
    token, key = accounts.issue_token(db.session, current_user(), _user(user_uuid), args["name"])
    return {**{name: getattr(token, name) for name in TokenSchema().fields}, "key": key}, NO_STORE


@blp.route("/<user_uuid>/tokens/<token_uuid>/", methods=["GET"])
@require(*READERS)
@blp.response(200, TokenSchema)
def get_token(user_uuid, token_uuid):
    """Return one of a user's tokens, without its key."""
    return accounts.get_token(db.session, _user(user_uuid), path_uuid(token_uuid, "token_uuid"))


@blp.route("/<user_uuid>/tokens/<token_uuid>/", methods=["DELETE"])
@require("is_staff")
@blp.response(204)
def revoke_token(user_uuid, token_uuid):
    """Revoke a token: it fails with 401 from now on; revoking twice is harmless."""
    accounts.revoke_token(db.session, current_user(), _user(user_uuid),
                          path_uuid(token_uuid, "token_uuid"))
    return Response(status=204)
