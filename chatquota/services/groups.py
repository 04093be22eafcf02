"""Groups: teams with limits of their own, their members, and their usage.

A group's limits mean what a user's do (null: the group default, -1:
unlimited). Changes that admission depends on take the ledger's locks in the
ledger's order (services/ledger.py): a membership change locks the user's
quota row and then the group's row, a limit or name change the group's row.
"""

import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..dialect import Raw, lock_rows, prepare, write_transaction
from ..models import Group, Membership, User
from . import audit
from .accounts import lock_user
from .audit import Actor
from .errors import AlreadyMember, GroupNotFound, InvalidValue, MembershipNotFound
from .paging import Page, contains, paginate
from .usage import LIMIT_COLUMNS, QuotaReport, group_snapshot_columns, report_from, window_params

_members = Membership.__table__
_IS_MEMBER = prepare(
    select(_members.c.user_id)
    .select_from(_members.join(Group.__table__, Group.__table__.c.id == _members.c.group_id))
    .where(Group.__table__.c.uuid == bindparam("uuid"), _members.c.user_id == bindparam("user_id"))
)
_BY_UUID = select(Group).where(Group.uuid == bindparam("uuid"))
_LOCK_GROUP = (select(Group).where(Group.id == bindparam("id")).with_for_update()
               .execution_options(populate_existing=True))
_MEMBER_COUNT = (select(func.count()).where(Membership.group_id == Group.id)
                 .correlate(Group).scalar_subquery())


@dataclass(frozen=True)
class GroupRecord:
    """A group as the API and the dashboard show it, with its current usage."""

    uuid: str
    name: str
    daily_limit: int | None
    weekly_limit: int | None
    monthly_limit: int | None
    created_at: datetime
    member_count: int
    report: QuotaReport


@dataclass(frozen=True)
class MemberRecord:
    """A member of a group: who, and since when."""

    user_uuid: str
    username: str
    is_active: bool
    joined_at: datetime


def get_group(session: Session, group_uuid: str) -> Group:
    """Return the group with this uuid (32 hex digits) or raise GroupNotFound."""
    group = session.scalar(_BY_UUID, {"uuid": group_uuid})
    if group is None:
        raise GroupNotFound()
    return group


def get_group_by_name(session: Session, name: str) -> Group:
    """Return the group with this name or raise GroupNotFound."""
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        raise GroupNotFound(f"Group {name!r} not found.")
    return group


def is_member(raw: Raw, group_uuid: str, user_id: int) -> bool:
    """Tell whether the user belongs to the group (False if there is no such group)."""
    return raw.one(_IS_MEMBER, {"uuid": group_uuid, "user_id": user_id}) is not None


def _lock_group(session: Session, group_id: int) -> Group:
    """Return the group re-read under its row lock (PostgreSQL; SQLite's write lock covers it)."""
    lock_rows(session, _LOCK_GROUP, {"id": group_id})
    return session.get(Group, group_id, populate_existing=True)


def _name_taken() -> InvalidValue:
    return InvalidValue("name", "A group with this name already exists.")


def create_group(session: Session, actor: Actor | None, name: str,
                 limits: dict[str, int | None] | None = None) -> Group:
    """Create a group (limits default to null: the group defaults)."""
    group = Group(uuid=uuidlib.uuid4().hex, name=name, created_at=clock.now(), **(limits or {}))
    try:
        with write_transaction(session):
            session.add(group)
            session.flush()
            audit.record(session, actor, "group.create", name, "group", None,
                         {"name": name, **{c: getattr(group, c) for c in LIMIT_COLUMNS}})
    except IntegrityError:
        raise _name_taken() from None
    return group


def rename_group(session: Session, actor: Actor | None, group_uuid: str, name: str) -> Group:
    """Change a group's name."""
    try:
        with write_transaction(session):
            group = _lock_group(session, get_group(session, group_uuid).id)
            if group.name != name:
                audit.record(session, actor, "group.update", group.name, "name", group.name, name)
                group.name = name
    except IntegrityError:
        raise _name_taken() from None
    return group


def set_group_quota(session: Session, actor: Actor | None, group_uuid: str,
                    changes: dict[str, int | None]) -> Group:
    """Set some of a group's limits (`<period>_limit` -> value or None); keep the rest."""
    with write_transaction(session):
        group = _lock_group(session, get_group(session, group_uuid).id)
        for field, value in changes.items():
            old = getattr(group, field)
            if old != value:
                setattr(group, field, value)
                audit.record(session, actor, "group_quota.update", group.name, field, old, value)
    return group


def add_member(session: Session, actor: Actor | None, group_uuid: str,
               user_uuid: str) -> MemberRecord:
    """Make the user a member of the group from now on; already one: AlreadyMember."""
    with write_transaction(session):
        group_id = get_group(session, group_uuid).id
        user = lock_user(session, user_uuid)  # users before groups, as the ledger locks
        group = _lock_group(session, group_id)
        if session.get(Membership, (group.id, user.id)) is not None:
            raise AlreadyMember()
        membership = Membership(group_id=group.id, user_id=user.id, created_at=clock.now())
        session.add(membership)
        audit.record(session, actor, "membership.create", group.name, "member", None,
                     user.username, target_user=user)
    return MemberRecord(user.uuid, user.username, user.is_active, membership.created_at)


def remove_member(session: Session, actor: Actor | None, group_uuid: str,
                  user_uuid: str) -> None:
    """End the user's membership; what they were charged stays the group's usage."""
    with write_transaction(session):
        group_id = get_group(session, group_uuid).id
        user = lock_user(session, user_uuid)
        group = _lock_group(session, group_id)
        removed = session.execute(delete(Membership).where(
            Membership.group_id == group.id, Membership.user_id == user.id)).rowcount
        if not removed:
            raise MembershipNotFound()
        audit.record(session, actor, "membership.delete", group.name, "member", user.username,
                     None, target_user=user)


def list_members(session: Session, group: Group, offset: int = 0, limit: int = 10) -> Page:
    """Return one page of the group's members by username."""
    stmt = (select(User.uuid, User.username, User.is_active, Membership.created_at)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.group_id == group.id).order_by(User.username, User.id))
    page = paginate(session, stmt, offset, limit, rows=True)
    return Page([MemberRecord(*row) for row in page.items], page.total)


def list_groups(session: Session, tz: ZoneInfo, *, member_id: int | None = None,
                search: str | None = None, offset: int = 0, limit: int = 10) -> Page:
    """Return one page of groups by name with their usage; only `member_id`'s groups if given."""
    where = []
    if member_id is not None:
        where.append(Group.id.in_(select(Membership.group_id)
                                  .where(Membership.user_id == member_id)))
    if search:
        where.append(contains(Group.name, search))
    return _records(session, tz, where, offset, limit)


def group_record(session: Session, tz: ZoneInfo, group_uuid: str) -> GroupRecord:
    """Return one group with its member count and usage, or raise GroupNotFound."""
    found = _records(session, tz, [Group.uuid == group_uuid], 0, 1).items
    if not found:
        raise GroupNotFound()
    return found[0]


def _records(session: Session, tz: ZoneInfo, where: list, offset: int, limit: int) -> Page:
    """Return a page of the groups matching `where`, each read with its usage in one statement."""
    now = clock.now()
    wins, params = window_params(None, now, tz)
    stmt = (select(Group, _MEMBER_COUNT, *group_snapshot_columns(Group.id)).where(*where)
            .order_by(func.lower(Group.name), Group.id).params(params))
    page = paginate(session, stmt, offset, limit, rows=True, count=select(Group.id).where(*where))
    items = []
    for group, count, *snapshot in page.items:
        limits = [getattr(group, c) for c in LIMIT_COLUMNS]
        items.append(GroupRecord(group.uuid, group.name, *limits, group.created_at, count,
                                 report_from(snapshot, wins, limits, tz, now)))
    return Page(items, page.total)
