"""The OpenAI-compatible routes under /v1: three proxied POSTs and the model list."""

import httpx
from flask import Blueprint, current_app, request
from werkzeug.exceptions import HTTPException

from . import estimate, replies
from .proxy import authenticated, forward, state

bp = Blueprint("gateway", __name__, url_prefix="/v1")


@bp.url_value_preprocessor
def _prompt_sized_bodies(_endpoint, _values):
    # Runs before every body check of the app: prompts are far larger than API bodies.
    request.max_content_length = current_app.config["GATEWAY_MAX_BODY_BYTES"]


@bp.errorhandler(HTTPException)
def _openai_error(error: HTTPException):
    if error.response is not None:  # a reply the gateway built itself (abort(reply))
        return error.response
    kind = "invalid_request_error" if error.code < 500 else "api_error"
    return replies.error(error.code, error.description, kind)


@bp.post("/chat/completions")
def chat_completions():
    """Proxy a chat completion within the quota of the user it is charged to."""
    config = current_app.config
    return forward("chat/completions", lambda body, model: estimate.chat(
        body, model, config["GATEWAY_MAX_TOKENS"], state().learned))


@bp.post("/completions")
def completions():
    """Proxy a (legacy) text completion within the quota of the user it is charged to."""
    return forward("completions",
                   lambda body, model: estimate.completion(body, model, state().learned))


@bp.post("/embeddings")
def embeddings():
    """Proxy an embedding request within the quota of the user it is charged to."""
    return forward("embeddings",
                   lambda body, model: (estimate.embedding(body, model, state().learned), ()))


@bp.get("/models")
def models():
    """List the models of every upstream (each upstream's own list, as far as it serves them)."""
    authenticated()
    router, listed, seen = state().router, [], set()
    for upstream in router.upstreams:
        try:
            reply = router.client(upstream).get(f"{upstream.url}/models")
            reply.raise_for_status()
            data = reply.json().get("data", [])
        except httpx.TimeoutException:
            return replies.upstream_failed(504, f"Upstream {upstream.name} did not answer in time.")
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            return replies.upstream_failed(502, f"Upstream {upstream.name} cannot list models: "
                                                f"{error}")
        for entry in data if isinstance(data, list) else ():
            model = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(model, str) and model not in seen and upstream.serves(model):
                seen.add(model)
                listed.append(entry)
    return {"object": "list", "data": listed}
