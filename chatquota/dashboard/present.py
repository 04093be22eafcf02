"""What the pages show, computed in Python: usage bars, chart geometry, times.

Templates only place these values; nothing here touches the database.
"""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from ..services.admission import admit
from ..services.errors import QuotaExceeded
from ..services.history import History
from ..services.limits import UNLIMITED
from ..services.usage import GroupReport, PeriodUsage, QuotaReport

WARN_PERCENT = 80


def tokens(value: int | None) -> str:
    """Format a token count with thousands separators."""
    return "" if value is None else f"{value:,}"


def limit_text(limit: int) -> str:
    """Format an effective limit: a number, or "Unlimited" for -1."""
    return "Unlimited" if limit == UNLIMITED else tokens(limit)


def limit_caption(limit: int | None, system_default: int,
                  default_name: str = "System default") -> str:
    """Describe a stored limit as the Waldur UI does: "System default (N)", "Unlimited", N."""
    if limit is None:
        return f"{default_name} ({limit_text(system_default)})"
    return limit_text(limit)


@dataclass(frozen=True)
class Bar:
    """One period's usage against its effective limit, ready to draw."""

    period: str
    usage: int
    limit: int
    caption: str
    percent: float | None  # None when unlimited
    level: str  # "ok", "warn" (>= 80 %), "full" (>= 100 %), "unlimited"
    reset_at: datetime

    @property
    def width(self) -> float:
        """Return the filled share of the bar, 0..100."""
        return 0.0 if self.percent is None else min(100.0, self.percent)

    @property
    def text(self) -> str:
        """Return "used / limit (pct)" for people and screen readers."""
        if self.percent is None:
            return f"{tokens(self.usage)} used, unlimited"
        return f"{tokens(self.usage)} / {tokens(self.limit)} ({self.percent:.0f}%)"


def bar(p: PeriodUsage, default_name: str = "System default") -> Bar:
    """Return the bar of one period of a quota report (a group's: default_name "Group default")."""
    limit = p.effective
    if limit == UNLIMITED:
        percent, level = None, "unlimited"
    else:
        percent = 100.0 if limit == 0 else 100.0 * p.usage / limit
        level = "full" if percent >= 100 else "warn" if percent >= WARN_PERCENT else "ok"
    return Bar(p.window.period, p.usage, limit,
               limit_caption(p.limit, p.system_default, default_name), percent, level,
               p.window.reset_at)


def bars(report, default_name: str = "System default") -> list[Bar]:
    """Return the daily, weekly and monthly bars of a quota report."""
    return [bar(p, default_name) for p in report.periods]


def group_bars(report) -> list[Bar]:
    """Return the bars of a group's quota report: null limits follow the group default."""
    return bars(report, "Group default")


def refusal_now(report: QuotaReport, groups: list[GroupReport]) -> str | None:
    """Return why a new request would be refused now (naming a refusing group), else None."""
    try:
        admit(report, 0, groups=groups)
    except QuotaExceeded as refused:
        return refused.refusal.detail
    return None


@dataclass(frozen=True)
class Column:
    """One day of a chart: where its bar goes and what it says."""

    x: float
    y: float
    height: float
    day: date
    tokens: int
    label: str | None


@dataclass(frozen=True)
class Chart:
    """A bar chart of tokens per day, in SVG user units."""

    width: int
    height: int
    top: int
    bottom: int
    bar_width: float
    peak: int
    total: int
    columns: list[Column]


def chart(history: History, width: int = 960, height: int = 180) -> Chart:
    """Lay out tokens per day as bars: peak at the top, a date label every 7 days."""
    days = history.days
    top, bottom, left = 18, 24, 28  # room for the peak and the edge labels
    plot = height - top - bottom
    peak = max((t for _d, t in days), default=0)
    step = (width - 2 * left) / max(1, len(days))
    columns = []
    for i, (day, count) in enumerate(days):
        h = 0.0 if peak == 0 else plot * count / peak
        label = day.strftime("%b %d") if (len(days) - 1 - i) % 7 == 0 else None
        columns.append(Column(round(left + i * step + step * 0.1, 2),
                              round(top + plot - h, 2), round(h, 2), day, count, label))
    return Chart(width, height, top, bottom, round(step * 0.8, 2), peak, history.total, columns)


def local_time(instant: datetime | None, tz: ZoneInfo) -> str:
    """Format an instant in the configured time zone: `2026-12-01 00:00 CET`."""
    if instant is None:
        return ""
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def iso(instant: datetime) -> str:
    """Format an instant for `<time datetime>` and the countdown script."""
    return instant.isoformat()
