"""Reading usage: the per-period report behind the 15 fields of the API.

Reads only the per-day totals of the current month and week (at most 38
rows) and the user's live reservations, so the cost does not depend on how
much history is stored.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from ..models import Reservation, UsageDay, User
from ..periods import Window, format_instant, windows
from .limits import effective_limit, get_defaults, remaining


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
    """A user's three periods, plus tokens held by live reservations."""

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

    def plus(self, tokens: int) -> "QuotaReport":
        """Return the report after `tokens` more usage in every period."""
        periods = tuple(
            PeriodUsage(p.window, p.limit, p.system_default, p.usage + tokens)
            for p in self.periods
        )
        return QuotaReport(periods, self.held, self.tz, self.now)


def usage_in_windows(session: Session, user_id: int, wins: tuple[Window, ...]) -> list[int]:
    """Return the user's tokens in each window, from the per-day totals."""
    first = min(w.start for w in wins)
    last = max(w.end for w in wins)
    rows = session.execute(
        select(UsageDay.day, UsageDay.tokens).where(
            UsageDay.user_id == user_id, UsageDay.day >= first, UsageDay.day < last
        )
    ).all()
    return [sum(t for day, t in rows if w.start <= day < w.end) for w in wins]


def held_tokens(session: Session, user_id: int, now: datetime) -> int:
    """Return the tokens held by the user's active, unexpired reservations."""
    return session.scalar(
        select(func.coalesce(func.sum(Reservation.tokens), 0)).where(
            Reservation.user_id == user_id,
            Reservation.state == "active",
            Reservation.expires_at > now,
        )
    )


def quota_report(session: Session, user: User, tz: ZoneInfo, now: datetime | None = None):
    """Return the user's current quota report."""
    now = now or clock.now()
    wins = windows(now, tz)
    defaults = get_defaults(session)
    usages = usage_in_windows(session, user.id, wins)
    periods = tuple(
        PeriodUsage(w, getattr(user.quota, f"{w.period}_limit"), defaults[w.period], used)
        for w, used in zip(wins, usages)
    )
    return QuotaReport(periods, held_tokens(session, user.id, now), tz, now)
