"""Alerts: the thresholds, and the outbox metering writes when usage crosses one.

A threshold is a percentage of a period's effective limit (default 80 and
100). The event that takes a subject's usage in a period from below
`threshold * limit / 100` to at least that writes one alert row, in the
ledger's transaction that records the event: an alert exists exactly when
the usage that crossed exists, and a unique key (subject, period, period
start, threshold) keeps a second one out, e.g. after a limit was raised and
crossed again. Unlimited periods never alert, and neither does a limit of 0
(the subject is blocked on purpose: no budget runs out).

This module only writes rows; the deliverer (chatquota/deliverer/) reads
them and knows about webhooks and HTTP. After a transaction that wrote an
alert commits, `WRITTEN` is set so this process's deliverer wakes at once.

Thresholds are one integer setting (the settings table holds integers):
three decimal digits per threshold, ascending, so 80 and 100 are stored as
80100 and 50, 80, 100 as 50080100; 0 means no alerts. No row: the default.
"""

import threading
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from ..dialect import Raw, insert, insert_missing, lock_rows, prepare, write_transaction
from ..ids import time_ordered_uuid
from ..models import Alert, Setting
from . import audit
from .audit import Actor

THRESHOLDS_KEY = "alert_thresholds"
DEFAULT_THRESHOLDS = (80, 100)
MAX_THRESHOLDS = 6  # three digits each: 18 digits fit a BIGINT
MAX_PERCENT = 999

# Set when a transaction that wrote alerts has committed (in this process).
WRITTEN = threading.Event()

_settings, _alerts = Setting.__table__, Alert.__table__
_LOCK_SETTING = select(Setting).where(Setting.key == THRESHOLDS_KEY).with_for_update()
_ALERT_COLUMNS = ("uuid", "subject", "subject_id", "subject_uuid", "period", "period_start",
                  "threshold", "usage", "effective_limit", "reset_at", "created_at")


def _insert_alert(dialect: str):
    stmt = insert(dialect, Alert).values({c: bindparam(c) for c in _ALERT_COLUMNS})
    return stmt.on_conflict_do_nothing(
        index_elements=["subject", "subject_id", "period", "period_start", "threshold"])


_INSERT_ALERT = prepare(_insert_alert("sqlite"), _insert_alert("postgresql"))


def pack(thresholds) -> int:
    """Return the stored form of thresholds (percentages 1..999, at most 6)."""
    value = 0
    for percent in sorted(set(thresholds)):
        value = value * 1000 + percent
    return value


@lru_cache(maxsize=16)
def unpack(value: int) -> tuple[int, ...]:
    """Return the thresholds, ascending, of their stored form."""
    found = []
    while value > 0:
        value, percent = divmod(value, 1000)
        found.append(percent)
    return tuple(reversed(found))


def thresholds_column():
    """Return a column with the stored thresholds (for a statement that reads them anyway)."""
    stored = select(_settings.c.value).where(_settings.c.key == THRESHOLDS_KEY)
    return func.coalesce(stored.scalar_subquery(), pack(DEFAULT_THRESHOLDS))


def get_thresholds(session: Session) -> tuple[int, ...]:
    """Return the alert thresholds in percent, ascending (empty: alerts are off)."""
    stored = session.scalar(select(Setting.value).where(Setting.key == THRESHOLDS_KEY))
    return DEFAULT_THRESHOLDS if stored is None else unpack(stored)


def set_thresholds(session: Session, actor: Actor | None, thresholds) -> tuple[int, ...]:
    """Replace the alert thresholds (percentages); return them, ascending."""
    new = unpack(pack(thresholds))
    with write_transaction(session):
        # Lock the row (made first if missing), so the audited "from" is never stale.
        default = {"key": THRESHOLDS_KEY, "value": pack(DEFAULT_THRESHOLDS)}
        insert_missing(session, Setting, [default], keys=["key"])
        lock_rows(session, _LOCK_SETTING, {})
        old = get_thresholds(session)
        if old != new:
            session.execute(update(Setting).where(Setting.key == THRESHOLDS_KEY)
                            .values(value=pack(new)))
            audit.record(session, actor, "thresholds.update", "system", THRESHOLDS_KEY,
                         list(old), list(new))
    return new


def crossed(thresholds, usage_before: int, usage_after: int, limit: int) -> list[int]:
    """Return the thresholds that usage crosses going from `usage_before` to `usage_after`.

    Only a positive limit has thresholds to cross; integers only, so 80 % of
    a limit of 7 is crossed exactly when usage * 100 reaches 560.
    """
    if limit <= 0:
        return []
    return [t for t in thresholds if usage_before * 100 < t * limit <= usage_after * 100]


@dataclass(frozen=True)
class Subject:
    """Whose usage it is: a user or a group, by id and uuid."""

    kind: str
    id: int
    uuid: str


def record_crossings(raw: Raw, subject: Subject, period: str, usage_before: int,
                     usage_after: int, limit: int, period_start: date, reset_at: datetime,
                     thresholds, now: datetime) -> int:
    """Write an alert for each threshold crossed in one period (inside the ledger); return how many.

    Nothing crossed: no statement. A crossing already alerted in this
    period is skipped by the unique key.
    """
    written = 0
    for threshold in crossed(thresholds, usage_before, usage_after, limit):
        written += raw.execute(_INSERT_ALERT, {
            "uuid": time_ordered_uuid(), "subject": subject.kind, "subject_id": subject.id,
            "subject_uuid": subject.uuid, "period": period, "period_start": raw.day(period_start),
            "threshold": threshold, "usage": usage_after, "effective_limit": limit,
            "reset_at": raw.instant(reset_at), "created_at": raw.instant(now),
        }).rowcount
    if written:
        raw.on_commit(WRITTEN.set)
    return written


def record_report_crossings(raw: Raw, subject: Subject, report, tokens: int, thresholds) -> int:
    """Write the alerts `tokens` more usage crosses in every period of `report` (usage before)."""
    return sum(
        record_crossings(raw, subject, p.window.period, p.usage, p.usage + tokens, p.effective,
                         p.window.start, p.window.reset_at, thresholds, report.now)
        for p in report.periods)


@dataclass(frozen=True)
class Notice:
    """A period in which usage is at or past a threshold: what `/me/` tells the user."""

    period: str
    threshold: int
    percent: int  # of the limit used, rounded down
    reset_at: datetime


def notices(report, thresholds) -> list[Notice]:
    """Return, per limited period at or past a threshold, the highest threshold reached."""
    found = []
    for p in report.periods:
        limit = p.effective
        reached = [t for t in thresholds if limit > 0 and t * limit <= p.usage * 100]
        if reached:
            found.append(Notice(p.window.period, reached[-1], p.usage * 100 // limit,
                                p.window.reset_at))
    return found
