"""Reservations: hold tokens for a streamed reply, then commit or release.

A hold counts against every period from the moment it is admitted until it
is committed, released or expires. Expiry needs no background job: holds are
summed with `expires_at > now`, so an expired one stops counting by itself.
Reserve, commit and release are ledger operations (services/ledger.py).

A hold is admitted against the user and every group the user belongs to,
and counts against those groups (`reservation_groups`) until it ends, even
if the user leaves one meanwhile. It holds charged tokens: the caller's
estimate, not weighted again. Its commit is charged by the model's weights
at commit time, to the user and the groups the user belongs to then.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, DateTime, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .. import clock
from ..dialect import Raw, prepare, write_transaction
from ..ids import time_ordered_uuid
from ..models import Membership, Reservation, ReservationGroup, User
from .admission import admit
from .errors import ReservationClosed, ReservationNotFound, UserInactive
from .ledger import ledger_for
from .metering import (
    EventRecord,
    counted,
    event_by_id,
    read_standing,
    record_event,
    replayed,
    request_hash,
    user_id_of,
)
from .usage import QuotaReport
from .weights import charge, weights_of

ACTIVE, COMMITTED, RELEASED, EXPIRED = "active", "committed", "released", "expired"

_holds, _users, _members = Reservation.__table__, User.__table__, Membership.__table__
_held_by_groups = ReservationGroup.__table__
_FIELDS = ("id", "uuid", "user_id", "tokens", "model", "state", "created_at", "expires_at",
           "ended_at", "event_id", "commit_hash")
_SELECT = select(*(_holds.c[f] for f in _FIELDS), _users.c.uuid,
                 _holds.c.request_hash).join(_users, _users.c.id == _holds.c.user_id)
_BY_KEY = prepare(_SELECT.where(_holds.c.user_id == bindparam("user_id"),
                                _holds.c.idempotency_key == bindparam("key")))
_BY_UUID = prepare(_SELECT.where(_holds.c.uuid == bindparam("uuid")))
_OWNER = prepare(select(_holds.c.user_id).where(_holds.c.uuid == bindparam("uuid")))
_INSERT = prepare(insert(_holds).values({c: bindparam(c) for c in (
    "uuid", "user_id", "tokens", "model", "state", "created_at", "expires_at",
    "idempotency_key", "request_hash")}).returning(_holds.c.id))
_END = prepare(update(_holds).where(_holds.c.id == bindparam("id")).values(
    {c: bindparam(c) for c in ("state", "ended_at", "event_id", "commit_hash")}))
# The hold counts against every group of the user, one row each, until it ends.
_HOLD_FOR_GROUPS = prepare(insert(_held_by_groups).from_select(
    ["reservation_id", "group_id", "tokens", "expires_at"],
    select(bindparam("id", type_=BigInteger), _members.c.group_id,
           bindparam("tokens", type_=BigInteger), bindparam("expires_at", type_=DateTime))
    .where(_members.c.user_id == bindparam("user_id"))))
_END_FOR_GROUPS = prepare(delete(_held_by_groups)
                          .where(_held_by_groups.c.reservation_id == bindparam("id")))


def state_of(reservation, now: datetime) -> str:
    """Return the state a client sees: an active hold past its expiry is `expired`."""
    if reservation.state == ACTIVE and reservation.expires_at <= now:
        return EXPIRED
    return reservation.state


@dataclass(frozen=True)
class ReservationRecord:
    """A reservation as the ledger read or wrote it."""

    id: int
    uuid: str
    user_id: int
    tokens: int
    model: str | None
    state: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    event_id: int | None
    commit_hash: str | None
    user_uuid: str

    @classmethod
    def from_row(cls, row) -> "ReservationRecord":
        values = dict(zip(_FIELDS, row))
        for name in ("created_at", "expires_at", "ended_at"):
            if values[name] is not None:
                values[name] = Raw.read_instant(values[name])
        return cls(**values, user_uuid=row[len(_FIELDS)])


def _owner(raw: Raw, reservation_uuid: str) -> int | None:
    row = raw.one(_OWNER, {"uuid": reservation_uuid})
    return None if row is None else row[0]


@dataclass(frozen=True)
class Held:
    """The outcome of `reserve`: the reservation and whether it is new."""

    reservation: ReservationRecord
    created: bool


@dataclass(frozen=True)
class _Reserve:
    """The ledger operation behind `reserve`."""

    tz: ZoneInfo
    user_uuid: str
    tokens: int
    at_least: int | None
    ttl_seconds: int
    model: str | None
    idempotency_key: str | None
    fingerprint: str

    def user_id(self, raw: Raw) -> int | None:
        return user_id_of(raw, self.user_uuid)

    def apply(self, raw: Raw) -> Held:
        standing = read_standing(raw, self.user_uuid, self.tz)
        earlier = replayed(raw, _BY_KEY, standing.user_id, self.idempotency_key,
                           self.fingerprint)
        if earlier is not None:
            return Held(ReservationRecord.from_row(earlier), created=False)
        if not standing.is_active:
            raise UserInactive()
        granted = admit(standing.report, self.tokens, self.at_least, standing.groups)
        now = standing.report.now
        uuid, expires_at = time_ordered_uuid(), now + timedelta(seconds=self.ttl_seconds)
        reservation_id = raw.one(_INSERT, {
            "uuid": uuid, "user_id": standing.user_id, "tokens": granted,
            "model": self.model, "state": ACTIVE, "created_at": raw.instant(now),
            "expires_at": raw.instant(expires_at), "idempotency_key": self.idempotency_key,
            "request_hash": self.fingerprint if self.idempotency_key is not None else None,
        })[0]
        if standing.groups:
            raw.execute(_HOLD_FOR_GROUPS, {"id": reservation_id, "user_id": standing.user_id,
                                           "tokens": granted,
                                           "expires_at": raw.instant(expires_at)})
        held = ReservationRecord(reservation_id, uuid, standing.user_id, granted, self.model,
                                 ACTIVE, now, expires_at, None, None, None, self.user_uuid)
        return Held(held, created=True)


def reserve(
    engine: Engine,
    tz: ZoneInfo,
    *,
    user_uuid: str,
    tokens: int,
    ttl_seconds: int,
    at_least: int | None = None,
    model: str | None = None,
    idempotency_key: str | None = None,
) -> Held:
    """Admit and hold `tokens` (or, with `at_least`, the most that fits) for `ttl_seconds`."""
    fingerprint = request_hash(tokens=tokens, ttl_seconds=ttl_seconds, model=model,
                               **({"at_least": at_least} if at_least is not None else {}))
    return counted("reserve", lambda: ledger_for(engine).run(_Reserve(
        tz, user_uuid, tokens, at_least, ttl_seconds, model, idempotency_key, fingerprint)))


def _open(raw: Raw, reservation_uuid: str) -> ReservationRecord:
    """Return a reservation as stored now, or raise ReservationNotFound."""
    row = raw.one(_BY_UUID, {"uuid": reservation_uuid})
    if row is None:
        raise ReservationNotFound()
    return ReservationRecord.from_row(row)


@dataclass(frozen=True)
class Commit:
    """The outcome of `commit`: the ended reservation, its event, the usage after."""

    reservation: ReservationRecord
    event: EventRecord | None
    report: QuotaReport


@dataclass(frozen=True)
class _Commit:
    """The ledger operation behind `commit`."""

    tz: ZoneInfo
    reservation_uuid: str
    tokens: int
    input_tokens: int | None
    output_tokens: int | None
    fingerprint: str

    def user_id(self, raw: Raw) -> int | None:
        return _owner(raw, self.reservation_uuid)

    def apply(self, raw: Raw) -> Commit:
        held = _open(raw, self.reservation_uuid)
        if held.state == COMMITTED and held.commit_hash == self.fingerprint:
            # A retried commit: the first result, with the usage as it is now.
            standing = read_standing(raw, held.user_uuid, self.tz)
            return Commit(held, event_by_id(raw, held.event_id), standing.report)
        if held.state != ACTIVE:
            raise ReservationClosed(f"Reservation is already {held.state}.")
        standing = read_standing(raw, held.user_uuid, self.tz)
        now = standing.report.now
        charged = charge(weights_of(raw, held.model), self.tokens, self.input_tokens,
                         self.output_tokens)
        event = record_event(raw, standing, self.tokens, charged, enforced=True,
                             input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                             model=held.model)
        raw.execute(_END, {"id": held.id, "state": COMMITTED, "ended_at": raw.instant(now),
                           "event_id": event.id, "commit_hash": self.fingerprint})
        raw.execute(_END_FOR_GROUPS, {"id": held.id})
        still_held = held.tokens if held.expires_at > now else 0
        ended = replace(held, state=COMMITTED, ended_at=now, event_id=event.id,
                        commit_hash=self.fingerprint)
        return Commit(ended, event, standing.report.plus(charged, held=-still_held))


def commit(
    engine: Engine,
    tz: ZoneInfo,
    reservation_uuid: str,
    *,
    tokens: int,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
) -> Commit:
    """Record the reply's actual usage (any amount, also after expiry), charged; end the hold.

    Repeating the same commit returns the first result; a different one is a
    ReservationClosed, as is committing a released hold.
    """
    fingerprint = request_hash(tokens=tokens, input_tokens=input_tokens,
                               output_tokens=output_tokens)
    return ledger_for(engine).run(_Commit(tz, reservation_uuid, tokens, input_tokens,
                                          output_tokens, fingerprint))


@dataclass(frozen=True)
class _Release:
    """The ledger operation behind `release`."""

    reservation_uuid: str

    def user_id(self, raw: Raw) -> int | None:
        return _owner(raw, self.reservation_uuid)

    def apply(self, raw: Raw) -> ReservationRecord:
        held = _open(raw, self.reservation_uuid)
        if held.state != ACTIVE:
            raise ReservationClosed(f"Reservation is already {held.state}.")
        now = clock.now()
        raw.execute(_END, {"id": held.id, "state": RELEASED, "ended_at": raw.instant(now),
                           "event_id": None, "commit_hash": None})
        raw.execute(_END_FOR_GROUPS, {"id": held.id})
        return replace(held, state=RELEASED, ended_at=now)


def release(engine: Engine, reservation_uuid: str) -> ReservationRecord:
    """End a hold without recording usage."""
    return ledger_for(engine).run(_Release(reservation_uuid))


def get_reservation(session: Session, reservation_uuid: str) -> Reservation:
    """Return a reservation by uuid or raise ReservationNotFound."""
    reservation = session.scalar(select(Reservation).where(Reservation.uuid == reservation_uuid))
    if reservation is None:
        raise ReservationNotFound()
    return reservation


def purge(session: Session, older_than: timedelta) -> int:
    """Delete reservations ended or expired more than `older_than` ago; return how many.

    Recent expired holds are kept so that a late commit still finds them.
    """
    cutoff = clock.now() - older_than
    with write_transaction(session):
        result = session.execute(delete(Reservation).where(or_(
            Reservation.ended_at < cutoff,
            (Reservation.state == ACTIVE) & (Reservation.expires_at < cutoff),
        )))
    return result.rowcount


def list_active(session: Session, user, now: datetime | None = None) -> list[Reservation]:
    """Return the user's holds that still count, soonest expiry first."""
    return list(session.scalars(
        select(Reservation)
        .where(Reservation.user_id == user.id, Reservation.state == ACTIVE,
               Reservation.expires_at > (now or clock.now()))
        .order_by(Reservation.expires_at, Reservation.id)
    ))


def live_holds(session: Session) -> tuple[int, int]:
    """Return how many holds count now across all users, and the tokens they hold."""
    count, tokens = session.execute(
        select(func.count(), func.coalesce(func.sum(Reservation.tokens), 0))
        .where(Reservation.state == ACTIVE, Reservation.expires_at > clock.now())
    ).one()
    return count, int(tokens)
