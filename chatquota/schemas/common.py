"""Bodies every area shares: errors, health."""

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    """Every error except validation: `{"detail": "..."}`."""

    detail = fields.String()


class HealthSchema(Schema):
    status = fields.String()
    database = fields.String()
