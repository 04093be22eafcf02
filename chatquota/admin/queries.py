"""Interim list queries for the dashboard, until the administration API's services land.

Same names and shapes as the planned `services.overview.list_quotas`,
`services.history.daily_history`/`list_events` and `services.audit.list_entries`;
this module goes away when those are merged.
"""

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from ..models import AuditEntry, UsageDay, UsageEvent, User
from ..periods import local_day
from ..services.usage import QuotaReport, quota_report


@dataclass(frozen=True)
class Page:
    """One slice of a list, and how many items the whole list has."""

    items: list
    total: int


@dataclass(frozen=True)
class UserQuota:
    """One row of the overview: who, and their quota."""

    username: str
    user_uuid: str
    report: QuotaReport


def list_quotas(session: Session, tz: ZoneInfo, *, search=None, ordering=None,
                offset: int = 0, limit: int = 10) -> Page:
    """Return one page of every user's quota (in Python: interim, small installs only)."""
    stmt = select(User).order_by(User.username)
    if search:
        stmt = stmt.where(func.lower(User.username).contains(search.lower(), autoescape=True))
    rows = [UserQuota(u.username, u.uuid, quota_report(session, u, tz)) for u in session.scalars(stmt)]
    name, desc = (ordering or "username").lstrip("-"), (ordering or "").startswith("-")
    if name != "username":
        period = name.split("_")[0]
        rows.sort(key=lambda r: next(p.usage for p in r.report.periods
                                     if p.window.period == period), reverse=desc)
    elif desc:
        rows.reverse()
    return Page(rows[offset:offset + limit], len(rows))


@dataclass(frozen=True)
class History:
    """Tokens per local day, oldest first, zeros included."""

    user_uuid: str | None
    days: list[tuple[date, int]]


def daily_history(session: Session, tz: ZoneInfo, days: int, user: User | None = None,
                  now: datetime | None = None) -> History:
    """Return a user's (or everybody's) tokens on each of the last `days` days."""
    today = local_day(now or clock.now(), tz)
    first = today - timedelta(days=days - 1)
    stmt = (select(UsageDay.day, func.sum(UsageDay.tokens))
            .where(UsageDay.day >= first, UsageDay.day <= today).group_by(UsageDay.day))
    if user is not None:
        stmt = stmt.where(UsageDay.user_id == user.id)
    totals = dict(session.execute(stmt).all())
    return History(user.uuid if user else None,
                   [(first + timedelta(days=i), int(totals.get(first + timedelta(days=i), 0)))
                    for i in range(days)])


def list_events(session: Session, tz: ZoneInfo, *, user: User | None = None,
                offset: int = 0, limit: int = 10) -> Page:
    """Return one page of usage events, newest first."""
    stmt = select(UsageEvent).order_by(UsageEvent.created_at.desc(), UsageEvent.id.desc())
    if user is not None:
        stmt = stmt.where(UsageEvent.user_id == user.id)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return Page(list(session.scalars(stmt.offset(offset).limit(limit))), total)


@dataclass(frozen=True)
class AuditRecord:
    """An audit entry as read back: values decoded, the target user's uuid joined."""

    created_at: datetime
    actor: str
    action: str
    target: str
    user_uuid: str | None
    field: str
    old_value: object
    new_value: object


def list_entries(session: Session, *, offset: int = 0, limit: int = 10) -> Page:
    """Return one page of audit records, newest first."""
    stmt = (select(AuditEntry, User.uuid).outerjoin(User, User.id == AuditEntry.target_user_id)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()))
    total = session.scalar(select(func.count(AuditEntry.id)))
    records = [
        AuditRecord(e.created_at, e.actor, e.action, e.target, uuid, e.field,
                    None if e.old_value is None else json.loads(e.old_value),
                    None if e.new_value is None else json.loads(e.new_value))
        for e, uuid in session.execute(stmt.offset(offset).limit(limit))
    ]
    return Page(records, total)
