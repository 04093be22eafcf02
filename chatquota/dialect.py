"""Everything that differs between SQLite and PostgreSQL, in one place.

SQLite: WAL, a busy timeout, and write transactions that start with
`BEGIN IMMEDIATE`, so concurrent writers queue for the lock up front instead
of failing halfway with "database is locked". PostgreSQL: ordinary
transactions; admission serialises per user with `SELECT ... FOR UPDATE` on
the quota row (SQLite ignores FOR UPDATE, its lock is database-wide).

SQLite writers also queue on an flock'ed file beside the database: a waiter
for SQLite's own lock polls with sleeps of up to 100 ms, whereas a waiter
for the flock is woken the moment the holder commits.
"""

import fcntl
import os
import weakref
from contextlib import contextmanager, nullcontext
from functools import cache

from sqlalchemy import bindparam, event, false, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

_IMMEDIATE = "chatquota_immediate"
_WRITER_LOCKS: "weakref.WeakKeyDictionary[Engine, str]" = weakref.WeakKeyDictionary()


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
    if engine.url.database not in (None, "", ":memory:"):
        _WRITER_LOCKS[engine] = os.path.abspath(engine.url.database) + "-lock"

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
    with _writer_lock(session):
        session.connection(execution_options={_IMMEDIATE: True})
        try:
            yield
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def _exclusive(path: str):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _writer_lock(session: Session):
    """Return a context that holds this database's writer lock, if it has one."""
    path = _WRITER_LOCKS.get(session.get_bind())
    return nullcontext() if path is None else _exclusive(path)


def lock_rows(session: Session, statement, params: dict) -> None:
    """Run a `SELECT ... FOR UPDATE`, unless the write transaction already locks everything.

    On SQLite `BEGIN IMMEDIATE` holds the database-wide write lock and FOR
    UPDATE is a no-op; rows read inside `write_transaction` are fresh anyway.
    """
    if session.get_bind().dialect.name != "sqlite":
        # Fetched, not just executed: populate_existing refreshes only fetched rows.
        session.execute(statement, params).all()


def insert_missing(session: Session, model, rows: list[dict], keys: list[str]) -> None:
    """Insert the rows whose `keys` are not taken; leave existing rows untouched.

    On PostgreSQL an insert whose key another transaction has just inserted
    waits for that transaction to end, so rows made this way can then be
    locked with `lock_rows` even when two transactions create them at once.
    """
    stmt = _insert(session.get_bind().dialect.name, model)
    stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt, rows)


def upsert(session: Session, model, values: dict, keys: list[str], add: tuple | list) -> None:
    """Insert a row; if its `keys` exist, add the values of the `add` columns to it."""
    stmt = _upsert_statement(session.get_bind().dialect.name, model, tuple(values),
                             tuple(keys), tuple(add))
    session.execute(stmt, values)


def _insert(dialect: str, model):
    """Return an INSERT for `model` that supports ON CONFLICT on this backend."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)


@cache
def _upsert_statement(dialect: str, model, columns: tuple, keys: tuple, add: tuple):
    """Build an upsert once per shape; the values are bound at execution."""
    table = model.__table__
    stmt = _insert(dialect, model).values({col: bindparam(col) for col in columns})
    increments = {col: table.c[col] + stmt.excluded[col] for col in add}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=increments)


def probe_write(session: Session, table) -> None:
    """Make a write that changes nothing and roll it back; raise what a real write would raise.

    SQLite: under the writer lock, BEGIN IMMEDIATE and rewrite the header's
    `user_version` with its own value. BEGIN IMMEDIATE alone succeeds on a
    read-only file; the first page written is what fails. Rolled back, the
    page never reaches the disk, so this cannot notice a full disk (see
    `services.health`). PostgreSQL: an UPDATE of no row of `table`, which a
    read-only server (a standby, `default_transaction_read_only`) refuses all
    the same.
    """
    session.commit()  # no SQL unless a transaction is open
    with _writer_lock(session):
        connection = session.connection(execution_options={_IMMEDIATE: True})
        try:
            if connection.dialect.name == "sqlite":
                version = int(connection.exec_driver_sql("PRAGMA user_version").scalar())
                connection.exec_driver_sql(f"PRAGMA user_version = {version}")
            else:
                connection.execute(update(table).where(false()).values(
                    {column.name: column for column in table.primary_key}))
        finally:
            session.rollback()
