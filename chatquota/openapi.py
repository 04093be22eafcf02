"""The OpenAPI document: flask-smorest builds it from the schemas, this module completes it.

smorest documents what the decorators say (parameters, bodies, success and
declared statuses). What every view has in common is added here, once, from
facts the app knows: the `Token` security scheme (every operation but the
public blueprints'), the error responses each operation can give with the
bodies `chatquota.errors` really sends, and snake_case operation ids. A view
only declares what no rule can guess, e.g. `@blp.alt_response(409)`; its body
is filled in here.
"""

import copy

import flask_smorest
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from flask_smorest.spec.plugins import FlaskPlugin

from .schemas.common import ErrorSchema
from .schemas.metering import RefusalSchema
from .schemas.quota import ChatQuotaSchema

DESCRIPTION = """\
Meters and limits the LLM tokens each user may spend per day, week and month.

Authenticate with the header `Authorization: Token <key>`.

Errors use Django REST Framework's shape: a validation error is a 400
`{"field": ["message", ...]}` (`non_field_errors` for the body as a whole);
every other error is `{"detail": "message"}`, including unknown routes (404)
and methods a route does not allow (405).
"""

# Component names the published Waldur clients use for the seed endpoints.
COMPONENT_NAMES = {ChatQuotaSchema: "TokenQuotaUsageResponse"}

WRITE_METHODS = {"post", "put", "patch"}
JSON = "application/json"


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _error(description: str, schema: dict, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {
    "description": "Whole seconds until the latest reset among the refusing periods.",
    "schema": {"type": "integer", "minimum": 0}}}

ERRORS = {
    400: ("BadRequest", _error(
        "Validation error `{field: [messages]}`, or a malformed body `{detail}`.",
        {"oneOf": [_ref("schemas", "ValidationError"), _ref("schemas", "Error")]})),
    401: ("Unauthorized", _error(
        "Missing, malformed, revoked or inactive-user credentials.", _ref("schemas", "Error"),
        {"WWW-Authenticate": {"description": "Always `Token`.", "schema": {"type": "string"}}})),
    403: ("Forbidden", _error("The caller's roles do not allow this.", _ref("schemas", "Error"))),
    404: ("NotFound", _error("The user, object or page does not exist.", _ref("schemas", "Error"))),
    409: ("Conflict", _error("The request conflicts with the current state.", _ref("schemas", "Error"))),
    413: ("PayloadTooLarge", _error("The body is larger than CHATQUOTA_MAX_BODY_BYTES.",
                                    _ref("schemas", "Error"))),
    415: ("UnsupportedMediaType", _error("The body is not `application/json`.", _ref("schemas", "Error"))),
    429: ("TooManyRequests", _error("Not admitted; nothing was recorded.",
                                    _ref("schemas", "Refusal"), RETRY_AFTER)),
    503: ("ServiceUnavailable", _error(
        "The database cannot be written (read-only, disk full) or opened; nothing was changed.",
        _ref("schemas", "Error"))),
}

VALIDATION_ERROR = {
    "type": "object",
    "description": "Field name (or `non_field_errors`) -> list of messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "example": {"daily_limit": ["A valid integer is required."]},
}

TOKEN_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "Token <key>",
}


class Api(flask_smorest.Api):
    """smorest's Api with chatquota's error body and no catch-all `default` response."""

    ERROR_SCHEMA = ErrorSchema  # registered by smorest as the "Error" component
    DEFAULT_ERROR_RESPONSE_NAME = None


def _schema_name(schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return COMPONENT_NAMES.get(cls) or resolver(schema)


def init_app(app) -> Api:
    """Create the smorest Api; it serves no routes of its own (see `chatquota.docs`)."""
    app.config.update(
        API_TITLE="chatquota",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=None,  # the one spec route is chatquota.docs'
    )
    api = Api(app, spec_kwargs={
        "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=_schema_name),
        "info": {"description": DESCRIPTION},
    })
    api.spec.components.schema("Refusal", schema=RefusalSchema)
    api.spec.components.schema("ValidationError", VALIDATION_ERROR)
    api.spec.components.security_scheme("Token", TOKEN_SCHEME)
    for name, response in ERRORS.values():
        api.spec.components.response(name, response)
    return api


def document(app) -> dict:
    """Return the complete OpenAPI document of the app (built once, then cached)."""
    cache = app.extensions.setdefault("chatquota-openapi", {})
    if "document" not in cache:
        api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
        doc = copy.deepcopy(api.spec.to_dict())
        for rule in documented_rules(app):
            blueprint = app.blueprints[rule.endpoint.rpartition(".")[0]]
            view = app.view_functions[rule.endpoint]
            route = FlaskPlugin.flaskpath2openapi(rule.rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                _complete(doc, route, method.lower(), blueprint, view)
        _add_schema_extras(api, doc)
        _prune_components(doc)
        cache["document"] = doc
    return cache["document"]


def documented_rules(app) -> list:
    """Return the URL rules of the API blueprints: what the document describes."""
    from .api import Blueprint

    return [rule for rule in app.url_map.iter_rules()
            if isinstance(app.blueprints.get(rule.endpoint.rpartition(".")[0]), Blueprint)]


def _complete(doc: dict, route: str, method: str, blueprint, view) -> None:
    """Add security, error responses and an operation id to one operation."""
    path = doc["paths"][route]
    operation = path[method]
    operation.setdefault("operationId", operation_id(route, path, method, view))
    public = getattr(blueprint, "public", False)
    operation["security"] = [] if public else [{"Token": []}]
    roles = getattr(view, "required_roles", ())
    if roles:
        names = " or ".join(role.removeprefix("is_") for role in roles)
        operation["description"] = (operation.get("description", "") + f"\n\nRole: {names}.").strip()
    _document_path_uuids(path, method)
    responses = operation["responses"] = {str(k): v for k, v in operation["responses"].items()}
    for status in _error_statuses(doc, path, method, public):
        responses.setdefault(str(status), _ref("responses", ERRORS[status][0]))
    if "400" in responses:  # smorest's own BAD_REQUEST has the wrong body
        responses["400"] = _ref("responses", "BadRequest")
    for status, response in responses.items():
        if int(status) in ERRORS and "$ref" not in response:
            _fill_error_body(response, int(status))
    operation["responses"] = dict(sorted(responses.items()))


def _fill_error_body(response: dict, status: int) -> None:
    """Give a view-declared error status the body and headers errors.py sends."""
    standard = ERRORS[status][1]
    response.setdefault("content", copy.deepcopy(standard["content"]))
    if "headers" in standard:
        response.setdefault("headers", copy.deepcopy(standard["headers"]))


def _error_statuses(doc: dict, path: dict, method: str, public: bool) -> set[int]:
    """Return the error statuses this operation can answer, from what it takes."""
    inputs = _input_names(doc, path, method)
    statuses = {503}  # any operation may meet a database that cannot be written or opened
    if inputs or method in WRITE_METHODS:
        statuses.add(400)
    if method in WRITE_METHODS:
        statuses |= {413, 415}
    if not public:
        statuses |= {401, 403}
    has_path_params = any(p.get("in") == "path" for p in _parameters(path, method))
    if has_path_params:  # a malformed `*uuid` in the path is a 400 naming it
        statuses.add(400)
    if has_path_params or "page" in inputs or any(n.endswith("uuid") for n in inputs):
        statuses.add(404)
    if "idempotency_key" in inputs or (has_path_params and method in WRITE_METHODS | {"delete"}):
        statuses.add(409)
    return statuses


def _document_path_uuids(path: dict, method: str) -> None:
    """Say that a path parameter named `*uuid` is a uuid: the views parse it as one."""
    for parameter in _parameters(path, method):
        if parameter.get("in") == "path" and parameter["name"].endswith("uuid"):
            parameter["schema"] = {"type": "string", "format": "uuid"}


def _parameters(path: dict, method: str) -> list[dict]:
    return path.get("parameters", []) + path[method].get("parameters", [])


def _input_names(doc: dict, path: dict, method: str) -> set[str]:
    """Return the names of the query and body fields an operation takes."""
    names = {p["name"] for p in _parameters(path, method) if p.get("in") == "query"}
    body = path[method].get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema", {})
    return names | set(_resolve(doc, body).get("properties", {}))


def _resolve(doc: dict, schema: dict) -> dict:
    if "$ref" in schema:
        return doc["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    return schema


def operation_id(route: str, path: dict, method: str, view) -> str:
    """Name an operation like Waldur does: `users_list`, `chat_quota_consume`.

    The static path segments after `/api/` joined by `_`; a GET ends in
    `_list` (array body) or `_retrieve`; a write whose last segment is the
    view's name is an action (`.../commit/`) and keeps it alone; other
    writes end in `_create`, `_update`, `_partial_update`, `_destroy`.
    """
    segments = [s.replace("-", "_") for s in route.split("/")
                if s and s != "api" and not s.startswith("{")]
    base = "_".join(segments) or "root"
    if method == "get":
        ok = path[method]["responses"].get("200", {}).get("content", {}).get(JSON, {})
        return f"{base}_{'list' if ok.get('schema', {}).get('type') == 'array' else 'retrieve'}"
    if segments and segments[-1] == view.__name__ and not route.endswith("}/"):
        return base
    suffix = {"post": "create", "put": "update", "patch": "partial_update", "delete": "destroy"}
    return f"{base}_{suffix[method]}"


def _add_schema_extras(api, doc: dict) -> None:
    """Merge each schema's `Meta.openapi` (rules across fields) into its component."""
    schemas = doc["components"]["schemas"]
    for key, name in api.ma_plugin.converter.refs.items():
        extra = getattr(getattr(key[0], "Meta", None), "openapi", None)
        if extra and name in schemas:
            schemas[name].update(copy.deepcopy(extra))


def _prune_components(doc: dict) -> None:
    """Drop components nothing refers to (smorest registers some it never uses)."""
    while True:
        text = repr(doc)
        unused = [(kind, name) for kind, items in doc["components"].items()
                  if kind != "securitySchemes" for name in items
                  if f"#/components/{kind}/{name}'" not in text]
        if not unused:
            return
        for kind, name in unused:
            del doc["components"][kind][name]
