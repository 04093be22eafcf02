"""Marshmallow schemas of the administration API (defaults, lists, users, tokens)."""

from datetime import date, datetime

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from ..services.audit import ACTIONS
from ..services.history import MAX_HISTORY_DAYS
from ..services.limits import MAX_LIMIT, UNLIMITED
from ..services.overview import ORDERING_FIELDS
from .fields import Flag, Integral, StrictSchema, Uuid
from .quota import ChatQuotaSchema

USERNAME = validate.Length(min=1, max=150)


def default_field(period: str) -> Integral:
    """Return a system default field: -1 (unlimited) or 0..2**53-1, never null."""
    return Integral(validate=validate.Range(min=UNLIMITED, max=MAX_LIMIT),
                    metadata={"description": f"System default {period} limit; -1 = unlimited."})


class DefaultsSchema(StrictSchema):
    """The three system defaults; a PUT may send any of them and keeps the rest."""

    daily_limit = default_field("daily")
    weekly_limit = default_field("weekly")
    monthly_limit = default_field("monthly")

    class Meta(StrictSchema.Meta):
        openapi = {"minProperties": 1}  # for the OpenAPI document; see _some

    @validates_schema
    def _some(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one of daily_limit, weekly_limit, monthly_limit.")


class DateOrDateTime(fields.Field):
    """An ISO 8601 date-time (offset optional: local time) or a date (the whole local day)."""

    default_error_messages = {
        "invalid": "Enter a valid ISO 8601 date or date-time.",
        # A day either side keeps time-zone and whole-day arithmetic in range.
        "range": "Enter a date between 0002-01-01 and 9998-12-31.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                parsed = parse(value.strip())
            except ValueError:
                continue
            if not 1 < parsed.year < 9999:
                raise self.make_error("range")
            return parsed
        raise self.make_error("invalid")


class SearchQuerySchema(Schema):
    search = fields.String(validate=validate.Length(max=150),
                           metadata={"description": "Part of the username, any case."})


class QuotaListQuerySchema(SearchQuerySchema):
    group_uuid = Uuid(metadata={"description": "Only the members of this group."})
    ordering = fields.String(metadata={
        "description": "Comma-separated fields, `-` for descending: " + ", ".join(ORDERING_FIELDS)})


class _WhoSchema(Schema):
    username = fields.String()
    user_uuid = Uuid()


class UserQuotaSchema(ChatQuotaSchema, _WhoSchema):
    """A user (username, user_uuid) and the 15 fields of their quota."""


class EventQuerySchema(Schema):
    user_uuid = Uuid(metadata={"description": "Whose events (privileged roles); omit for "
                                              "your own, or everybody's if privileged."})
    since = DateOrDateTime(metadata={"description": "From this instant, or this local day."})
    until = DateOrDateTime(metadata={"description": "Up to this instant, or through this day."})
    model = fields.String(validate=validate.Length(min=1, max=200))


class HistoryQuerySchema(Schema):
    user_uuid = Uuid(metadata={"description": "Whose history; omit for your own, or the "
                                              "deployment's total if privileged."})
    group_uuid = Uuid(metadata={"description": "A group's history instead: the tokens charged "
                                               "to it (privileged roles, or its members)."})
    days = Integral(load_default=30, validate=validate.Range(min=1, max=MAX_HISTORY_DAYS))

    @validates_schema
    def _one_subject(self, data, **kwargs):
        if "user_uuid" in data and "group_uuid" in data:
            raise ValidationError("Give user_uuid or group_uuid, not both.")


class HistoryDaySchema(Schema):
    date = fields.Date()
    tokens = fields.Integer()


class HistorySchema(Schema):
    """Tokens per local day, oldest first, days without usage as 0."""

    user_uuid = Uuid(allow_none=True, metadata={"description": "null: all users (or a group)."})
    group_uuid = Uuid(allow_none=True, metadata={"description": "The group, if a group's."})
    start = fields.Date()
    end = fields.Date()
    total = fields.Integer()
    days = fields.List(fields.Nested(HistoryDaySchema))


class AuditQuerySchema(Schema):
    user_uuid = Uuid(metadata={"description": "Only changes to this user."})
    action = fields.String(validate=validate.Length(min=1, max=64),
                           metadata={"description": "One of " + ", ".join(ACTIONS)})


class AuditEntrySchema(Schema):
    created_at = fields.DateTime()
    actor = fields.String(metadata={"description": "Username, or `cli`."})
    action = fields.String()
    target = fields.String(metadata={"description": "Username, group name, model name, or "
                                                    "`system` for defaults."})
    user_uuid = Uuid(allow_none=True, metadata={"description": "The user changed, if any."})
    field = fields.String()
    old_value = fields.Raw(allow_none=True)
    new_value = fields.Raw(allow_none=True)


class UserSchema(Schema):
    uuid = Uuid()
    username = fields.String()
    is_active = fields.Boolean()
    is_staff = fields.Boolean()
    is_support = fields.Boolean()
    is_service = fields.Boolean()
    created_at = fields.DateTime()


class UserCreateSchema(StrictSchema):
    username = fields.String(
        required=True, validate=USERNAME,
        metadata={"description": "Leading and trailing spaces are removed."})
    uuid = Uuid(metadata={"description": "Omit for a random one."})
    is_staff = Flag(load_default=False)
    is_support = Flag(load_default=False)
    is_service = Flag(load_default=False)

    @pre_load
    def _strip_username(self, data, **kwargs):
        # Before the length check: " bob" is "bob", and all spaces is blank.
        name = data.get("username") if isinstance(data, dict) else None
        return {**data, "username": name.strip()} if isinstance(name, str) else data


class UserUpdateSchema(StrictSchema):
    is_active = Flag()
    is_staff = Flag()
    is_support = Flag()
    is_service = Flag()


class TokenSchema(Schema):
    uuid = Uuid()
    prefix = fields.String(metadata={"description": "First characters of the key."})
    name = fields.String()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class TokenCreateSchema(StrictSchema):
    name = fields.String(load_default="", validate=validate.Length(max=150))


class NewTokenSchema(TokenSchema):
    key = fields.String(metadata={"description": "The key; shown only in this response."})

