"""Health: does the database answer and take writes? No authentication."""

from flask import current_app

from ..extensions import db
from ..schemas.common import HealthSchema
from ..services.health import database_health
from . import Blueprint

blp = Blueprint("health", __name__, public=True, description="Service health.")


@blp.route("/health/", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema,
                  description="The database is unreachable, read-only or full.")
def health():
    """Report whether the service answers and its database takes writes."""
    found = database_health(db.session)
    if found.state != "ok":
        current_app.logger.warning("Health check failed: %s (%s)", found.detail, found.cause)
        return {"status": "error", "database": found.state, "detail": found.detail}, 503
    return {"status": "ok", "database": "ok"}
