"""Token authentication and role checks for the API (Flask side)."""

from functools import wraps

from flask import g, request
from flask_smorest import abort

from .extensions import connection
from .models import User
from .services import accounts, groups
from .services.accounts import UserRecord

# Who may do what, named once for the API and the dashboard.
PRIVILEGED = ("is_staff", "is_support", "is_service")  # may read anyone's usage
METERING = ("is_staff", "is_service")  # may check others, consume and reserve
READERS = ("is_staff", "is_support")  # may read the administration data


def authenticate():
    """Set `g.user` from `Authorization: Token <key>`, or abort with 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        abort(401, message="Authentication credentials were not provided.")
    if scheme.lower() != "token" or not key.strip() or " " in key.strip():
        abort(401, message="Invalid token header. Use 'Authorization: Token <key>'.")
    user = accounts.authenticate(connection(), key.strip())
    if user is None:
        abort(401, message="Invalid token, or the user is inactive.")
    g.user = user


def current_user() -> UserRecord:
    """Return the authenticated user of this request."""
    return g.user


def has_role(user: User | UserRecord, *roles: str) -> bool:
    """Tell whether the user has any of the roles (`is_staff`, ...)."""
    return any(getattr(user, role) for role in roles)


def require(*roles: str):
    """Decorate a view so that only users with one of `roles` may call it."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not has_role(current_user(), *roles):
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # named in the OpenAPI document
        return wrapper

    return decorator


def target_user(user_uuid: str | None, *roles: str) -> UserRecord:
    """Return whose data a request is about: oneself, or anyone for `roles`.

    Another user's uuid from a caller without the roles is a 403, whether or
    not that user exists, so the answer leaks nothing.
    """
    me = current_user()
    if user_uuid is None or user_uuid == me.uuid:
        return me
    if not has_role(me, *roles):
        abort(403)
    return accounts.read_user(connection(), user_uuid)


def readable_group(group_uuid: str) -> str:
    """Return `group_uuid` if the caller may read that group: privileged roles or its members.

    Anyone else gets a 403, whether or not the group exists, so the answer
    leaks nothing.
    """
    me = current_user()
    if not has_role(me, *PRIVILEGED) and not groups.is_member(connection(), group_uuid, me.id):
        abort(403)
    return group_uuid
