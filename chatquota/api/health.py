"""Liveness: is the database reachable? No authentication."""

from sqlalchemy import text

from ..extensions import db
from ..schemas import HealthSchema
from . import Blueprint

blp = Blueprint("health", __name__, public=True, description="Service health.")


@blp.route("/health/", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="The database is unreachable.")
def health():
    """Report whether the service and its database answer."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any driver error means "unreachable" here
        db.session.rollback()
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}
