"""The HTTP API: blueprints that parse with a schema, call one service, dump."""

from functools import cache

from flask_smorest import Blueprint as _Blueprint
from flask_smorest import abort
from marshmallow import Schema, ValidationError
from marshmallow.schema import SCHEMA
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

from ..auth import authenticate
from ..errors import require_json_body
from ..schemas.fields import Uuid, unstorable_fields
from .pagination import WaldurPaginationMixin


class _Parser(FlaskParser):
    # DRF (and so Waldur clients) answer validation errors with 400, not 422.
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req):
        # errors.require_json_body has parsed (and vetted) the body already;
        # Flask caches the result, so the body is not decoded twice.
        if not is_json_request(req) or not req.get_data(cache=True):
            return missing
        return req.get_json()

    def pre_load(self, location_data, *, schema, req, location):
        """Refuse NUL and lone surrogate characters in any query or body field, naming the field."""
        items = req.args.items(multi=True) if location == "query" else (
            location_data.items() if isinstance(location_data, dict)
            else [(SCHEMA, location_data)])
        bad = unstorable_fields(items)
        if bad:
            raise ValidationError(bad)
        return location_data

    def _get_schema(self, argmap, req):
        # webargs builds a new instance of a schema class on every request
        # (deep-copying its fields); one instance per class serves them all.
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            return _schema_instance(argmap)
        return super()._get_schema(argmap, req)


@cache
def _schema_instance(schema_class: type[Schema]) -> Schema:
    return schema_class()


_PATH_UUID = Uuid()


def path_uuid(value: str, name: str) -> str:
    """Return a uuid from the URL as 32 hex digits, or abort with a 400 naming it."""
    try:
        return _PATH_UUID.deserialize(value)
    except ValidationError as error:
        abort(400, messages={name: error.messages})


class Blueprint(WaldurPaginationMixin, _Blueprint):
    """A smorest blueprint whose requests are JSON-checked and authenticated."""

    ARGUMENTS_PARSER = _Parser()
    PAGINATION_ARGUMENTS_PARSER = _Parser()

    def __init__(self, *args, public: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.public = public  # no token needed; the OpenAPI document says so
        self.before_request(require_json_body)
        if not public:
            self.before_request(authenticate)


def register(api) -> None:
    """Register every API blueprint."""
    from . import (
        administration,
        chat_quota,
        group_quotas,
        groups,
        health,
        history,
        metering,
        model_weights,
        reservations,
        users,
        webhooks,
    )

    for module in (chat_quota, metering, reservations, administration, history, users, groups,
                   group_quotas, model_weights, webhooks, health):
        api.register_blueprint(module.blp)
