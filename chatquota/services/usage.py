"""Reading usage: the per-period report behind the 15 fields of the API, for users and groups.

Reads only the per-day totals of the current month and week (at most 38
rows) and the live reservations of the user (or group), so the cost does
not depend on how much history is stored. One prepared statement for a
user, one for all of a user's groups, run without the ORM.
"""

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, bindparam, cast, func, select

from .. import clock
from ..dialect import Raw, prepare
from ..models import (
    Group,
    GroupUsageDay,
    Membership,
    Quota,
    Reservation,
    ReservationGroup,
    Setting,
    UsageDay,
    User,
)
from ..periods import PERIODS, Window, format_instant, windows
from .alerts import thresholds_column
from .errors import GroupNotFound
from .limits import GROUP, UNLIMITED, USER, default_key, effective_limit, remaining


@dataclass(frozen=True)
class PeriodUsage:
    """One period of a user's quota at a moment."""

    window: Window
    limit: int | None
    system_default: int
    usage: int

    @property
    def effective(self) -> int:
        return effective_limit(self.limit, self.system_default)

    @property
    def remaining(self) -> int | None:
        return remaining(self.effective, self.usage)


@dataclass(frozen=True)
class QuotaReport:
    """A user's (or group's) three periods, plus tokens held by live reservations."""

    periods: tuple[PeriodUsage, ...]
    held: int
    tz: ZoneInfo
    now: datetime

    def fields(self) -> dict:
        """Return the 15 fields of the seed API's usage response."""
        out = {}
        for p in self.periods:
            name = p.window.period
            out[f"{name}_limit"] = p.limit
            out[f"{name}_usage"] = p.usage
            out[f"{name}_remaining"] = p.remaining
            out[f"{name}_reset_at"] = format_instant(p.window.reset_at, self.tz)
            out[f"{name}_system_default"] = p.system_default
        return out

    def plus(self, tokens: int, held: int = 0) -> "QuotaReport":
        """Return the report after `tokens` more usage in every period and `held` more held."""
        periods = tuple(
            PeriodUsage(p.window, p.limit, p.system_default, p.usage + tokens)
            for p in self.periods
        )
        return QuotaReport(periods, self.held + held, self.tz, self.now)


def _total(column, *where):
    # The cast keeps PostgreSQL's SUM (numeric) an integer.
    return select(cast(func.coalesce(func.sum(column), 0), BigInteger)).where(*where)


def _snapshot(days, owned, held, scope: str) -> list:
    """Return defaults (3), usage per window (3) and live holds (1) as scalar subqueries."""
    settings = Setting.__table__.c

    def default(period):
        value = select(settings.value).where(settings.key == default_key(period, scope))
        return func.coalesce(value.scalar_subquery(), UNLIMITED)

    def used(period):
        return _total(days.tokens, owned, days.day >= bindparam(f"{period}_start"),
                      days.day < bindparam(f"{period}_end")).scalar_subquery()

    return [*map(default, PERIODS), *map(used, PERIODS), held.scalar_subquery()]


def snapshot_columns(user_id) -> list:
    """Return the report's columns for the user `user_id` (a bind or a column).

    Defaults (3), usage per window (3), live holds (1). The windows' bounds
    and `now` are binds: `<period>_start`, `<period>_end`, `now`.
    """
    days, holds = UsageDay.__table__.c, Reservation.__table__.c
    held = _total(holds.tokens, holds.user_id == user_id, holds.state == "active",
                  holds.expires_at > bindparam("now"))
    return _snapshot(days, days.user_id == user_id, held, USER)


def group_snapshot_columns(group_id) -> list:
    """Return the same columns for the group `group_id`: its defaults, day totals and holds."""
    days, holds = GroupUsageDay.__table__.c, ReservationGroup.__table__.c
    held = _total(holds.tokens, holds.group_id == group_id, holds.expires_at > bindparam("now"))
    return _snapshot(days, days.group_id == group_id, held, GROUP)


_users, _quotas, _groups = User.__table__, Quota.__table__, Group.__table__
_memberships = Membership.__table__
LIMIT_COLUMNS = tuple(f"{period}_limit" for period in PERIODS)
# Built once, run on every usage and check: one round trip, no ORM.
_REPORT = prepare(select(*snapshot_columns(bindparam("user_id"))))
# The same for the write path, which knows only a uuid: the user's id,
# whether it is active and its limits come first, the alert thresholds last.
STANDING = prepare(
    select(_users.c.id, _users.c.is_active, *(_quotas.c[c] for c in LIMIT_COLUMNS),
           *snapshot_columns(_users.c.id), thresholds_column())
    .select_from(_users.join(_quotas, _quotas.c.user_id == _users.c.id))
    .where(_users.c.uuid == bindparam("uuid"))
)
_GROUP_COLUMNS = (_groups.c.id, _groups.c.uuid, _groups.c.name,
                  *(_groups.c[c] for c in LIMIT_COLUMNS), *group_snapshot_columns(_groups.c.id))
# Every group of one user, in id order (the order admission names them).
_GROUPS_OF_USER = prepare(
    select(*_GROUP_COLUMNS)
    .select_from(_memberships.join(_groups, _groups.c.id == _memberships.c.group_id))
    .where(_memberships.c.user_id == bindparam("user_id"))
    .order_by(_groups.c.id)
)
_GROUP_BY_UUID = prepare(select(*_GROUP_COLUMNS).where(_groups.c.uuid == bindparam("uuid")))


def window_params(raw: Raw | None, now: datetime,
                  tz: ZoneInfo) -> tuple[tuple[Window, ...], dict]:
    """Return the current windows and the binds the snapshot columns need.

    Values as `raw`'s backend stores them, or (`raw` None) as the ORM takes them.
    """
    wins = windows(now, tz)
    stored_as = "orm" if raw is None else "postgresql" if raw.is_postgresql else "sqlite"
    params = dict(_window_binds(wins, stored_as))
    params["now"] = now if raw is None else raw.instant(now)
    return wins, params


@lru_cache(maxsize=16)
def _window_binds(wins: tuple[Window, ...], stored_as: str) -> tuple[tuple[str, object], ...]:
    # The windows change once a day: so do their binds.
    day = date.isoformat if stored_as == "sqlite" else _same
    return tuple((f"{w.period}_{edge}", day(getattr(w, edge)))
                 for w in wins for edge in ("start", "end"))


def _same(value):
    return value


def report_from(row, wins, limits, tz: ZoneInfo, now: datetime) -> QuotaReport:
    """Build a report from the snapshot columns in `row` (defaults, usage, held)."""
    periods = tuple(PeriodUsage(w, limits[i], row[i], row[i + 3]) for i, w in enumerate(wins))
    return QuotaReport(periods, row[6], tz, now)


@dataclass(frozen=True)
class GroupReport:
    """A group's report, with what a refusal names it by."""

    id: int
    uuid: str
    name: str
    report: QuotaReport

    def fields(self) -> dict:
        """Return the 15 fields of the group's quota."""
        return self.report.fields()


def _group_report(row, wins, tz: ZoneInfo, now: datetime) -> GroupReport:
    return GroupReport(row[0], row[1], row[2], report_from(row[6:], wins, row[3:6], tz, now))


def group_reports(raw: Raw, user_id: int, tz: ZoneInfo,
                  now: datetime | None = None) -> tuple[GroupReport, ...]:
    """Return the reports of every group the user belongs to, in id order (one statement)."""
    now = now or clock.now()
    wins, params = window_params(raw, now, tz)
    params["user_id"] = user_id
    rows = raw.execute(_GROUPS_OF_USER, params).fetchall()
    return tuple(_group_report(row, wins, tz, now) for row in rows)


def group_report(raw: Raw, group_uuid: str, tz: ZoneInfo) -> GroupReport:
    """Return the current report of one group, or raise GroupNotFound."""
    now = clock.now()
    wins, params = window_params(raw, now, tz)
    params["uuid"] = group_uuid
    row = raw.one(_GROUP_BY_UUID, params)
    if row is None:
        raise GroupNotFound()
    return _group_report(row, wins, tz, now)


def quota_report(raw: Raw, user, tz: ZoneInfo, now: datetime | None = None) -> QuotaReport:
    """Return the current quota report of `user` (anything with `id` and `quota` limits)."""
    now = now or clock.now()
    wins, params = window_params(raw, now, tz)
    params["user_id"] = user.id
    row = raw.one(_REPORT, params)
    limits = [getattr(user.quota, c) for c in LIMIT_COLUMNS]
    return report_from(row, wins, limits, tz, now)
