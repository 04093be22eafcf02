"""Liveness: is the database reachable? No authentication."""

from ..extensions import db
from ..schemas.common import HealthSchema
from ..services.health import database_reachable
from . import Blueprint

blp = Blueprint("health", __name__, public=True, description="Service health.")


@blp.route("/health/", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="The database is unreachable.")
def health():
    """Report whether the service and its database answer."""
    if not database_reachable(db.session):
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}
