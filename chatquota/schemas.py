"""Marshmallow schemas: request validation, response shapes, and the OpenAPI document.

Shapes and ranges only; anything that needs the database is a service's job.
Error messages follow Django REST Framework's, which Waldur clients show.
"""

import re
import uuid as uuidlib

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from . import clock
from .periods import PERIODS
from .services.limits import MAX_LIMIT, UNLIMITED
from .services.reservations import state_of

MAX_TTL_SECONDS = 86400

_INTEGRAL_STRING = re.compile(r"^\s*-?\d+(\.0*)?\s*$")


class Integral(fields.Integer):
    """An integer: ints, integral floats (5.0) and numeric strings ("100").

    Unlike marshmallow's Integer it refuses 5.5 (instead of truncating) and
    booleans, as DRF's IntegerField does.
    """

    default_error_messages = {"invalid": "A valid integer is required."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and _INTEGRAL_STRING.match(value):
            try:
                value = int(value.strip().split(".")[0])
            except ValueError:  # beyond Python's int-from-string digit limit
                raise self.make_error("invalid") from None
        if not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Flag(fields.Boolean):
    """A JSON boolean in a request body: only `true` or `false`, as documented.

    marshmallow's Boolean also takes 1, 0.0, "yes" and "off"; a client
    sending those has a bug worth hearing about.
    """

    default_error_messages = {"invalid": "Must be a valid boolean."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def limit_field(description: str) -> Integral:
    """Return a per-period limit field: null, -1 (unlimited) or 0..2**53-1."""
    return Integral(
        allow_none=True,
        validate=validate.Range(min=UNLIMITED, max=MAX_LIMIT),
        metadata={"description": description},
    )


def token_field(**kwargs) -> Integral:
    """Return a token-count field: 0..2**53-1."""
    return Integral(validate=validate.Range(min=0, max=MAX_LIMIT), **kwargs)


_HEX = "[0-9a-fA-F]"
_UUID_TEXT = re.compile(
    rf"^(?:urn:uuid:)?(?P<brace>\{{)?"
    rf"(?:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|{_HEX}{{32}})"
    rf"(?(brace)\}})$"
)


class Uuid(fields.UUID):
    """A UUID in a standard textual form, loaded as 32 lowercase hex digits.

    Accepted: 32 hex digits or the 8-4-4-4-12 form, any case, optionally in
    braces or after `urn:uuid:`; hyphens elsewhere are refused.
    """

    default_error_messages = {"invalid_uuid": "Must be a valid UUID."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _UUID_TEXT.match(value.strip()):
            raise self.make_error("invalid_uuid")
        return uuidlib.UUID(value.strip()).hex

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else uuidlib.UUID(str(value)).hex


NUL_MESSAGE = "Null characters are not allowed."


def has_nul(value) -> bool:
    """Tell whether a string, or any key or value nested in `value`, holds a NUL.

    PostgreSQL text cannot store NUL, so such input is refused (as DRF does)
    before it reaches a query on either backend.
    """
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    return False


class StrictSchema(Schema):
    """A request body: unknown fields are an error, not silently ignored."""

    class Meta:
        unknown = RAISE


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


class CheckRequestSchema(StrictSchema):
    user_uuid = Uuid(metadata={"description": "Whose quota to check; omit for your own."})
    tokens = token_field(load_default=0, metadata={"description": "Tokens the request may use."})


class CheckResponseSchema(ChatQuotaSchema):
    allowed = fields.Boolean(metadata={"description": "Always true; a refusal is a 429."})
    tokens = fields.Integer()
    held = fields.Integer(metadata={"description": "Tokens held by live reservations."})


class TokensSchema(StrictSchema):
    """Actual usage: `tokens`, or `input_tokens` and/or `output_tokens`."""

    input_tokens = token_field()
    output_tokens = token_field()
    tokens = token_field(metadata={"description": "Total; defaults to input + output."})

    class Meta(StrictSchema.Meta):
        # For the OpenAPI document: what the fields alone cannot say.
        openapi = {
            "description": "Give `tokens`, or `input_tokens` and/or `output_tokens`; "
                           "when both are given, `tokens` must equal their sum.",
            "anyOf": [{"required": [name]} for name in ("tokens", "input_tokens", "output_tokens")],
        }

    @validates_schema
    def _total(self, data, **kwargs):
        resolve_tokens(data)


def model_field() -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200),
                         metadata={"description": "The LLM model, for reports."})


def idempotency_field() -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "Retries with the same key return the first result; unique per user."})


class ConsumeRequestSchema(TokensSchema):
    """One usage report for a user."""

    user_uuid = Uuid(required=True)
    model = model_field()
    idempotency_key = idempotency_field()
    enforce = Flag(load_default=True, metadata={
        "description": "Record only if admitted (default). false records spent tokens always."})


def resolve_tokens(data: dict) -> None:
    """Fill `tokens` from input + output, or refuse an inconsistent or empty count."""
    parts = [data[k] for k in ("input_tokens", "output_tokens") if data.get(k) is not None]
    if "tokens" not in data:
        if not parts:
            raise ValidationError("Give tokens, or input_tokens and/or output_tokens.", "tokens")
        data["tokens"] = sum(parts)
    elif parts and sum(parts) != data["tokens"]:
        raise ValidationError("Must equal input_tokens + output_tokens.", "tokens")
    if data["tokens"] > MAX_LIMIT:
        raise ValidationError(f"Ensure this value is less than or equal to {MAX_LIMIT}.", "tokens")


class UsageEventSchema(Schema):
    uuid = Uuid()
    user_uuid = Uuid(attribute="user.uuid")
    tokens = fields.Integer()
    input_tokens = fields.Integer(allow_none=True)
    output_tokens = fields.Integer(allow_none=True)
    model = fields.String(allow_none=True)
    enforced = fields.Boolean()
    idempotency_key = fields.String(allow_none=True)
    created_at = fields.DateTime()


class ConsumeResponseSchema(Schema):
    event = fields.Nested(UsageEventSchema)
    usage = fields.Nested(ChatQuotaSchema)


class ReserveRequestSchema(StrictSchema):
    """Hold tokens for a streamed reply."""

    user_uuid = Uuid(required=True)
    tokens = token_field(required=True, metadata={"description": "Tokens to hold (an estimate)."})
    ttl_seconds = Integral(load_default=600, validate=validate.Range(min=1, max=MAX_TTL_SECONDS),
                           metadata={"description": "How long the hold lasts unless ended."})
    model = model_field()
    idempotency_key = idempotency_field()


class ReleaseRequestSchema(StrictSchema):
    """Releasing takes no fields; an empty body or `{}`."""


class ReservationSchema(Schema):
    uuid = Uuid()
    user_uuid = Uuid(attribute="user.uuid")
    tokens = fields.Integer()
    state = fields.Function(lambda r: state_of(r, clock.now()), metadata={
        "enum": ["active", "committed", "released", "expired"]})
    model = fields.String(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)


class CommitResponseSchema(Schema):
    reservation = fields.Nested(ReservationSchema)
    event = fields.Nested(UsageEventSchema)
    usage = fields.Nested(ChatQuotaSchema)


class RefusalSchema(Schema):
    """429: the first refusing period; `Retry-After` gives the seconds to wait."""

    detail = fields.String(metadata={"example": "Daily token limit exceeded."})
    period = fields.String(validate=validate.OneOf(PERIODS))
    reset_at = fields.String(metadata={"format": "date-time"})
    remaining = fields.Integer(metadata={"description": "Tokens still admissible in that period."})


class ErrorSchema(Schema):
    """Every error except validation: `{"detail": "..."}`."""

    detail = fields.String()


class HealthSchema(Schema):
    status = fields.String()
    database = fields.String()
