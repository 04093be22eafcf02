"""Health: whether the database answers."""

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session


def database_reachable(session: Session) -> bool:
    """Tell whether the database answers a trivial query."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError:  # any driver or pool error means "unreachable" here
        session.rollback()
        return False
    return True
