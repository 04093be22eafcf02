"""Every user's quota in one sortable, searchable, paginated list.

One statement does the work: users joined with their limits and with the
per-day totals of the current month and week aggregated per user (GROUP BY),
so sorting by usage or remaining happens in SQL over all users and the cost
grows with the number of users, never with the number of stored events.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from .. import clock
from ..models import Group, Membership, Quota, UsageDay, User
from ..periods import PERIODS, windows
from .errors import InvalidValue
from .limits import UNLIMITED, get_defaults
from .paging import Page, contains, paginate
from .usage import PeriodUsage, QuotaReport

ORDERING_FIELDS = ("username",) + tuple(
    f"{period}_{kind}" for period in PERIODS for kind in ("limit", "usage", "remaining")
)


@dataclass(frozen=True)
class UserQuota:
    """One row of the overview: who, and the 15 fields of their quota."""

    username: str
    user_uuid: str
    report: QuotaReport

    def fields(self) -> dict:
        return {"username": self.username, "user_uuid": self.user_uuid, **self.report.fields()}


def parse_ordering(ordering: str | None) -> list[tuple[str, bool]]:
    """Parse `-daily_usage,username` into [(field, descending), ...]; 400 if unknown."""
    terms = [t.strip() for t in (ordering or "").split(",") if t.strip()]
    parsed = [(t.lstrip("-"), t.startswith("-")) for t in terms]
    unknown = [name for name, _desc in parsed if name not in ORDERING_FIELDS]
    if unknown:
        raise InvalidValue("ordering", f"Unknown ordering field {unknown[0]!r}; "
                                       f"choose from {', '.join(ORDERING_FIELDS)}.")
    return parsed or [("username", False)]


def _usage_totals(wins):
    """Return a subquery: user_id and tokens in each current window."""
    first, last = min(w.start for w in wins), max(w.end for w in wins)
    # The cast keeps PostgreSQL's SUM (numeric) an integer.
    sums = [
        cast(func.sum(case((and_(UsageDay.day >= w.start, UsageDay.day < w.end), UsageDay.tokens),
                           else_=0)), BigInteger).label(f"{w.period}_usage")
        for w in wins
    ]
    return (
        select(UsageDay.user_id, *sums)
        .where(UsageDay.day >= first, UsageDay.day < last)
        .group_by(UsageDay.user_id)
        .subquery("usage_totals")
    )


def _columns(totals, defaults: dict[str, int]) -> dict:
    """Return the sortable columns: username, and per period limit, usage, remaining."""
    columns = {"username": func.lower(User.username)}
    for period in PERIODS:
        limit = getattr(Quota, f"{period}_limit")
        used = func.coalesce(totals.c[f"{period}_usage"], 0)
        effective = func.coalesce(limit, literal(defaults[period]))
        left = effective - used
        columns[f"{period}_limit"] = limit
        columns[f"{period}_usage"] = used
        columns[f"{period}_remaining"] = case(
            (effective == UNLIMITED, None), (left > 0, left), else_=0
        )
    return columns


def _order_by(columns: dict, ordering: list[tuple[str, bool]]) -> list:
    # Null (a default limit, or unlimited remaining) sorts as the largest
    # value on every backend; ties go by username, and the id keeps pages stable.
    keys = [columns[name].desc().nulls_first() if desc else columns[name].asc().nulls_last()
            for name, desc in ordering]
    return keys + [columns["username"].asc(), User.id.asc()]


def list_quotas(
    session: Session, tz: ZoneInfo, *, search: str | None = None, ordering: str | None = None,
    offset: int = 0, limit: int = 10, now: datetime | None = None, group: Group | None = None,
) -> Page:
    """Return one page of every user's quota (or `group`'s members'), searched and sorted in SQL."""
    order = parse_ordering(ordering)
    now = now or clock.now()
    wins = windows(now, tz)
    defaults = get_defaults(session)
    totals = _usage_totals(wins)
    columns = _columns(totals, defaults)
    where = [contains(User.username, search)] if search else []
    if group is not None:
        where.append(User.id.in_(select(Membership.user_id)
                                 .where(Membership.group_id == group.id)))
    stmt = (
        select(User.username, User.uuid, *(columns[f"{p}_{k}"].label(f"{p}_{k}")
                                           for p in PERIODS for k in ("limit", "usage")))
        .join(Quota, Quota.user_id == User.id)
        .outerjoin(totals, totals.c.user_id == User.id)
        .where(*where)
        .order_by(*_order_by(columns, order))
    )
    # Every user has one row: counting users skips the joins and the sums.
    page = paginate(session, stmt, offset, limit, rows=True,
                    count=select(User.id).where(*where))
    items = [_user_quota(row._mapping, wins, defaults, tz, now) for row in page.items]
    return Page(items, page.total)


def _user_quota(row, wins, defaults, tz, now) -> UserQuota:
    periods = tuple(
        PeriodUsage(w, row[f"{w.period}_limit"], defaults[w.period], row[f"{w.period}_usage"])
        for w in wins
    )
    return UserQuota(row["username"], row["uuid"], QuotaReport(periods, 0, tz, now))
