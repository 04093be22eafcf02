"""Reservations for streamed replies: reserve, inspect, commit, release."""

from flask import current_app

from ..auth import METERING, current_user, has_role, require
from ..extensions import db, ledger_engine
from ..schemas.metering import (
    CommitResponseSchema,
    RefusalSchema,
    ReleaseRequestSchema,
    ReservationSchema,
    ReserveRequestSchema,
    TokensSchema,
)
from ..services import reservations
from ..services.errors import ReservationNotFound
from . import Blueprint, path_uuid

blp = Blueprint("reservations", __name__, url_prefix="/api/chat-quota/reservations",
                description="Holds for streamed replies.")


def _uuid(text: str) -> str:
    return path_uuid(text, "reservation_uuid")


@blp.route("/", methods=["POST"])
@require(*METERING)
@blp.arguments(ReserveRequestSchema)
@blp.response(201, ReservationSchema)
@blp.alt_response(200, schema=ReservationSchema, description="A repeated idempotency_key: the first result.")
@blp.alt_response(429, schema=RefusalSchema, description="Not admitted; nothing held.")
def reserve(args):
    """Admit and hold tokens for a streamed reply."""
    held = reservations.reserve(ledger_engine(), current_app.config["TZ"], **args)
    return held.reservation, 201 if held.created else 200


@blp.route("/<reservation_uuid>/", methods=["GET"])
@blp.response(200, ReservationSchema)
def retrieve(reservation_uuid):
    """Show one reservation (metering roles: any; others: their own)."""
    reservation = reservations.get_reservation(db.session, _uuid(reservation_uuid))
    if reservation.user_id != current_user().id and not has_role(current_user(), *METERING):
        raise ReservationNotFound()
    return reservation


@blp.route("/<reservation_uuid>/commit/", methods=["POST"])
@require(*METERING)
@blp.arguments(TokensSchema)
@blp.response(200, CommitResponseSchema)
def commit(args, reservation_uuid):
    """Record the reply's actual usage and end the hold (also after expiry)."""
    done = reservations.commit(ledger_engine(), current_app.config["TZ"], _uuid(reservation_uuid), **args)
    return {"reservation": done.reservation, "event": done.event, "usage": done.report.fields()}


@blp.route("/<reservation_uuid>/release/", methods=["POST"])
@require(*METERING)
@blp.arguments(ReleaseRequestSchema)
@blp.response(200, ReservationSchema)
def release(_args, reservation_uuid):
    """End a hold without recording usage."""
    return reservations.release(ledger_engine(), _uuid(reservation_uuid))
