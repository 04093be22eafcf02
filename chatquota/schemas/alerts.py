"""Marshmallow schemas of alerts: the thresholds, webhooks, and their delivery log."""

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..services.alerts import MAX_PERCENT, MAX_THRESHOLDS
from ..services.events import EVENT_TYPES, FORMATS
from .fields import Integral, StrictSchema, Uuid

MIN_SECRET, MAX_SECRET = 16, 200


class AlertThresholdsSchema(StrictSchema):
    """The alert thresholds, in percent of each period's limit; `[]` turns alerts off."""

    thresholds = fields.List(
        Integral(validate=validate.Range(min=1, max=MAX_PERCENT)), required=True,
        validate=validate.Length(max=MAX_THRESHOLDS),
        metadata={"description": f"Up to {MAX_THRESHOLDS} percentages (1..{MAX_PERCENT}); "
                                 "returned ascending, without repeats."})


def _url(**kwargs) -> fields.Url:
    return fields.Url(schemes={"http", "https"}, require_tld=False,
                      validate=validate.Length(max=2000),
                      metadata={"description": "An http or https URL, e.g. a Slack or "
                                               "Mattermost incoming webhook."}, **kwargs)


def _secret(**kwargs) -> fields.String:
    return fields.String(load_only=True, validate=validate.Length(min=MIN_SECRET, max=MAX_SECRET),
                         metadata={"description": "Signs every delivery (HMAC-SHA256); "
                                                  "write-only, never returned."}, **kwargs)


def _format(**kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(FORMATS), metadata={
        "description": "`json`: the event; `slack`: `{\"text\": ...}` for Slack, Mattermost "
                       "and Rocket.Chat incoming webhooks."}, **kwargs)


def _events(**kwargs) -> fields.List:
    return fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)),
                       validate=validate.Length(max=len(EVENT_TYPES)),
                       metadata={"description": "Event types delivered; `[]` pauses the webhook "
                                                "(test events still go)."}, **kwargs)


class _WebhookBody(StrictSchema):
    @post_load
    def _unique_events(self, data, **kwargs):
        if "events" in data:
            data["events"] = list(dict.fromkeys(data["events"]))
        return data


class WebhookCreateSchema(_WebhookBody):
    url = _url(required=True)
    secret = _secret(required=True)
    format = _format(load_default="json")
    events = _events(load_default=lambda: list(EVENT_TYPES))


class WebhookUpdateSchema(_WebhookBody):
    url = _url()
    secret = _secret()
    format = _format()
    events = _events()

    class Meta(_WebhookBody.Meta):
        openapi = {"minProperties": 1}

    @validates_schema
    def _some(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one of url, secret, format, events.")


class WebhookSchema(Schema):
    uuid = Uuid()
    url = fields.String()
    format = fields.String()
    events = fields.List(fields.String(), attribute="event_types")
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class AttemptSchema(Schema):
    started_at = fields.DateTime()
    status_code = fields.Integer(allow_none=True, metadata={"description": "The receiver's "
                                                           "HTTP status; null if none came."})
    error = fields.String(allow_none=True, metadata={"description": "Why there was no status."})
    duration_ms = fields.Integer(allow_none=True)


class DeliverySchema(Schema):
    """One event for one webhook: its state, the event (as `json` webhooks get it), each attempt."""

    event_id = Uuid(metadata={"description": "Also `X-Chatquota-Event-Id`: the same on "
                                             "every attempt."})
    type = fields.String(metadata={"description": "`quota.threshold` or `webhook.test`."})
    state = fields.String(metadata={"description": "`pending`, `delivered` or `failed`."})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    event = fields.Dict()
    log = fields.List(fields.Nested(AttemptSchema))
