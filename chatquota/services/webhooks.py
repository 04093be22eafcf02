"""Webhooks: staff create, change and delete them (audited); their delivery log.

A webhook's secret is stored (deliveries are signed with it) and never
shown. The audit log names a webhook by its uuid and shows only the scheme
and host of its URL: a Slack or Mattermost webhook URL is itself a secret.
"""

import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from ..dialect import write_transaction
from ..models import Alert, DeliveryAttempt, Group, User, Webhook, WebhookDelivery
from . import audit
from .audit import Actor
from .deliveries import DELIVERED, FAILED, PENDING, Outcome
from .errors import WebhookNotFound
from .events import Crossing, Event, body
from .paging import Page, paginate

HIDDEN = "(hidden)"


def shown_url(url: str) -> str:
    """Return the part of a URL the audit log shows: scheme and host (the rest may be a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."


# How the audit log shows a field's old and new values.
_SHOWN = {"url": shown_url, "secret": lambda _value: HIDDEN,
          "events": lambda value: [name for name in value.split(",") if name]}


def _audited(webhook: Webhook) -> dict:
    return {"url": shown_url(webhook.url), "format": webhook.format,
            "events": webhook.event_types}


def create_webhook(session: Session, actor: Actor | None, *, url: str, secret: str,
                   format: str, events: list[str]) -> Webhook:
    """Add a webhook; alerts written from now on are delivered to it."""
    now = clock.now()
    webhook = Webhook(uuid=uuidlib.uuid4().hex, url=url, secret=secret, format=format,
                      events=",".join(events), created_at=now, updated_at=now)
    with write_transaction(session):
        session.add(webhook)
        session.flush()
        audit.record(session, actor, "webhook.create", f"webhook {webhook.uuid}", "webhook",
                     None, _audited(webhook))
    return webhook


def list_webhooks(session: Session, offset: int = 0, limit: int = 10) -> Page:
    """Return one page of webhooks, oldest first."""
    return paginate(session, select(Webhook).order_by(Webhook.id), offset, limit)


def get_webhook(session: Session, webhook_uuid: str) -> Webhook:
    """Return the webhook with this uuid or raise WebhookNotFound."""
    webhook = session.scalar(select(Webhook).where(Webhook.uuid == webhook_uuid))
    if webhook is None:
        raise WebhookNotFound()
    return webhook


def update_webhook(session: Session, actor: Actor | None, webhook_uuid: str,
                   changes: dict) -> Webhook:
    """Change a webhook's url, secret, format or events; the rest stays."""
    if "events" in changes:
        changes = {**changes, "events": ",".join(changes["events"])}
    with write_transaction(session):
        webhook = get_webhook(session, webhook_uuid)
        for field, value in changes.items():
            old = getattr(webhook, field)
            if old == value:
                continue
            setattr(webhook, field, value)
            webhook.updated_at = clock.now()
            shown = _SHOWN.get(field, lambda v: v)
            audit.record(session, actor, "webhook.update", f"webhook {webhook.uuid}", field,
                         shown(old), shown(value))
    return webhook


def delete_webhook(session: Session, actor: Actor | None, webhook_uuid: str) -> None:
    """Delete a webhook with its deliveries and their log; pending ones are not sent."""
    with write_transaction(session):
        webhook = get_webhook(session, webhook_uuid)
        audit.record(session, actor, "webhook.delete", f"webhook {webhook.uuid}", "webhook",
                     _audited(webhook), None)
        session.delete(webhook)


@dataclass(frozen=True)
class Target:
    """Where and how to send to one webhook: read, then the read transaction is over."""

    id: int
    uuid: str
    url: str
    secret: str
    format: str


def target_of(session: Session, webhook_uuid: str) -> Target:
    """Return a webhook's target and end the read, so no transaction waits on HTTP."""
    webhook = get_webhook(session, webhook_uuid)
    session.commit()
    return Target(webhook.id, webhook.uuid, webhook.url, webhook.secret, webhook.format)


def record_test(session: Session, target: Target, event: Event, outcome: Outcome,
                tz: ZoneInfo) -> "DeliveryRecord":
    """Log a test event's one attempt; return its delivery as the log shows it."""
    with write_transaction(session):
        delivery = WebhookDelivery(
            webhook_id=target.id, event_uuid=event.id, event_type=event.type,
            state=DELIVERED if outcome.delivered else FAILED, attempts=1,
            last_status_code=outcome.status_code, last_error=outcome.error,
            created_at=event.created_at, finished_at=clock.now())
        session.add(delivery)
        session.flush()
        attempt = DeliveryAttempt(delivery_id=delivery.id, started_at=outcome.started_at,
                                  status_code=outcome.status_code, error=outcome.error,
                                  duration_ms=outcome.duration_ms)
        session.add(attempt)
    return DeliveryRecord.of(delivery, event, [attempt], tz)


@dataclass(frozen=True)
class DeliveryRecord:
    """A delivery as its log shows it: state, the event sent, and every attempt."""

    event: dict
    event_id: str
    type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    log: list

    @classmethod
    def of(cls, delivery: WebhookDelivery, event: Event, log: list, tz: ZoneInfo):
        """Return the record of a delivery of `event` with its attempts `log`."""
        return cls(body(event, tz), delivery.event_uuid, delivery.event_type,
                   delivery.state, delivery.attempts,
                   delivery.next_attempt_at if delivery.state == PENDING else None,
                   delivery.last_status_code, delivery.last_error, delivery.created_at,
                   delivery.finished_at, log)


def list_deliveries(session: Session, webhook: Webhook, tz: ZoneInfo, offset: int = 0,
                    limit: int = 10) -> Page:
    """Return one page of a webhook's deliveries, newest first, each with its attempts."""
    stmt = (select(WebhookDelivery, Alert, func.coalesce(User.username, Group.name))
            .outerjoin(Alert, Alert.id == WebhookDelivery.alert_id)
            .outerjoin(User, (Alert.subject == "user") & (User.id == Alert.subject_id))
            .outerjoin(Group, (Alert.subject == "group") & (Group.id == Alert.subject_id))
            .where(WebhookDelivery.webhook_id == webhook.id)
            .order_by(WebhookDelivery.id.desc()))
    count = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id)
    page = paginate(session, stmt, offset, limit, rows=True, count=count)
    ids = [delivery.id for delivery, _alert, _name in page.items]
    attempts: dict[int, list] = {}
    for attempt in session.scalars(select(DeliveryAttempt).where(
            DeliveryAttempt.delivery_id.in_(ids)).order_by(DeliveryAttempt.id)):
        attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return Page([DeliveryRecord.of(d, _event(d, alert, name), attempts.get(d.id, []), tz)
                 for d, alert, name in page.items], page.total)


def _event(delivery: WebhookDelivery, alert: Alert | None, name: str | None) -> Event:
    if alert is None:
        return Event(delivery.event_uuid, delivery.event_type, delivery.created_at, None)
    crossing = Crossing(alert.subject, alert.subject_uuid, name, alert.period, alert.threshold,
                        alert.usage, alert.effective_limit, alert.reset_at)
    return Event(delivery.event_uuid, delivery.event_type, alert.created_at, crossing)
