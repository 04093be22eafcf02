"""The audit log: written in the same transaction as the change it records."""

import json

from sqlalchemy.orm import Session

from .. import clock
from ..models import AuditEntry, User

CLI_ACTOR = "cli"


def record(
    session: Session,
    actor: User | None,
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
