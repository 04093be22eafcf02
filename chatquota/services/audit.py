"""The audit log: written in the same transaction as the change it records."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..models import AuditEntry, User
from .paging import Page, paginate

CLI_ACTOR = "cli"


class Actor(Protocol):
    """Who makes a change: a User, or the UserRecord of an authenticated request."""

    id: int
    username: str

ACTIONS = ("default.update", "quota.update", "user.create", "user.update",
           "token.create", "token.revoke", "group.create", "group.update", "group_quota.update",
           "membership.create", "membership.delete", "model_weight.update", "thresholds.update",
           "webhook.create", "webhook.update", "webhook.delete")


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    target: str,
    field: str,
    old,
    new,
    target_user: User | None = None,
) -> None:
    """Add one audit row; `actor` None means the command line."""
    session.add(
        AuditEntry(
            created_at=clock.now(),
            actor_id=actor.id if actor else None,
            actor=actor.username if actor else CLI_ACTOR,
            action=action,
            target=target,
            target_user_id=target_user.id if target_user else None,
            field=field,
            old_value=json.dumps(old),
            new_value=json.dumps(new),
        )
    )



@dataclass(frozen=True)
class AuditRecord:
    """An audit entry as read back: values decoded, the target user's uuid joined."""

    created_at: datetime
    actor: str
    action: str
    target: str
    user_uuid: str | None
    field: str
    old_value: object
    new_value: object


def list_entries(
    session: Session, *, target_user: User | None = None, action: str | None = None,
    offset: int = 0, limit: int = 10,
) -> Page:
    """Return one page of audit records, newest first."""
    stmt = select(AuditEntry, User.uuid).outerjoin(User, User.id == AuditEntry.target_user_id)
    if target_user is not None:
        stmt = stmt.where(AuditEntry.target_user_id == target_user.id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    page = paginate(session, stmt, offset, limit, rows=True)
    return Page([_decoded(entry, uuid) for entry, uuid in page.items], page.total)


def _decoded(entry: AuditEntry, user_uuid: str | None) -> AuditRecord:
    return AuditRecord(
        entry.created_at, entry.actor, entry.action, entry.target, user_uuid, entry.field,
        None if entry.old_value is None else json.loads(entry.old_value),
        None if entry.new_value is None else json.loads(entry.new_value),
    )
