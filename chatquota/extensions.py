"""Flask extensions, created unbound and bound in `create_app`."""

from flask import g
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from .dialect import Raw

# Every constraint and index gets a predictable name on every backend, so
# migrations can find it later (SQLite batch mode needs names to drop them).
NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Services commit and then still read what they wrote (e.g. the new event).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()


def connection() -> Raw:
    """Return this request's pooled DBAPI connection for the hot paths (see dialect.Raw).

    Checked out on first use and given back when the app context ends, so a
    request that never reads the database never takes one, and a streamed
    response does not keep one while it streams.
    """
    if "raw" not in g:
        g.raw = Raw(db.engine)
    return g.raw


def ledger_engine():
    """Return the engine for a ledger call, giving back this request's connection first.

    A caller waiting for its turn in the ledger must hold no connection: with
    more threads than pooled connections, the leader would otherwise wait for
    a connection that waiting followers hold.
    """
    release_connection()
    return db.engine


def release_connection(_error=None) -> None:
    """Give this request's connection back to the pool, if it took one."""
    raw = g.pop("raw", None)
    if raw is not None:
        raw.close()
