"""What a webhook receives: the event body in its format, and the signature headers.

Pure functions, no HTTP and no database. A `json` webhook gets the event
itself; a `slack` webhook (Slack, Mattermost and Rocket.Chat incoming
webhooks) gets `{"text": "..."}` for people. Every delivery is signed:
`X-Chatquota-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
with the webhook's secret, the timestamp in `X-Chatquota-Timestamp`; the
event id in `X-Chatquota-Event-Id` is the same on every attempt.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ..periods import format_instant

THRESHOLD = "quota.threshold"
TEST = "webhook.test"
EVENT_TYPES = (THRESHOLD,)  # what a webhook may subscribe to; tests go to every webhook
FORMATS = ("json", "slack")
USER_AGENT = "chatquota-webhooks/1.0"


@dataclass(frozen=True)
class Crossing:
    """The facts of an alert: whose usage crossed which threshold of which period."""

    subject: str  # "user" or "group"
    subject_uuid: str
    subject_name: str | None  # for people (slack); None if it is gone
    period: str
    threshold: int
    usage: int
    limit: int
    reset_at: datetime


@dataclass(frozen=True)
class Event:
    """One event as sent: its id (stable across attempts), type, time, and alert facts."""

    id: str
    type: str
    created_at: datetime
    crossing: Crossing | None  # None for a test event


def body(event: Event, tz: ZoneInfo) -> dict:
    """Return the JSON event: a threshold crossing, or a test."""
    out = {"id": event.id, "type": event.type}
    c = event.crossing
    if c is not None:
        out.update({"subject": c.subject, f"{c.subject}_uuid": c.subject_uuid,
                    "period": c.period, "threshold": c.threshold, "usage": c.usage,
                    "limit": c.limit, "reset_at": format_instant(c.reset_at, tz)})
    out["created_at"] = format_instant(event.created_at, tz)
    return out


def _escape(text: str) -> str:
    """Escape what Slack's message markup reserves (Mattermost shows the entities as text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text(event: Event, tz: ZoneInfo) -> str:
    """Return the message for people: "alice reached 80% of the daily limit: ..."."""
    c = event.crossing
    if c is None:
        return "chatquota test message: this webhook works."
    name = _escape(c.subject_name or c.subject_uuid)
    who = name if c.subject == "user" else f"Group {name}"
    resets = c.reset_at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    return (f"{who} reached {c.threshold}% of the {c.period} limit: {c.usage:,} of "
            f"{c.limit:,} tokens; resets at {resets}.")


def render(fmt: str, event: Event, tz: ZoneInfo) -> bytes:
    """Return the request body for a webhook of format `fmt`."""
    payload = body(event, tz) if fmt == "json" else {"text": text(event, tz)}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """Return the `X-Chatquota-Signature` value of a body sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def headers(event: Event, secret: str, timestamp: int, payload: bytes) -> dict[str, str]:
    """Return the headers of a delivery: content type, event id, timestamp, signature."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Chatquota-Event-Id": event.id,
        "X-Chatquota-Timestamp": str(timestamp),
        "X-Chatquota-Signature": signature(secret, timestamp, payload),
    }
