"""Limits: system defaults (for users and for groups), per-user limits, the effective one."""

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..dialect import insert_missing, lock_rows, write_transaction
from ..models import Setting, User
from ..periods import PERIODS
from . import audit
from .audit import Actor
from .accounts import lock_user

UNLIMITED = -1
MAX_LIMIT = 2**53 - 1
# Whose defaults: users' (`daily_default`, ...) or groups' (`group_daily_default`, ...).
USER, GROUP = "user", "group"


def default_key(period: str, scope: str = USER) -> str:
    """Return the settings key of a period's default for users or for groups."""
    return f"{period}_default" if scope == USER else f"group_{period}_default"


_DEFAULT_KEYS = {scope: {default_key(period, scope): period for period in PERIODS}
                 for scope in (USER, GROUP)}
_LOCK_DEFAULTS = {scope: select(Setting).where(Setting.key.in_(keys)).order_by(Setting.key)
                  .with_for_update() for scope, keys in _DEFAULT_KEYS.items()}


def effective_limit(limit: int | None, default: int) -> int:
    """Return the limit that applies: the user's own, else the system default."""
    return default if limit is None else limit


def remaining(limit: int, usage: int) -> int | None:
    """Return tokens left in a period, or None when unlimited."""
    return None if limit == UNLIMITED else max(0, limit - usage)


def get_defaults(session: Session, scope: str = USER) -> dict[str, int]:
    """Return the system default of each period for users or groups (-1 until set)."""
    keys = _DEFAULT_KEYS[scope]
    rows = session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(keys))).all()
    stored = {keys[key]: value for key, value in rows}
    return {period: stored.get(period, UNLIMITED) for period in PERIODS}


def set_defaults(session: Session, actor: Actor | None, changes: dict[str, int],
                 scope: str = USER) -> dict[str, int]:
    """Change some system defaults of users or groups (period -> limit); return all three."""
    with write_transaction(session):
        _lock_defaults(session, scope)
        current = get_defaults(session, scope)
        for period, value in changes.items():
            if current[period] == value:
                continue
            key = default_key(period, scope)
            session.execute(update(Setting).where(Setting.key == key)
                            .values(value=value))  # _lock_defaults made sure the row exists
            audit.record(session, actor, "default.update", "system", key, current[period], value)
            current[period] = value
    return current


def _lock_defaults(session: Session, scope: str) -> None:
    """Lock the rows of the three defaults until commit (PostgreSQL).

    Then a concurrent change waits, and the "from" value audited is never
    stale. A default never set has no row yet: it is stored as -1 (what a
    missing row means) first, since only an existing row can be locked.
    On SQLite BEGIN IMMEDIATE already serialises the changes.
    """
    rows = [{"key": key, "value": UNLIMITED} for key in _DEFAULT_KEYS[scope]]
    insert_missing(session, Setting, rows, keys=["key"])
    lock_rows(session, _LOCK_DEFAULTS[scope], {})


def set_quota(
    session: Session, actor: Actor | None, user_uuid: str, changes: dict[str, int | None]
) -> User:
    """Set some of a user's limits (`<period>_limit` -> value or None); keep the rest."""
    with write_transaction(session):
        user = lock_user(session, user_uuid)
        for field, value in changes.items():
            old = getattr(user.quota, field)
            if old == value:
                continue
            setattr(user.quota, field, value)
            audit.record(session, actor, "quota.update", user.username, field, old, value,
                         target_user=user)
    return user
