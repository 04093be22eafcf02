"""Forwarding one call: admit a hold, fit the reply's cap to it, ask the upstream, settle.

The order is what keeps the bound: nothing reaches the upstream before its
hold is admitted (one ledger transaction, like any reservation), and the cap
sent upstream is lowered to what the hold covers, so a reply ends at the
limit instead of past it.
"""

import threading
from dataclasses import dataclass

import httpx
from flask import Response, abort, current_app, request

from ..extensions import connection, db, ledger_engine
from ..services import accounts, reservations
from ..services.accounts import UserRecord
from ..services.errors import InvalidValue, QuotaExceeded, UserInactive
from . import replies
from .calls import Call
from .charged import Unknown, charged_user
from .estimate import Invalid, Learned, Plan, reported_usage
from .relay import Stream
from .upstreams import Router, Upstream

STREAM_MARGIN_SECONDS = 30  # a stream ends this long before its hold would expire


@dataclass
class Gateway:
    """The gateway of one app: its upstreams, what it learnt, and its thread slots."""

    router: Router
    learned: Learned
    slots: threading.BoundedSemaphore


def state() -> Gateway:
    return current_app.extensions["chatquota.gateway"]


def authenticated() -> UserRecord:
    """Return the caller of `Authorization: Bearer <key>` (or `Token <key>`), or abort 401."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not key.strip():
        abort(replies.unauthenticated(
            "Missing API key: send 'Authorization: Bearer <your chatquota key>'."))
    caller = accounts.authenticate(connection(), key.strip())
    if caller is None:
        abort(replies.unauthenticated("Invalid API key, or its user is deactivated."))
    return caller


def json_body() -> dict:
    """Return the request's JSON object, or abort 400."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        abort(replies.invalid("The body must be a JSON object."))
    return body


def model_of(body: dict) -> str:
    """Return the body's model name, or abort 400 (events store up to 200 characters)."""
    model = body.get("model")
    if not isinstance(model, str) or not 1 <= len(model) <= 200:
        abort(replies.invalid("'model' must be a model name of 1 to 200 characters.", "model"))
    return model


def whom(caller: UserRecord, body: dict) -> UserRecord:
    """Return the user the call is charged to, or abort 400/403."""
    named = request.headers.get(current_app.config["GATEWAY_USER_HEADER"]) or body.get("user")
    try:
        user = charged_user(connection(), db.session, caller,
                            named if isinstance(named, str) else None,
                            current_app.config["GATEWAY_CREATE_USERS"])
    except Unknown as unknown:
        abort(replies.forbidden(f"chatquota has no user {unknown.args[0]!r}; an operator creates "
                                "it, or sets CHATQUOTA_GATEWAY_CREATE_USERS=true.", "unknown_user"))
    except InvalidValue as bad:
        abort(replies.invalid(bad.message, "user"))
    if not user.is_active:
        abort(_inactive())
    return user


def _inactive():
    return replies.forbidden("This user is deactivated; nothing is admitted for them.",
                             "user_inactive")


@dataclass
class Outgoing:
    """A call ready to be admitted: whom it charges, its body, model, upstream and plan."""

    user: UserRecord
    body: dict
    model: str
    upstream: Upstream
    plan: Plan
    cap_fields: tuple


def planned(router: Router, planner) -> Outgoing:
    """Read, check and plan the request; abort with its 4xx when it cannot be forwarded.

    `planner(body, model)` returns the request's Plan and the body fields
    that carry its completion cap.
    """
    caller = authenticated()
    body = json_body()
    model = model_of(body)
    upstream = router.for_model(model)
    if upstream is None:
        abort(replies.error(404, f"The model '{model}' does not exist.", "invalid_request_error",
                            "model_not_found", param="model"))
    user = whom(caller, body)
    try:
        plan, cap_fields = planner(body, model)
    except Invalid as bad:
        abort(replies.invalid(str(bad), bad.param))
    return Outgoing(user, body, model, upstream, plan, cap_fields)


def forward(path: str, planner) -> Response:
    """Proxy one POST to the upstream of its model, within the charged user's quota."""
    gateway = state()
    out = planned(gateway.router, planner)
    if not gateway.slots.acquire(blocking=False):
        abort(replies.busy())
    handed_over = False  # to the streamed body, which frees the slot when it ends
    try:
        call = _admit(out.user, out.plan, out.model, gateway.learned)
        if call.held.tokens < out.plan.wanted:
            for field in out.cap_fields:
                out.body[field] = out.plan.cap_within(call.held.tokens)
        show_usage = _ask_for_usage(out.body) if out.body.get("stream") is True else None
        reply = _ask(gateway.router.client(out.upstream), f"{out.upstream.url}/{path}",
                     out.body, show_usage is not None, call)
        if reply.status_code >= 400:  # the upstream's own error, passed on; nothing charged
            call.cancel()
            return _passed_on(reply)
        if show_usage is None:
            _settle_whole(call, reply)
            return _passed_on(reply)
        seconds = current_app.config["GATEWAY_HOLD_SECONDS"] - STREAM_MARGIN_SECONDS
        handed_over = True
        return Response(Stream(reply, call, show_usage, seconds, gateway.slots.release),
                        status=reply.status_code,
                        content_type=reply.headers.get("content-type", "text/event-stream"),
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    finally:
        if not handed_over:
            gateway.slots.release()


def _ask_for_usage(body: dict) -> bool:
    """Ask the upstream for a stream's usage; return whether the client asked for it too."""
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    body["stream_options"] = {**options, "include_usage": True}
    return options.get("include_usage") is True


def _admit(user: UserRecord, plan: Plan, model: str, learned: Learned) -> Call:
    """Hold the plan's bound, or as much of it as the quota leaves (at least its minimum)."""
    config = current_app.config
    try:
        held = reservations.reserve(
            ledger_engine(), config["TZ"], user_uuid=user.uuid, tokens=plan.wanted,
            at_least=plan.at_least, ttl_seconds=config["GATEWAY_HOLD_SECONDS"], model=model)
    except QuotaExceeded as refused:
        abort(replies.refused(refused.refusal))
    except UserInactive:
        abort(_inactive())
    return Call(db.engine, config["TZ"], held.reservation, plan, model, learned)


def _ask(client: httpx.Client, url: str, body: dict, streaming: bool, call: Call):
    """Send the call upstream; on no answer release the hold and abort 502, or 504 on timeout."""
    try:
        if streaming:
            return client.send(client.build_request("POST", url, json=body), stream=True)
        return client.post(url, json=body)
    except httpx.TimeoutException:
        call.cancel()
        abort(replies.upstream_failed(504, "The upstream did not answer in time."))
    except httpx.HTTPError as error:
        call.cancel()
        abort(replies.upstream_failed(502, f"The upstream cannot be reached: {error}"))


def _settle_whole(call: Call, reply: httpx.Response) -> None:
    """Settle a whole (non-streamed) reply: its usage, else the size of its output."""
    try:
        data = reply.json()
    except ValueError:
        data = None
    usage = reported_usage(data)
    call.settle(usage, 0 if usage is not None else _output_bytes(data))


def _output_bytes(data) -> int:
    """Bound a reply's output tokens by its bytes, when it reports no usage."""
    if not isinstance(data, dict):
        return 0
    total = 0
    for choice in data.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        text = (message or {}).get("content") if isinstance(message, dict) else choice.get("text")
        if isinstance(text, str):
            total += len(text.encode("utf-8", "surrogatepass"))
    return total


def _passed_on(reply: httpx.Response) -> Response:
    """Return the upstream's reply as it is (read whole, also when it was opened as a stream)."""
    try:
        content = reply.read()
    finally:
        reply.close()
    return Response(content, status=reply.status_code,
                    content_type=reply.headers.get("content-type", "application/json"))
