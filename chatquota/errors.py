"""The one place errors become HTTP responses, in Django REST Framework's shape.

Validation errors: 400 `{"field": ["message", ...]}` (`non_field_errors` for
the body as a whole). Everything else: `{"detail": "message"}`. A database
that refuses writes (read-only, disk full) is a 503 that says so, not a 500.
"""

from flask import current_app, jsonify, request
from marshmallow.schema import SCHEMA
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    RequestEntityTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)

from .services import errors as domain

STATUS = {domain.NotFound: 404, domain.Forbidden: 403, domain.Conflict: 409}  # any other domain error: 400

DETAILS = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    413: "Request body too large.",
    415: "Unsupported media type; send application/json.",
    500: "A server error occurred.",
}
MALFORMED_BODY = "Malformed request body: its chunked framing is broken."


def error_response(status: int, body: dict, headers: dict | None = None):
    """Return a JSON error response."""
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def validation_body(messages: dict) -> dict:
    """Flatten webargs' `{location: {field: [...]}}` into DRF's `{field: [...]}`."""
    body = {}
    for location_or_field, value in messages.items():
        nested = value if isinstance(value, dict) else {location_or_field: value}
        for field, errors in nested.items():
            key = "non_field_errors" if field == SCHEMA else field
            body.setdefault(key, []).extend(_flatten(errors))
    return body


def _flatten(errors) -> list[str]:
    if isinstance(errors, dict):
        return [m for v in errors.values() for m in _flatten(v)]
    if isinstance(errors, list):
        return [m for v in errors for m in _flatten(v)]
    return [str(errors)]


def handle_http_exception(error: HTTPException):
    """Render any HTTPException (abort, routing, webargs) as a DRF-style body."""
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if error.code == 401:
        headers["WWW-Authenticate"] = "Token"
    if "messages" in data:
        return error_response(error.code, validation_body(data["messages"]), headers)
    if error.code == 405:
        detail = f'Method "{request.method}" not allowed.'
    else:
        detail = data.get("message") or DETAILS.get(error.code) or error.description
    return error_response(error.code, {"detail": detail}, headers)


def handle_domain_error(error: domain.DomainError):
    """Render a service's domain error."""
    if isinstance(error, domain.QuotaExceeded):
        r = error.refusal
        body = {"detail": r.detail, "period": r.period, "scope": r.scope,
                **({"group_uuid": r.group_uuid} if r.scope == "group" else {}),
                "reset_at": r.reset_at, "remaining": r.remaining}
        return error_response(429, body, {"Retry-After": str(r.retry_after)})
    if isinstance(error, domain.InvalidValue):
        return error_response(400, {error.field: [error.message]})
    status = next((code for cls, code in STATUS.items() if isinstance(error, cls)), 400)
    return error_response(status, {"detail": error.message})


def handle_storage_error(error: Exception):
    """Answer 503 saying why when the database refuses a write (read-only, full); else a 500.

    Rendered like any HTTP error of the area that failed (JSON for the API,
    the error page for the dashboard); the cause is logged once, here.
    """
    state = domain.storage_failure(error)
    if state is None:
        raise error  # not ours to explain: Flask logs it and answers 500
    current_app.logger.error(domain.STORAGE_DETAILS[state], exc_info=error)
    return current_app.handle_http_exception(ServiceUnavailable(domain.STORAGE_DETAILS[state]))


def read_streamed_body():
    """Read a body sent without Content-Length (chunked) before anything else does.

    Werkzeug stops reading such a body at MAX_CONTENT_LENGTH and hands over
    what it read as if that were all of it, so one byte more is read from
    the server's stream to tell a body of exactly the limit from a longer
    one (413). Broken chunk framing surfaces while reading, as whatever
    exception the WSGI server raises (gunicorn: InvalidChunkSize,
    ChunkMissingTerminator, ...): a 400, not a 500.
    """
    limit = request.max_content_length
    if "Transfer-Encoding" not in request.headers or request.content_length is not None:
        return None  # no body, or one whose length Werkzeug checks against the limit
    try:
        too_large = len(request.get_data(cache=True)) == limit and request.input_stream.read(1)
    except HTTPException:
        raise
    except Exception as error:  # the server's own types; nothing else runs in this block
        current_app.logger.info("Refused a request body: %r", error)
        return error_response(400, {"detail": MALFORMED_BODY})
    if too_large:
        raise RequestEntityTooLarge()
    return None


def require_json_body():
    """Refuse, before any view runs, bodies that are not well-formed JSON.

    The body is read whole, so chunked uploads (no Content-Length) are checked
    too (`read_streamed_body` has read those already, within the limit).
    """
    if request.method not in ("POST", "PUT", "PATCH") or not request.get_data(cache=True):
        return None
    if not request.is_json:
        raise UnsupportedMediaType()
    try:
        request.get_json()
    except (BadRequest, RecursionError):  # malformed, or nested deeper than the parser goes
        return error_response(400, {"detail": "JSON parse error: the body is not valid JSON."})
    return None


def register(app) -> None:
    """Install the error handlers, and the check of bodies sent without Content-Length."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(domain.DomainError, handle_domain_error)
    app.register_error_handler(DBAPIError, handle_storage_error)
    app.register_error_handler(OSError, handle_storage_error)  # the SQLite writer-lock file
    app.before_request(read_streamed_body)
