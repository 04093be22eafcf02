"""Metering: check, consume, reservations, and the refusal body."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .. import clock
from ..periods import PERIODS
from ..services.limits import MAX_LIMIT
from ..services.reservations import state_of
from .fields import Flag, Integral, StrictSchema, Uuid, token_field
from .quota import ChatQuotaSchema

MAX_TTL_SECONDS = 86400


class CheckRequestSchema(StrictSchema):
    user_uuid = Uuid(metadata={"description": "Whose quota to check; omit for your own."})
    tokens = token_field(load_default=0, metadata={
        "description": "Tokens the request may be charged (after model weights)."})


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
                           "when both are given, `tokens` must equal their sum. The model's "
                           "weights decide the charge: `ceil(input_tokens * input_weight + "
                           "output_tokens * output_weight)`; with only `tokens` (no split), "
                           "`ceil(tokens * max(input_weight, output_weight))`. A model "
                           "without weights weighs 1.",
            "anyOf": [{"required": [name]} for name in ("tokens", "input_tokens", "output_tokens")],
        }

    @validates_schema
    def _total(self, data, **kwargs):
        resolve_tokens(data)


def model_field() -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=200),
                         metadata={"description": "The LLM model: for reports, and its "
                                                  "weights decide the tokens charged."})


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
    user_uuid = Uuid()
    tokens = fields.Integer(metadata={"description": "Tokens used (input + output)."})
    input_tokens = fields.Integer(allow_none=True)
    output_tokens = fields.Integer(allow_none=True)
    model = fields.String(allow_none=True)
    charged_tokens = fields.Integer(metadata={
        "description": "What counts against the quotas: the tokens weighted by the model's "
                       "weights when the event was recorded (= tokens for unweighted models)."})
    enforced = fields.Boolean()
    idempotency_key = fields.String(allow_none=True)
    created_at = fields.DateTime()


class ConsumeResponseSchema(Schema):
    event = fields.Nested(UsageEventSchema)
    usage = fields.Nested(ChatQuotaSchema)


class ReserveRequestSchema(StrictSchema):
    """Hold tokens for a streamed reply."""

    user_uuid = Uuid(required=True)
    tokens = token_field(required=True, metadata={
        "description": "Charged tokens to hold (an estimate; model weights are applied at "
                       "commit, not to the hold)."})
    ttl_seconds = Integral(load_default=600, validate=validate.Range(min=1, max=MAX_TTL_SECONDS),
                           metadata={"description": "How long the hold lasts unless ended."})
    model = model_field()
    idempotency_key = idempotency_field()


class ReleaseRequestSchema(StrictSchema):
    """Releasing takes no fields; an empty body or `{}`."""


class ReservationSchema(Schema):
    uuid = Uuid()
    user_uuid = Uuid()
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
    """429: the first refusing period of the user, or else of the first refusing group.

    `Retry-After` gives the seconds until every refusing period has reset.
    """

    detail = fields.String(metadata={
        "example": "Daily token limit exceeded.",
        "description": "`Daily token limit exceeded.`, or for a group "
                       "`Daily token limit of group 'physics' exceeded.`"})
    period = fields.String(validate=validate.OneOf(PERIODS))
    scope = fields.String(validate=validate.OneOf(("user", "group")), metadata={
        "description": "Whose limit refuses: the user's own, or one of the user's groups'."})
    group_uuid = Uuid(metadata={"description": "The refusing group (only when scope is group)."})
    reset_at = fields.String(metadata={"format": "date-time"})
    remaining = fields.Integer(metadata={"description": "Tokens still admissible in that period."})


