"""Admission and recording of usage, atomically.

Admission and the write happen in one write transaction (SQLite: BEGIN
IMMEDIATE; PostgreSQL: the user's quota row locked FOR UPDATE), so no number
of concurrent callers can push a user past a limit.
"""

import hashlib
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..dialect import upsert, write_transaction
from ..ids import time_ordered_uuid
from ..models import UsageDay, UsageEvent, User
from ..periods import local_day, seconds_until
from .accounts import lock_user
from .errors import IdempotencyConflict, InvalidValue, QuotaExceeded, Refusal
from .limits import MAX_LIMIT, UNLIMITED
from .usage import QuotaReport, quota_report


def refusal(report: QuotaReport, tokens: int) -> Refusal | None:
    """Return why `tokens` more are not admitted, or None when they are.

    Admitted when, in every limited period, usage + holds + tokens <= limit
    and usage + holds < limit (so a limit of 0 admits nothing, not even 0).
    """
    refusing = []
    for p in report.periods:
        limit = p.effective
        if limit == UNLIMITED:
            continue
        committed = p.usage + report.held
        if committed + tokens > limit or committed >= limit:
            refusing.append((p, max(0, limit - committed)))
    if not refusing:
        return None
    first, left = refusing[0]
    latest_reset = max(p.window.reset_at for p, _ in refusing)
    return Refusal(
        period=first.window.period,
        reset_at=report.fields()[f"{first.window.period}_reset_at"],
        remaining=left,
        retry_after=seconds_until(latest_reset, report.now),
    )


def request_hash(**fields) -> str:
    """Return a fingerprint of a request body, to tell retries from reuse."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def check(session: Session, user: User, tokens: int, tz: ZoneInfo) -> QuotaReport:
    """Return the user's report if `tokens` would be admitted now, else raise."""
    report = quota_report(session, user, tz)
    denied = refusal(report, tokens)
    if denied:
        raise QuotaExceeded(denied)
    return report


@dataclass(frozen=True)
class Consumption:
    """The outcome of `consume`: the event, the usage after it, and whether it is new."""

    event: UsageEvent
    report: QuotaReport
    created: bool


def consume(
    session: Session,
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
    """Record one usage event; with `enforce`, only if admitted."""
    fingerprint = request_hash(
        tokens=tokens, input_tokens=input_tokens, output_tokens=output_tokens,
        model=model, enforce=enforce,
    )
    with write_transaction(session):
        user = lock_user(session, user_uuid)
        earlier = replayed(session, UsageEvent, user.id, idempotency_key, fingerprint)
        if earlier is not None:
            return Consumption(earlier, quota_report(session, user, tz), created=False)
        report = quota_report(session, user, tz)
        if enforce:
            denied = refusal(report, tokens)
            if denied:
                raise QuotaExceeded(denied)
        event = record_event(
            session, user, report, tokens, input_tokens=input_tokens,
            output_tokens=output_tokens, model=model, enforced=enforce,
            idempotency_key=idempotency_key, request_hash=fingerprint,
        )
    return Consumption(event, report.plus(tokens), created=True)


def replayed(session: Session, model, user_id: int, key: str | None, fingerprint: str):
    """Return the row an earlier call stored under this idempotency key, or None.

    The same key with a different request is an IdempotencyConflict. Callers
    hold the user's lock, so two concurrent duplicates cannot both miss.
    """
    if key is None:
        return None
    earlier = session.scalar(
        select(model).where(model.user_id == user_id, model.idempotency_key == key)
    )
    if earlier is not None and earlier.request_hash != fingerprint:
        raise IdempotencyConflict()
    return earlier


def record_event(session: Session, user: User, report: QuotaReport, tokens: int, **extra):
    """Insert a usage event and add it to the day's total (caller holds the lock).

    Usage in any period stays within 2**53-1 (what JSON clients read exactly
    and what a limit can be); an event that would pass it is refused.
    """
    if max(p.usage for p in report.periods) + tokens > MAX_LIMIT:
        raise InvalidValue("tokens", f"This would take usage past {MAX_LIMIT} tokens in a period.")
    day = local_day(report.now, report.tz)
    event = UsageEvent(
        uuid=time_ordered_uuid(), user_id=user.id, tokens=tokens, day=day,
        created_at=report.now, **extra,
    )
    event.user = user
    session.add(event)
    upsert(session, UsageDay, {"user_id": user.id, "day": day, "tokens": tokens},
           keys=["user_id", "day"], add=["tokens"])
    return event
