"""Who a proxied call is charged to.

A key's own user, normally. A service account's (or staff's) key may name
the end user, as a chat UI that forwards who is chatting does: by a header
(`CHATQUOTA_GATEWAY_USER_HEADER`, default `X-Chatquota-User`; Open WebUI's
`X-OpenWebUI-User-Id` or `X-OpenWebUI-User-Email` work) or by the body's
OpenAI `user` field. The name is a chatquota uuid (any standard form) or a
username. With `CHATQUOTA_GATEWAY_CREATE_USERS`, a name nobody has yet
becomes a new user with the system defaults (a uuid name becomes that
user's uuid, and its username), created by the first call that names it.
"""

from marshmallow import ValidationError
from sqlalchemy.orm import Session

from ..dialect import Raw
from ..schemas.administration import USERNAME
from ..schemas.fields import Uuid, unstorable
from ..services import accounts
from ..services.accounts import UserRecord
from ..services.errors import InvalidValue, UserNotFound

NAMING_ROLES = ("is_staff", "is_service")
MAX_USERNAME = USERNAME.max
_UUID = Uuid()


class Unknown(LookupError):
    """The call names a user chatquota does not have (and may not create)."""


def charged_user(raw: Raw, session: Session, caller: UserRecord, named: str | None,
                 create: bool) -> UserRecord:
    """Return whom the call is charged to: `caller`, or the end user it names.

    Raises Unknown for a name nobody has when creating is off, and
    InvalidValue("user", ...) for a name no user could have.
    """
    if not named or not any(getattr(caller, role) for role in NAMING_ROLES):
        return caller
    named = named.strip()
    uuid = _as_uuid(named)
    try:
        if uuid is not None:
            return accounts.read_user(raw, uuid)
        return accounts.read_user_named(raw, named)
    except UserNotFound:
        if not create:
            raise Unknown(named) from None
    return _create(raw, session, caller, named, uuid)


def _as_uuid(text: str) -> str | None:
    try:
        return _UUID.deserialize(text)
    except ValidationError:
        return None


def _create(raw: Raw, session: Session, caller: UserRecord, name: str,
            uuid: str | None) -> UserRecord:
    """Create the named user; a concurrent call that created it first wins."""
    problem = unstorable(name)
    if problem or not 1 <= len(name) <= MAX_USERNAME:
        raise InvalidValue("user", problem or f"A user name has 1 to {MAX_USERNAME} characters.")
    try:
        user = accounts.create_user(session, caller, name, uuid)
    except InvalidValue:  # taken meanwhile by another call naming the same user
        return accounts.read_user(raw, uuid) if uuid else accounts.read_user_named(raw, name)
    return accounts.read_user(raw, user.uuid)
