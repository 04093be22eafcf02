"""Admission and recording of usage: `check` reads, `consume` writes through the ledger.

A consume is admitted and recorded in one ledger transaction, so no number
of concurrent callers can push a user, or a group, past a limit (see
services/ledger.py). What an event is charged is its tokens weighted by the
model's weights as they are in that transaction (services/weights.py); the
charge counts against the user and every group the user belongs to then.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Date, bindparam, insert, select
from sqlalchemy.engine import Engine

from .. import clock, metrics
from ..dialect import Raw, adding_upsert, prepare
from ..ids import time_ordered_uuid
from ..models import GroupUsageDay, Membership, UsageDay, UsageEvent, User
from . import alerts
from .admission import admit
from .errors import IdempotencyConflict, InvalidValue, QuotaExceeded, UserInactive, UserNotFound
from .ledger import ledger_for
from .limits import MAX_LIMIT
from .usage import (
    STANDING,
    GroupReport,
    QuotaReport,
    group_reports,
    quota_report,
    report_from,
    window_params,
)
from .weights import charge, weights_of

_events, _users, _members = UsageEvent.__table__, User.__table__, Membership.__table__
_EVENT_FIELDS = ("id", "uuid", "tokens", "input_tokens", "output_tokens", "model",
                 "charged_tokens", "enforced", "idempotency_key", "created_at")
_EVENT_SELECT = select(*(_events.c[f] for f in _EVENT_FIELDS), _users.c.uuid,
                       _events.c.request_hash).join(_users, _users.c.id == _events.c.user_id)
_EVENT_BY_KEY = prepare(_EVENT_SELECT.where(_events.c.user_id == bindparam("user_id"),
                                            _events.c.idempotency_key == bindparam("key")))
_EVENT_BY_ID = prepare(_EVENT_SELECT.where(_events.c.id == bindparam("id")))
_INSERT_EVENT = prepare(insert(_events).values(
    {c: bindparam(c) for c in ("uuid", "user_id", "tokens", "input_tokens", "output_tokens",
                               "model", "charged_tokens", "enforced", "created_at",
                               "idempotency_key", "request_hash")}).returning(_events.c.id))
_DAY_COLUMNS = ("user_id", "day", "tokens")
_ADD_TO_DAY = prepare(adding_upsert(UsageDay, _DAY_COLUMNS, ("user_id", "day"), ("tokens",)),
                      adding_upsert(UsageDay, _DAY_COLUMNS, ("user_id", "day"), ("tokens",),
                                    "postgresql"))
# One statement adds the charge to the day of every group the user belongs to.
_GROUP_DAY_ROWS = select(_members.c.group_id, bindparam("day", type_=Date),
                         bindparam("tokens", type_=BigInteger)).where(
    _members.c.user_id == bindparam("user_id"))
_GROUP_DAY_KEYS = (("group_id", "day", "tokens"), ("group_id", "day"), ("tokens",))
_ADD_TO_GROUP_DAYS = prepare(
    adding_upsert(GroupUsageDay, *_GROUP_DAY_KEYS, rows=_GROUP_DAY_ROWS),
    adding_upsert(GroupUsageDay, *_GROUP_DAY_KEYS, "postgresql", rows=_GROUP_DAY_ROWS))
_USER_ID = prepare(select(_users.c.id).where(_users.c.uuid == bindparam("uuid")))


def user_id_of(raw: Raw, user_uuid: str) -> int | None:
    """Return the id of the user with this uuid, or None."""
    row = raw.one(_USER_ID, {"uuid": user_uuid})
    return None if row is None else row[0]


def request_hash(**fields) -> str:
    """Return a fingerprint of a request body, to tell retries from reuse."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class EventRecord:
    """A stored usage event, as the API shows it."""

    id: int
    uuid: str
    tokens: int
    input_tokens: int | None
    output_tokens: int | None
    model: str | None
    charged_tokens: int
    enforced: bool
    idempotency_key: str | None
    created_at: datetime
    user_uuid: str

    @classmethod
    def from_row(cls, row) -> "EventRecord":
        values = dict(zip(_EVENT_FIELDS, row))
        values["enforced"] = bool(values["enforced"])
        values["created_at"] = Raw.read_instant(values["created_at"])
        return cls(**values, user_uuid=row[len(_EVENT_FIELDS)])


def event_by_id(raw: Raw, event_id: int) -> EventRecord | None:
    """Return the event with this id, or None (pruned)."""
    row = raw.one(_EVENT_BY_ID, {"id": event_id})
    return None if row is None else EventRecord.from_row(row)


@dataclass(frozen=True)
class Standing:
    """A user's state in the ledger's transaction: id, whether active, report, groups, thresholds."""

    user_id: int
    user_uuid: str
    is_active: bool
    report: QuotaReport
    groups: tuple[GroupReport, ...]
    thresholds: tuple[int, ...]


def read_standing(raw: Raw, user_uuid: str, tz: ZoneInfo) -> Standing:
    """Return the user's current standing, or raise UserNotFound.

    Two statements: the user's report, then every group's the user belongs
    to (the ledger holds their locks, so the memberships cannot change).
    """
    now = clock.now()
    wins, params = window_params(raw, now, tz)
    params["uuid"] = user_uuid
    row = raw.one(STANDING, params)
    if row is None:
        raise UserNotFound()
    report = report_from(row[5:12], wins, row[2:5], tz, now)
    return Standing(row[0], user_uuid, bool(row[1]), report, group_reports(raw, row[0], tz, now),
                    alerts.unpack(row[12]))


def replayed(raw: Raw, statement, user_id: int, key: str | None, fingerprint: str):
    """Return the row an earlier call stored under this idempotency key, or None.

    The row's last column is its request fingerprint; the same key with a
    different request is an IdempotencyConflict. Callers run in the ledger's
    transaction, so two concurrent duplicates cannot both miss.
    """
    if key is None:
        return None
    row = raw.one(statement, {"user_id": user_id, "key": key})
    if row is not None and row[-1] != fingerprint:
        raise IdempotencyConflict()
    return row


def record_event(raw: Raw, standing: Standing, tokens: int, charged: int, *, enforced: bool,
                 input_tokens: int | None = None, output_tokens: int | None = None,
                 model: str | None = None, idempotency_key: str | None = None,
                 fingerprint: str | None = None) -> EventRecord:
    """Insert a usage event and add its charge to its local day's totals (inside the ledger).

    The charge counts for the user and for every group in the standing: the
    groups the user belongs to now. Usage in any period, of the user or of a
    group, stays within 2**53-1 (what JSON clients read exactly and what a
    limit can be); an event that would pass it is refused. An alert threshold
    the charge crosses, of the user or of a group, writes its alert in the same
    transaction (services/alerts.py); nothing crossed costs no statement.
    """
    report = standing.report
    subjects = [report, *(group.report for group in standing.groups)]
    if max(p.usage for r in subjects for p in r.periods) + charged > MAX_LIMIT:
        raise InvalidValue("tokens", f"This would take usage past {MAX_LIMIT} tokens in a period.")
    uuid = time_ordered_uuid()
    event_id = raw.one(_INSERT_EVENT, {
        "uuid": uuid, "user_id": standing.user_id, "tokens": tokens,
        "input_tokens": input_tokens, "output_tokens": output_tokens, "model": model,
        "charged_tokens": charged, "enforced": enforced, "created_at": raw.instant(report.now),
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint if idempotency_key is not None else None,
    })[0]
    day = {"user_id": standing.user_id, "tokens": charged,
           "day": raw.day(report.now.astimezone(report.tz).date())}
    raw.execute(_ADD_TO_DAY, day)
    if standing.groups:
        raw.execute(_ADD_TO_GROUP_DAYS, day)
    alerts.record_report_crossings(raw, alerts.Subject("user", standing.user_id,
                                                       standing.user_uuid),
                                   report, charged, standing.thresholds)
    for group in standing.groups:
        alerts.record_report_crossings(raw, alerts.Subject("group", group.id, group.uuid),
                                       group.report, charged, standing.thresholds)
    return EventRecord(event_id, uuid, tokens, input_tokens, output_tokens, model, charged,
                       enforced, idempotency_key, report.now, standing.user_uuid)


def counted(operation: str, run):
    """Return `run()`, counting its admission or its refusal in the metrics."""
    try:
        result = run()
    except QuotaExceeded as refused:
        metrics.refused(refused.refusal.period)
        raise
    if getattr(result, "created", True):  # a replayed idempotency_key admits nothing new
        metrics.admitted(operation)
    return result


def check(raw: Raw, user, tokens: int, tz: ZoneInfo) -> QuotaReport:
    """Return the user's report if `tokens` would be admitted now for them and their groups."""
    if not user.is_active:
        raise UserInactive()
    report = quota_report(raw, user, tz)
    groups = group_reports(raw, user.id, tz, report.now)
    counted("check", lambda: admit(report, tokens, groups=groups))
    return report


@dataclass(frozen=True)
class Consumption:
    """The outcome of `consume`: the event, the usage after it, and whether it is new."""

    event: EventRecord
    report: QuotaReport
    created: bool


@dataclass(frozen=True)
class _Consume:
    """The ledger operation behind `consume`."""

    tz: ZoneInfo
    user_uuid: str
    tokens: int
    input_tokens: int | None
    output_tokens: int | None
    model: str | None
    idempotency_key: str | None
    enforce: bool
    fingerprint: str

    def user_id(self, raw: Raw) -> int | None:
        return user_id_of(raw, self.user_uuid)

    def apply(self, raw: Raw) -> Consumption:
        standing = read_standing(raw, self.user_uuid, self.tz)
        earlier = replayed(raw, _EVENT_BY_KEY, standing.user_id, self.idempotency_key,
                           self.fingerprint)
        if earlier is not None:
            return Consumption(EventRecord.from_row(earlier), standing.report, created=False)
        charged = charge(weights_of(raw, self.model), self.tokens, self.input_tokens,
                         self.output_tokens)
        if self.enforce:
            if not standing.is_active:
                raise UserInactive()
            admit(standing.report, charged, groups=standing.groups)
        event = record_event(
            raw, standing, self.tokens, charged, enforced=self.enforce,
            input_tokens=self.input_tokens, output_tokens=self.output_tokens, model=self.model,
            idempotency_key=self.idempotency_key, fingerprint=self.fingerprint)
        return Consumption(event, standing.report.plus(charged), created=True)


def consume(
    engine: Engine,
    tz: ZoneInfo,
    *,
    user_uuid: str,
    tokens: int,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    model: str | None = None,
    idempotency_key: str | None = None,
    enforce: bool = True,
) -> Consumption:
    """Record one usage event; with `enforce`, only if its charge is admitted."""
    fingerprint = request_hash(tokens=tokens, input_tokens=input_tokens,
                               output_tokens=output_tokens, model=model, enforce=enforce)
    consumption = _Consume(tz, user_uuid, tokens, input_tokens, output_tokens, model,
                           idempotency_key, enforce, fingerprint)
    if not enforce:  # recorded, not admitted
        return ledger_for(engine).run(consumption)
    return counted("consume", lambda: ledger_for(engine).run(consumption))
