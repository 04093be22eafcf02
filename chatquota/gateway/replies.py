"""Errors in OpenAI's shape, which every OpenAI client library knows how to show.

`{"error": {"message", "type", "param", "code"}}`. A refusal carries
`x-should-retry: false`: the official SDKs otherwise retry a 429 with
backoff, for as long as the quota takes to reset.
"""

from flask import jsonify

from ..services.errors import Refusal


def error(status: int, message: str, kind: str, code: str | None = None,
          param: str | None = None, headers: dict | None = None):
    """Return an error response in OpenAI's shape (`param`: the request field at fault)."""
    response = jsonify({"error": {"message": message, "type": kind, "param": param, "code": code}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def refused(refusal: Refusal):
    """Return the 429 of a request the quota does not admit."""
    message = f"{refusal.detail.removesuffix('.')}; resets at {refusal.reset_at}."
    return error(429, message, "insufficient_quota", f"{refusal.period}_limit_exceeded",
                 headers={"Retry-After": str(refusal.retry_after), "x-should-retry": "false"})


def invalid(message: str, param: str | None = None):
    """Return a 400 for a request the gateway cannot read (`param`: the field at fault)."""
    return error(400, message, "invalid_request_error", param=param)


def unauthenticated(message: str):
    """Return a 401 naming what was wrong with the key."""
    return error(401, message, "invalid_request_error", "invalid_api_key",
                 headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str, code: str):
    """Return a 403: the key is valid, but not for this."""
    return error(403, message, "permission_error", code)


def upstream_failed(status: int, message: str):
    """Return a 502 (unreachable) or 504 (timed out): nothing was charged."""
    code = "upstream_timeout" if status == 504 else "upstream_unreachable"
    return error(status, message, "api_error", code)


def busy():
    """Return a 503: this worker's gateway threads are all taken; retry shortly."""
    return error(503, "The gateway is at capacity; retry shortly.", "api_error", "gateway_busy",
                 headers={"Retry-After": "1"})
