"""Metering for chat backends: check admission, record usage."""

from flask import current_app

from ..auth import METERING, require, target_user
from ..extensions import connection, ledger_engine
from ..schemas.metering import (
    CheckRequestSchema,
    CheckResponseSchema,
    ConsumeRequestSchema,
    ConsumeResponseSchema,
    RefusalSchema,
)
from ..services import metering
from . import Blueprint

blp = Blueprint("metering", __name__, url_prefix="/api/chat-quota",
                description="Admission and usage recording for chat backends.")


@blp.route("/check/", methods=["POST"])
@blp.arguments(CheckRequestSchema)
@blp.response(200, CheckResponseSchema)
@blp.alt_response(429, schema=RefusalSchema, description="Not admitted.")
def check(args):
    """Tell whether a request for `tokens` would be admitted now; record nothing."""
    user = target_user(args.get("user_uuid"), *METERING)
    report = metering.check(connection(), user, args["tokens"], current_app.config["TZ"])
    return {"allowed": True, "tokens": args["tokens"], "held": report.held, **report.fields()}


@blp.route("/consume/", methods=["POST"])
@require(*METERING)
@blp.arguments(ConsumeRequestSchema)
@blp.response(201, ConsumeResponseSchema)
@blp.alt_response(200, schema=ConsumeResponseSchema, description="A repeated idempotency_key: the first result.")
@blp.alt_response(429, schema=RefusalSchema, description="Not admitted; nothing recorded.")
def consume(args):
    """Record one usage event; with enforce (default), only if admitted."""
    result = metering.consume(ledger_engine(), current_app.config["TZ"], **args)
    body = {"event": result.event, "usage": result.report.fields()}
    return body, 201 if result.created else 200
