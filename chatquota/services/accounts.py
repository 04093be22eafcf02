"""Users and API tokens: creation, lookup and token authentication."""

import hashlib
import hmac
import secrets
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..dialect import Raw, lock_rows, prepare, write_transaction
from ..models import ApiToken, Quota, User, WebSession
from . import audit
from .audit import Actor
from .errors import Conflict, InvalidValue, TokenNotFound, UserNotFound
from .paging import Page, contains, paginate

TOKEN_PREFIX = "cq_"
MIN_KEY_LENGTH = 32  # a chosen key (CHATQUOTA_ADMIN_TOKEN) must not be weaker than a guess
ROLES = ("is_staff", "is_support", "is_service")

# Statements on every request are built once: building one costs more than
# running it. The user's quota comes with it (User.quota is joined).
_USER_COLUMNS = ("id", "uuid", "username", "is_active", "is_staff", "is_support",
                 "is_service", "created_at")
_LIMIT_COLUMNS = ("daily_limit", "weekly_limit", "monthly_limit")
_users, _tokens, _quotas = User.__table__, ApiToken.__table__, Quota.__table__
_RECORD = select(*(_users.c[c] for c in _USER_COLUMNS), *(_quotas.c[c] for c in _LIMIT_COLUMNS))
_RECORD_BY_UUID = prepare(_RECORD.select_from(
    _users.join(_quotas, _quotas.c.user_id == _users.c.id)
).where(_users.c.uuid == bindparam("uuid")))
_RECORD_BY_NAME = prepare(_RECORD.select_from(
    _users.join(_quotas, _quotas.c.user_id == _users.c.id)
).where(_users.c.username == bindparam("username")))
_RECORD_BY_KEY_HASH = prepare(
    _RECORD.add_columns(_tokens.c.id, _tokens.c.key_hash)
    .select_from(_tokens.join(_users, _tokens.c.user_id == _users.c.id)
                 .join(_quotas, _quotas.c.user_id == _users.c.id))
    .where(_tokens.c.key_hash == bindparam("digest"), _tokens.c.revoked_at.is_(None))
)
_BY_UUID = select(User).where(User.uuid == bindparam("uuid"))
# Inside a write transaction: overwrite whatever this session read earlier.
_BY_UUID_FRESH = _BY_UUID.execution_options(populate_existing=True)
_LOCK_QUOTA = (
    select(Quota).where(Quota.user_id == bindparam("user_id")).with_for_update()
    .execution_options(populate_existing=True)
)
# In id order, so that two transactions taking these locks cannot deadlock.
_LOCK_ACTIVE_STAFF = (
    select(User.id).where(User.is_staff, User.is_active).order_by(User.id).with_for_update()
)


def hash_key(key: str) -> str:
    """Return the stored form of an API key (SHA-256; keys are high-entropy)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """Return a fresh random API key (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Limits:
    """A user's own limits (None: the system default applies)."""

    daily_limit: int | None
    weekly_limit: int | None
    monthly_limit: int | None


@dataclass(frozen=True)
class UserRecord:
    """A user's columns and limits, read with one Core statement.

    A fraction of the cost of ORM entities on paths every request takes:
    the caller's authentication, and reading whose quota a request is about.
    It has the attributes services read from a User (`id`, `uuid`,
    `username`, roles, `quota.<period>_limit`); `token_id` is the key the
    caller authenticated with, if any.
    """

    id: int
    uuid: str
    username: str
    is_active: bool
    is_staff: bool
    is_support: bool
    is_service: bool
    created_at: datetime
    quota: Limits
    token_id: int | None = None

    @classmethod
    def from_row(cls, row, token_id: int | None = None) -> "UserRecord":
        """Build a record from a row of `_RECORD`'s columns (DBAPI values of either backend)."""
        uid, uuid, username, active, staff, support, service, created, *limits = row[:11]
        return cls(uid, uuid, username, bool(active), bool(staff), bool(support), bool(service),
                   Raw.read_instant(created), Limits(*limits), token_id)


def authenticate(raw: Raw, key: str) -> UserRecord | None:
    """Return the caller behind an unrevoked key of an active user, else None."""
    digest = hash_key(key)
    row = raw.one(_RECORD_BY_KEY_HASH, {"digest": digest})
    if row is None or not hmac.compare_digest(row[12], digest) or not row[3]:
        return None
    return UserRecord.from_row(row, token_id=row[11])


def read_user(raw: Raw, user_uuid: str) -> UserRecord:
    """Return a user's record for reading, or raise UserNotFound."""
    row = raw.one(_RECORD_BY_UUID, {"uuid": user_uuid})
    if row is None:
        raise UserNotFound()
    return UserRecord.from_row(row)


def read_user_named(raw: Raw, username: str) -> UserRecord:
    """Return the record of the user with this username, or raise UserNotFound."""
    row = raw.one(_RECORD_BY_NAME, {"username": username})
    if row is None:
        raise UserNotFound(f"User {username!r} not found.")
    return UserRecord.from_row(row)


def check_key(key: str) -> None:
    """Refuse a chosen API key too short to be as strong as a random one."""
    if len(key) < MIN_KEY_LENGTH:
        raise InvalidValue("key", f"A key must have at least {MIN_KEY_LENGTH} characters.")


def any_staff(session: Session) -> bool:
    """Tell whether any staff user exists."""
    return session.scalar(select(User.id).where(User.is_staff).limit(1)) is not None


def get_user(session: Session, user_uuid: str) -> User:
    """Return the user with this uuid (32 hex digits) or raise UserNotFound."""
    user = session.scalar(_BY_UUID, {"uuid": user_uuid})
    if user is None:
        raise UserNotFound()
    return user


def lock_user(session: Session, user_uuid: str) -> User:
    """Return the user with its quota re-read under the per-user write lock.

    PostgreSQL: the quota row is locked FOR UPDATE until commit, so admission
    and limit changes for one user run one at a time and see fresh limits.
    SQLite: the transaction already holds the database write lock; the user
    and quota are re-read inside it, replacing any copy read before the lock.
    """
    user = session.scalar(_BY_UUID_FRESH, {"uuid": user_uuid})
    if user is None:
        raise UserNotFound()
    lock_rows(session, _LOCK_QUOTA, {"user_id": user.id})
    return user


def get_user_by_name(session: Session, username: str) -> User:
    """Return the user with this username or raise UserNotFound."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserNotFound(f"User {username!r} not found.")
    return user


def create_user(
    session: Session,
    actor: Actor | None,
    username: str,
    user_uuid: str | None = None,
    **roles: bool,
) -> User:
    """Create a user with an empty quota (all limits follow the defaults)."""
    user = User(
        uuid=user_uuid or uuidlib.uuid4().hex,
        username=username,
        is_active=True,
        created_at=clock.now(),
        **{role: bool(roles.get(role)) for role in ROLES},
    )
    user.quota = Quota()
    try:
        with write_transaction(session):
            session.add(user)
            session.flush()
            audit.record(session, actor, "user.create", username, "user", None,
                         _user_state(user), target_user=user)
    except IntegrityError:
        taken = session.scalar(select(User.id).where(User.uuid == user.uuid))
        if taken is not None:
            raise InvalidValue("uuid", "A user with this uuid already exists.") from None
        raise InvalidValue("username", "A user with this username already exists.") from None
    return user


def issue_token(
    session: Session, actor: Actor | None, user: User, name: str = "", key: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it and its key, which is never stored."""
    key = key or new_key()
    check_key(key)
    token = ApiToken(
        uuid=uuidlib.uuid4().hex,
        user_id=user.id,
        key_hash=hash_key(key),
        prefix=key[:8],
        name=name,
        created_at=clock.now(),
    )
    try:
        with write_transaction(session):
            session.add(token)
            session.flush()
            audit.record(session, actor, "token.create", user.username, "token", None,
                         token.prefix, target_user=user)
    except IntegrityError:
        raise InvalidValue("key", "This key is already in use.") from None
    return token, key


def revoke_token(session: Session, actor: Actor | None, user: User, token_uuid: str) -> ApiToken:
    """Revoke one of the user's tokens; revoking twice changes nothing."""
    with write_transaction(session):
        token = get_token(session, user, token_uuid)
        if token.revoked_at is None:
            token.revoked_at = clock.now()
            audit.record(session, actor, "token.revoke", user.username, "token",
                         token.prefix, None, target_user=user)
    return token


def list_users(
    session: Session, *, search: str | None = None, offset: int = 0, limit: int = 10
) -> Page:
    """Return one page of users by username, optionally those whose name contains `search`."""
    stmt = select(User).order_by(User.username, User.id)
    if search:
        stmt = stmt.where(contains(User.username, search))
    return paginate(session, stmt, offset, limit)


def update_user(session: Session, actor: Actor | None, user_uuid: str, changes: dict) -> User:
    """Change a user's `is_active` and roles; refuse to leave no active staff user.

    Deactivating ends the user's dashboard sessions in the same transaction,
    so reactivating later does not revive an old cookie; reactivating also
    drops any left from before sessions were ended this way.
    """
    with write_transaction(session):
        if changes.get("is_staff") is False or changes.get("is_active") is False:
            _lock_active_staff(session)
        user = get_user(session, user_uuid)
        was_admin, was_active = user.is_staff and user.is_active, user.is_active
        for field, value in changes.items():
            old = getattr(user, field)
            if old == value:
                continue
            setattr(user, field, value)
            audit.record(session, actor, "user.update", user.username, field, old, value,
                         target_user=user)
        if was_admin and not (user.is_staff and user.is_active):
            _keep_an_admin(session)
        if "is_active" in changes and not (was_active and user.is_active):
            session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return user


def _lock_active_staff(session: Session) -> None:
    """Lock the rows of every active staff user until commit (PostgreSQL).

    Two demotions of the last two staff users would otherwise each count the
    other as still staff (neither sees the other's uncommitted change), and
    both commit. With the rows locked first, the second waits for the first
    to commit and then counts what it left. SQLite: BEGIN IMMEDIATE already
    serialises the two transactions.
    """
    lock_rows(session, _LOCK_ACTIVE_STAFF, {})


def _keep_an_admin(session: Session) -> None:
    session.flush()
    if session.scalar(select(User.id).where(User.is_staff, User.is_active).limit(1)) is None:
        raise Conflict("This change would leave no active staff user.")


def list_tokens(session: Session, user: User, offset: int = 0, limit: int = 10) -> Page:
    """Return one page of the user's tokens, newest first (keys are never stored)."""
    stmt = (select(ApiToken).where(ApiToken.user_id == user.id)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))
    return paginate(session, stmt, offset, limit)


def get_token(session: Session, user: User, token_uuid: str) -> ApiToken:
    """Return one of the user's tokens or raise TokenNotFound."""
    token = session.scalar(
        select(ApiToken).where(ApiToken.uuid == token_uuid, ApiToken.user_id == user.id)
    )
    if token is None:
        raise TokenNotFound()
    return token


def _user_state(user: User) -> dict:
    return {"username": user.username, "is_active": user.is_active,
            **{role: getattr(user, role) for role in ROLES}}
