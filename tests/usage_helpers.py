"""Helpers for tests that need recorded usage."""

from chatquota.extensions import db
from chatquota.services import metering


def spend(app, user_uuid: str, tokens: int, model: str | None = None):
    """Record `tokens` of usage for a user at the current (fixed) clock time."""
    with app.app_context():
        return metering.consume(db.engine, app.config["TZ"], user_uuid=user_uuid,
                                tokens=tokens, model=model, enforce=False).event
