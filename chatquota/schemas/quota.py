"""The two Waldur-compatible endpoints: a user's 15 quota fields, and setting limits."""

from marshmallow import Schema, fields

from .fields import StrictSchema, Uuid, limit_field


class UserQuerySchema(Schema):
    user_uuid = Uuid(metadata={"description": "UUID of user to view quota for "
                               "(staff/support only). Omit to view your own quota."})


class ChatQuotaSchema(Schema):
    """The 15 fields of a user's token quota."""

    daily_limit = fields.Integer(allow_none=True, metadata={"description": "Daily token limit (non-negative integer). Null uses system default. -1 means unlimited."})
    daily_usage = fields.Integer()
    daily_remaining = fields.Integer(allow_none=True, metadata={"description": "Get remaining daily tokens."})
    daily_reset_at = fields.String(metadata={"format": "date-time", "description": "Calculate next midnight (00:00:00)."})
    daily_system_default = fields.Integer(metadata={"description": "Get system default daily token limit from constance config."})
    weekly_limit = fields.Integer(allow_none=True, metadata={"description": "Weekly token limit (non-negative integer). Null uses system default. -1 means unlimited."})
    weekly_usage = fields.Integer()
    weekly_remaining = fields.Integer(allow_none=True, metadata={"description": "Get remaining weekly tokens."})
    weekly_reset_at = fields.String(metadata={"format": "date-time", "description": "Calculate next Monday at midnight."})
    weekly_system_default = fields.Integer(metadata={"description": "Get system default weekly token limit from constance config."})
    monthly_limit = fields.Integer(allow_none=True, metadata={"description": "Monthly token limit (non-negative integer). Null uses system default. -1 means unlimited."})
    monthly_usage = fields.Integer()
    monthly_remaining = fields.Integer(allow_none=True, metadata={"description": "Get remaining monthly tokens."})
    monthly_reset_at = fields.String(metadata={"format": "date-time", "description": "Calculate first day of next month at midnight."})
    monthly_system_default = fields.Integer(metadata={"description": "Get system default monthly token limit from constance config."})


class SetTokenQuotaRequestSchema(StrictSchema):
    """Set some of a user's limits; an omitted field keeps its value."""

    user_uuid = Uuid(required=True, metadata={"description": "UUID of the user to set quota for."})
    daily_limit = limit_field("Daily token limit. null = system default, -1 = unlimited; omit to keep.")
    weekly_limit = limit_field("Weekly token limit. null = system default, -1 = unlimited; omit to keep.")
    monthly_limit = limit_field("Monthly token limit. null = system default, -1 = unlimited; omit to keep.")


