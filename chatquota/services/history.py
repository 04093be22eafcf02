"""Reading the past: raw usage events, and tokens per local day for charts (user or group)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Double, cast, func, select
from sqlalchemy.orm import Session, joinedload

from .. import clock
from ..models import Group, GroupUsageDay, UsageDay, UsageEvent, User
from ..periods import day_start, local_day
from .limits import MAX_LIMIT
from .paging import Page, paginate

MAX_HISTORY_DAYS = 366
# Summed over every user, a day's tokens can pass what SQLite's integer SUM
# holds (2**63-1: "integer overflow") and what JSON clients read exactly
# (2**53-1). Summed as doubles they cannot overflow, and they stay exact
# below 2**53: every partial sum of non-negative integers is an integer no
# larger than the total. Above that, totals read MAX_TOTAL.
MAX_TOTAL = MAX_LIMIT


def bound(value: date | datetime, tz: ZoneInfo, upper: bool) -> datetime:
    """Return the instant a `since`/`until` value stands for.

    A date is the whole local day: `since` starts at its first instant,
    `until` ends just before the next day's. A date-time without an offset
    is local time.
    """
    if not isinstance(value, datetime):
        return day_start(value + timedelta(days=1) if upper else value, tz)
    return value if value.tzinfo else value.replace(tzinfo=tz)


def list_events(
    session: Session, tz: ZoneInfo, *, user: User | None = None,
    since: date | datetime | None = None, until: date | datetime | None = None,
    model: str | None = None, offset: int = 0, limit: int = 10,
) -> Page:
    """Return one page of usage events, newest first; all users' when `user` is None."""
    stmt = select(UsageEvent).options(joinedload(UsageEvent.user))
    if user is not None:
        stmt = stmt.where(UsageEvent.user_id == user.id)
    if since is not None:
        stmt = stmt.where(UsageEvent.created_at >= bound(since, tz, upper=False))
    if until is not None:
        end = bound(until, tz, upper=True)
        # A date's day ends before the next day starts; a date-time is inclusive.
        stmt = stmt.where(UsageEvent.created_at < end if not isinstance(until, datetime)
                          else UsageEvent.created_at <= end)
    if model is not None:
        stmt = stmt.where(UsageEvent.model == model)
    stmt = stmt.order_by(UsageEvent.created_at.desc(), UsageEvent.id.desc())
    return paginate(session, stmt, offset, limit)


def saturate(tokens: float | int) -> int:
    """Return a total as an integer, capped at MAX_TOTAL."""
    return min(int(tokens), MAX_TOTAL)


@dataclass(frozen=True)
class History:
    """Tokens per local day, oldest first, zeros included; every number capped at MAX_TOTAL."""

    user_uuid: str | None
    days: list[tuple[date, int]]
    group_uuid: str | None = None

    @property
    def total(self) -> int:
        """Return the tokens of all the days, capped at MAX_TOTAL."""
        return saturate(sum(tokens for _day, tokens in self.days))

    def fields(self) -> dict:
        """Return the history as the API's HistorySchema fields."""
        return {
            "user_uuid": self.user_uuid,
            "group_uuid": self.group_uuid,
            "start": self.days[0][0],
            "end": self.days[-1][0],
            "total": self.total,
            "days": [{"date": day, "tokens": tokens} for day, tokens in self.days],
        }


def daily_history(
    session: Session, tz: ZoneInfo, days: int, user: User | None = None,
    now: datetime | None = None, group: Group | None = None,
) -> History:
    """Return the tokens charged on each of the last `days` days.

    To a user, to a group (`group`), or (neither) to everybody.
    """
    today = local_day(now or clock.now(), tz)
    first = today - timedelta(days=days - 1)
    table = GroupUsageDay if group is not None else UsageDay
    stmt = (
        select(table.day, func.sum(cast(table.tokens, Double)))
        .where(table.day >= first, table.day <= today)
        .group_by(table.day)
    )
    if group is not None:
        stmt = stmt.where(GroupUsageDay.group_id == group.id)
    elif user is not None:
        stmt = stmt.where(UsageDay.user_id == user.id)
    totals = dict(session.execute(stmt).all())
    series = [(first + timedelta(days=i), saturate(totals.get(first + timedelta(days=i), 0)))
              for i in range(days)]
    return History(user.uuid if user else None, series, group.uuid if group else None)


@dataclass(frozen=True)
class ModelUsage:
    """One model's share of a user's recorded events (None: calls that named no model)."""

    model: str | None
    events: int
    input_tokens: int
    output_tokens: int
    charged_tokens: int


def usage_by_model(session: Session, tz: ZoneInfo, user, days: int,
                   now: datetime | None = None) -> list[ModelUsage]:
    """Return a user's tokens per model over the last `days` local days, most charged first.

    Read from the events (an index range of the user's), so pruned days no
    longer count here.
    """
    first = day_start(local_day(now or clock.now(), tz) - timedelta(days=days - 1), tz)
    charged = func.sum(cast(UsageEvent.charged_tokens, Double))
    rows = session.execute(
        select(UsageEvent.model, func.count(),
               func.sum(cast(func.coalesce(UsageEvent.input_tokens, 0), Double)),
               func.sum(cast(func.coalesce(UsageEvent.output_tokens, 0), Double)), charged)
        .where(UsageEvent.user_id == user.id, UsageEvent.created_at >= first)
        .group_by(UsageEvent.model).order_by(charged.desc(), UsageEvent.model)
    ).all()
    return [ModelUsage(model, count, saturate(i), saturate(o), saturate(n))
            for model, count, i, o, n in rows]
