"""The deliverer's queue: alerts become deliveries, due ones are claimed, attempts recorded.

Each step is a short write transaction (SQLite: the writer lock and BEGIN
IMMEDIATE, as the ledger's; PostgreSQL: rows taken with `FOR UPDATE SKIP
LOCKED`, so deliverers on several workers or hosts split the work instead
of queueing). Nothing here waits on HTTP: a claim commits before anything
is sent, and the outcome is recorded in a transaction of its own.

Claiming sets a lease (`claimed_until`) and moves `next_attempt_at` to the
same instant: if the worker dies while sending, the delivery is due again
when the lease ends, and the attempt it lost is logged then. An outcome is
recorded only by the holder of the current lease, so two workers never
both settle one attempt. At least once: a receiver may see an event twice
(e.g. it answered, then the worker died before recording), never zero times
while the retry window lasts; the event id lets it deduplicate.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, func, insert, literal, null, or_, select, update
from sqlalchemy.engine import Engine

from ..dialect import Raw, prepare, raw_write
from ..models import Alert, DeliveryAttempt, Group, User, Webhook, WebhookDelivery
from .events import THRESHOLD, Crossing, Event

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DISPATCH_BATCH = 100  # new alerts fanned out per transaction
LOST = "No outcome recorded: the worker sending it stopped, and its lease ran out."
MAX_ERROR = 500  # characters of an error kept

_d, _w, _a, _u, _g = (WebhookDelivery.__table__, Webhook.__table__, Alert.__table__,
                      User.__table__, Group.__table__)
_attempts = DeliveryAttempt.__table__

# One cheap read per poll: is anything new or due? (Both on partial indexes.)
_ANYTHING = prepare(select(or_(
    exists().where(_a.c.dispatched_at.is_(None)),
    exists().where(_d.c.state == PENDING, _d.c.next_attempt_at <= bindparam("now")))))
# `.offset(0)` in statements with a LIMIT: SQLite's compiler adds an OFFSET
# anyway, as a value bound at compile time, which a prepared statement lacks.
_UNDISPATCHED = prepare(select(_a.c.id, _a.c.uuid).where(_a.c.dispatched_at.is_(None))
                        .order_by(_a.c.id).limit(DISPATCH_BATCH).offset(0)
                        .with_for_update(skip_locked=True))
# A delivery per webhook subscribed now: one alert's fan-out.
_FAN_OUT = prepare(insert(_d).from_select(
    ["webhook_id", "alert_id", "event_uuid", "event_type", "state", "attempts",
     "next_attempt_at", "created_at"],
    select(_w.c.id, bindparam("alert_id"), bindparam("alert_uuid"), literal(THRESHOLD),
           literal(PENDING), literal(0), bindparam("now"), bindparam("now"))
    .where(_w.c.events.contains(THRESHOLD))))
_DISPATCHED = prepare(update(_a).where(_a.c.id == bindparam("alert_id"))
                      .values(dispatched_at=bindparam("now")))
_DUE = prepare(
    select(_d.c.id, _d.c.claimed_until, _d.c.attempts, _d.c.created_at, _d.c.event_uuid,
           _d.c.event_type, _w.c.url, _w.c.secret, _w.c.format, _a.c.subject, _a.c.subject_uuid,
           func.coalesce(_u.c.username, _g.c.name), _a.c.period, _a.c.threshold, _a.c.usage, _a.c.effective_limit,
           _a.c.reset_at, _a.c.created_at)
    .select_from(_d.join(_w, _w.c.id == _d.c.webhook_id)
                 .outerjoin(_a, _a.c.id == _d.c.alert_id)
                 .outerjoin(_u, and_(_a.c.subject == "user", _u.c.id == _a.c.subject_id))
                 .outerjoin(_g, and_(_a.c.subject == "group", _g.c.id == _a.c.subject_id)))
    .where(_d.c.state == PENDING, _d.c.next_attempt_at <= bindparam("now"))
    .order_by(_d.c.next_attempt_at).limit(bindparam("limit")).offset(0)
    .with_for_update(of=_d, skip_locked=True))
_CLAIM = prepare(update(_d).where(_d.c.id == bindparam("delivery_id")).values(
    claimed_until=bindparam("lease"), next_attempt_at=bindparam("lease"),
    attempts=bindparam("attempts_made")))
_LOG = prepare(insert(_attempts).values({c: bindparam(c) for c in (
    "delivery_id", "started_at", "status_code", "error", "duration_ms")}))
# Only the holder of the current lease settles an attempt.
_SETTLE = prepare(
    update(_d).where(_d.c.id == bindparam("delivery_id"), _d.c.claimed_until == bindparam("lease"))
    .values(state=bindparam("new_state"), attempts=_d.c.attempts + 1,
            next_attempt_at=bindparam("next_at"), claimed_until=null(),
            last_status_code=bindparam("code"), last_error=bindparam("message"),
            finished_at=bindparam("finished")))


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: an HTTP status or an error, and when and how long."""

    started_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Retry:
    """When to try again: `base` seconds doubling per attempt, at most `cap`, within `window`."""

    base_seconds: int
    window: timedelta
    cap_seconds: int = 3600

    def next_attempt(self, attempts_made: int, created_at: datetime, now: datetime):
        """Return when to try again after `attempts_made` failures, or None: give up."""
        delay = min(self.cap_seconds, self.base_seconds * 2 ** min(attempts_made - 1, 30))
        due = now + timedelta(seconds=delay)
        return None if due > created_at + self.window else due


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of, with what it takes to send it."""

    id: int
    lease: datetime
    attempts: int  # made before this one
    created_at: datetime
    url: str
    secret: str
    format: str
    event: Event


def anything_due(raw: Raw, now: datetime) -> bool:
    """Tell whether there are alerts to fan out or deliveries due (one indexed read)."""
    return bool(raw.one(_ANYTHING, {"now": raw.instant(now)})[0])


def take_due(engine: Engine, now: datetime, lease_seconds: float, limit: int) -> list[Claimed]:
    """Fan out new alerts, then claim up to `limit` due deliveries for `lease_seconds`."""
    lease = now + timedelta(seconds=lease_seconds)
    with raw_write(engine) as raw:
        stamp = raw.instant(now)
        for alert_id, alert_uuid in raw.execute(_UNDISPATCHED).fetchall():
            raw.execute(_FAN_OUT, {"alert_id": alert_id, "alert_uuid": alert_uuid, "now": stamp})
            raw.execute(_DISPATCHED, {"alert_id": alert_id, "now": stamp})
        rows = raw.execute(_DUE, {"now": stamp, "limit": limit}).fetchall()
        claimed = []
        for row in rows:
            attempts = row[2]
            if row[1] is not None:  # claimed before and never settled: that worker died
                _log(raw, row[0], Outcome(Raw.read_instant(row[1]), None, LOST, None))
                attempts += 1
            raw.execute(_CLAIM, {"delivery_id": row[0], "lease": raw.instant(lease),
                                 "attempts_made": attempts})
            claimed.append(_claimed(row, lease, attempts))
    return claimed


def _claimed(row, lease: datetime, attempts: int) -> Claimed:
    crossing = None
    if row[9] is not None:
        crossing = Crossing(row[9], row[10], row[11], row[12], row[13], row[14], row[15],
                            Raw.read_instant(row[16]))
    created = Raw.read_instant(row[17] if crossing else row[3])
    return Claimed(row[0], lease, attempts, Raw.read_instant(row[3]), row[6], row[7], row[8],
                   Event(row[4], row[5], created, crossing))


def _error(outcome: Outcome) -> str | None:
    return None if outcome.error is None else outcome.error[:MAX_ERROR]


def _log(raw: Raw, delivery_id: int, outcome: Outcome) -> None:
    raw.execute(_LOG, {"delivery_id": delivery_id, "started_at": raw.instant(outcome.started_at),
                       "status_code": outcome.status_code, "error": _error(outcome),
                       "duration_ms": outcome.duration_ms})


def record(engine: Engine, results: list[tuple[Claimed, Outcome]], retry: Retry,
           now: datetime) -> None:
    """Log each attempt and settle its delivery: delivered, due again later, or failed."""
    with raw_write(engine) as raw:
        for claimed, outcome in results:
            attempts = claimed.attempts + 1
            next_at = None if outcome.delivered else retry.next_attempt(
                attempts, claimed.created_at, now)
            state = DELIVERED if outcome.delivered else PENDING if next_at else FAILED
            settled = raw.execute(_SETTLE, {
                "delivery_id": claimed.id, "lease": raw.instant(claimed.lease),
                "new_state": state, "next_at": next_at and raw.instant(next_at),
                "code": outcome.status_code, "message": _error(outcome),
                "finished": None if state == PENDING else raw.instant(now)}).rowcount
            if settled:  # else its lease ran out and another worker took it, or it was deleted
                _log(raw, claimed.id, outcome)
