"""Everything that differs between SQLite and PostgreSQL, in one place.

SQLite: WAL, a busy timeout, and write transactions that start with
`BEGIN IMMEDIATE`, so concurrent writers queue for the lock up front instead
of failing halfway with "database is locked". PostgreSQL: ordinary
transactions; admission serialises per user with `SELECT ... FOR UPDATE` on
the quota row (SQLite ignores FOR UPDATE, its lock is database-wide).
"""

from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

_IMMEDIATE = "chatquota_immediate"


def engine_options(url: str, config: dict) -> dict:
    """Return SQLAlchemy engine options suited to the database URL."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": config["SQLITE_BUSY_TIMEOUT_MS"] / 1000}}
    return {
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_MAX_OVERFLOW"],
        "pool_pre_ping": True,
    }


def configure_engine(engine: Engine, config: dict) -> None:
    """Install the per-connection setup for the engine's backend."""
    if engine.dialect.name != "sqlite":
        return
    busy_ms = int(config["SQLITE_BUSY_TIMEOUT_MS"])
    synchronous = config["SQLITE_SYNCHRONOUS"]

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the sqlite3 module, decide when BEGIN happens.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        immediate = conn.get_execution_options().get(_IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(session: Session):
    """Run the block as one write transaction; commit on success.

    Any read transaction already open is ended first: a SQLite read snapshot
    cannot safely be upgraded to a write while other processes write.
    """
    session.commit()  # no SQL unless a transaction is open
    session.connection(execution_options={_IMMEDIATE: True})
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def upsert(session: Session, model, values: dict, keys: list[str],
           add: tuple | list = (), replace: tuple | list = ()) -> None:
    """Insert a row; if `keys` exist, add to the `add` columns and overwrite `replace`."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = module.insert(model).values(**values)
    table = model.__table__
    update = {col: table.c[col] + stmt.excluded[col] for col in add}
    update.update({col: stmt.excluded[col] for col in replace})
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update))
