"""Bodies every area shares: errors, health."""

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    """Every error except validation: `{"detail": "..."}`."""

    detail = fields.String()


class HealthSchema(Schema):
    """`{"status": "ok", "database": "ok"}`, or what is wrong with the database and why."""

    status = fields.String(metadata={"description": '"ok" or "error".'})
    database = fields.String(metadata={"description": '"ok", "unreachable", "read-only" or "full".'})
    detail = fields.String(metadata={"description": "Why the database is not ok (only then)."})
