"""Reservations: hold tokens for a streamed reply, then commit or release.

A hold counts against every period from the moment it is admitted until it
is committed, released or expires. Expiry needs no background job: holds are
summed with `expires_at > now`, so an expired one stops counting by itself.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from .. import clock
from ..ids import time_ordered_uuid
from ..dialect import write_transaction
from ..models import Reservation, UsageEvent, User
from .errors import QuotaExceeded, ReservationClosed, ReservationNotFound
from .accounts import lock_user
from .metering import record_event, refusal, replayed, request_hash
from .usage import QuotaReport, quota_report

ACTIVE, COMMITTED, RELEASED, EXPIRED = "active", "committed", "released", "expired"


def state_of(reservation: Reservation, now: datetime) -> str:
    """Return the state a client sees: an active hold past its expiry is `expired`."""
    if reservation.state == ACTIVE and reservation.expires_at <= now:
        return EXPIRED
    return reservation.state


@dataclass(frozen=True)
class Held:
    """The outcome of `reserve`: the reservation and whether it is new."""

    reservation: Reservation
    created: bool


def reserve(
    session: Session,
    tz: ZoneInfo,
    *,
    user_uuid: str,
    tokens: int,
    ttl_seconds: int,
    model: str | None = None,
    idempotency_key: str | None = None,
) -> Held:
    """Admit and hold `tokens` for `ttl_seconds`; refuse with QuotaExceeded."""
    fingerprint = request_hash(tokens=tokens, ttl_seconds=ttl_seconds, model=model)
    with write_transaction(session):
        user = lock_user(session, user_uuid)
        earlier = replayed(session, Reservation, user.id, idempotency_key, fingerprint)
        if earlier is not None:
            return Held(earlier, created=False)
        report = quota_report(session, user, tz)
        denied = refusal(report, tokens)
        if denied:
            raise QuotaExceeded(denied)
        reservation = Reservation(
            uuid=time_ordered_uuid(), user_id=user.id, tokens=tokens, model=model,
            state=ACTIVE, created_at=report.now,
            expires_at=report.now + timedelta(seconds=ttl_seconds),
            idempotency_key=idempotency_key, request_hash=fingerprint,
        )
        reservation.user = user
        session.add(reservation)
    return Held(reservation, created=True)


def get_reservation(session: Session, reservation_uuid: str) -> Reservation:
    """Return a reservation by uuid or raise ReservationNotFound."""
    reservation = session.scalar(select(Reservation).where(Reservation.uuid == reservation_uuid))
    if reservation is None:
        raise ReservationNotFound()
    return reservation


def _lock_open(session: Session, reservation_uuid: str) -> tuple[Reservation, User]:
    """Return an unended reservation and its user, holding the user's lock."""
    reservation = get_reservation(session, reservation_uuid)
    lock_user(session, reservation.user.uuid)
    session.refresh(reservation)  # its state as of the lock, not as of the first read
    if reservation.state != ACTIVE:
        raise ReservationClosed(f"Reservation is already {reservation.state}.")
    return reservation, reservation.user


@dataclass(frozen=True)
class Commit:
    """The outcome of `commit`: the ended reservation, its event, the usage after."""

    reservation: Reservation
    event: UsageEvent
    report: QuotaReport


def commit(
    session: Session,
    tz: ZoneInfo,
    reservation_uuid: str,
    *,
    tokens: int,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
) -> Commit:
    """Record the reply's actual usage (any amount, also after expiry); end the hold."""
    with write_transaction(session):
        reservation, user = _lock_open(session, reservation_uuid)
        now = clock.now()
        reservation.state, reservation.ended_at = COMMITTED, now
        session.flush()  # the hold no longer counts in the report below
        report = quota_report(session, user, tz, now)
        event = record_event(
            session, user, report, tokens, input_tokens=input_tokens,
            output_tokens=output_tokens, model=reservation.model, enforced=True,
            reservation_id=reservation.id,
        )
    return Commit(reservation, event, report.plus(tokens))


def release(session: Session, reservation_uuid: str) -> Reservation:
    """End a hold without recording usage."""
    with write_transaction(session):
        reservation, _user = _lock_open(session, reservation_uuid)
        reservation.state, reservation.ended_at = RELEASED, clock.now()
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


def list_active(session: Session, user: User, now: datetime | None = None) -> list[Reservation]:
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
