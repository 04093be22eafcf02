"""Everything that differs between SQLite and PostgreSQL, in one place.

SQLite: WAL, a busy timeout, and write transactions that start with
`BEGIN IMMEDIATE`, so concurrent writers queue for the lock up front instead
of failing halfway with "database is locked". Writers also queue on an
flock'ed file beside the database: a waiter for SQLite's own lock polls with
sleeps of up to 100 ms, whereas a waiter for the flock is woken the moment
the holder commits. PostgreSQL: ordinary READ COMMITTED transactions; writers
serialise per user (and per group) with `SELECT ... FOR UPDATE`, always in
ascending id order so that two transactions never deadlock.

The hot paths (authentication, the quota report, the ledger's writes) do not
go through the ORM: their statements are built once with SQLAlchemy Core,
compiled here for both backends (`prepare`), and run on the pooled DBAPI
connection (`Raw`), with values converted to what each backend stores.
"""

import fcntl
import os
import threading
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import BindParameter, bindparam, event, false, literal_column, make_url, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import replacement_traverse

_IMMEDIATE = "chatquota_immediate"
_WRITER_LOCKS: "weakref.WeakKeyDictionary[Engine, str]" = weakref.WeakKeyDictionary()
# How SQLAlchemy's SQLite types store values: the ORM reads what `Raw` writes.
_SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"


def engine_options(url: str, config: dict) -> dict:
    """Return SQLAlchemy engine options suited to the database URL."""
    if url.startswith("sqlite"):
        options = {"connect_args": {"timeout": config["SQLITE_BUSY_TIMEOUT_MS"] / 1000,
                                    "check_same_thread": False}}
        if make_url(url).database not in (None, "", ":memory:"):
            # Connections to a file are cheap: one for each thread that may need
            # one, besides the one each thread keeps (see Raw).
            options.update(pool_size=config["THREADS"], max_overflow=2 * config["THREADS"])
        return options
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
    with writer_lock(session.get_bind()):
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


def writer_lock(engine: Engine):
    """Return a context that holds this database's writer lock, if it has one."""
    path = _WRITER_LOCKS.get(engine)
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
    stmt = insert(session.get_bind().dialect.name, model)
    stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt, rows)


def insert(dialect: str, model):
    """Return an INSERT for `model` that supports ON CONFLICT on this backend."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)


def adding_upsert(model, columns: tuple, keys: tuple, add: tuple, dialect: str = "sqlite",
                  rows=None):
    """Return an INSERT of `columns` that, where `keys` exist, adds the `add` columns instead.

    The values are binds named after the columns, or the rows of the SELECT
    `rows` (which has a WHERE: SQLite then cannot read its ON CONFLICT as a
    join's ON). The statement text is the same on both backends (`ON CONFLICT
    ... DO UPDATE`).
    """
    table = model.__table__
    stmt = insert(dialect, model)
    stmt = (stmt.values({col: bindparam(col) for col in columns}) if rows is None
            else stmt.from_select(list(columns), rows))
    return stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={col: table.c[col] + stmt.excluded[col] for col in add})


# Prepared statements for the hot paths ------------------------------------

@dataclass(frozen=True)
class Prepared:
    """A Core statement compiled once per backend; values are bound per call."""

    sqlite: str
    postgresql: str


def _inline(element):
    """Return a constant of the statement (e.g. a state name) as SQL text, else None.

    Constants are written into the statement, not bound: SQLite uses a
    partial index only for a literal it can see when it prepares the
    statement, and re-prepares a statement whose plan depends on a bound value.
    """
    if not isinstance(element, BindParameter) or element.value is None:
        return None
    value = element.value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"cannot inline the constant {value!r} of a prepared statement")
    return literal_column(str(value) if isinstance(value, int)
                          else "'" + value.replace("'", "''") + "'")


def prepare(statement, postgresql_statement=None) -> Prepared:
    """Compile `statement` for SQLite and PostgreSQL (or `postgresql_statement` there)."""
    pg = postgresql_statement if postgresql_statement is not None else statement
    return Prepared(
        str(replacement_traverse(statement, {}, _inline).compile(
            dialect=sqlite.dialect(paramstyle="named"))),
        str(replacement_traverse(pg, {}, _inline).compile(dialect=psycopg.dialect())),
    )


class _Kept:
    """A SQLite file connection one thread keeps checked out, and whether it is lent now."""

    __slots__ = ("pooled", "pid", "lent")

    def __init__(self, pooled, pid: int):
        self.pooled, self.pid, self.lent = pooled, pid, False


class _ThreadConnections(threading.local):
    """Per thread, the SQLite connection it keeps for each engine (weakly: engines come and go)."""

    def __init__(self):
        self.by_engine: "weakref.WeakKeyDictionary[Engine, _Kept]" = weakref.WeakKeyDictionary()


_THREAD_CONNECTIONS = _ThreadConnections()


def _keeps_connections(engine: Engine) -> bool:
    return engine in _WRITER_LOCKS  # a SQLite file (configure_engine)


class Raw:
    """A DBAPI connection from the engine's pool, on which prepared statements run.

    On a SQLite file, each thread keeps one connection checked out for good
    and lends it to one Raw at a time (a nested Raw of the same thread takes
    a pooled one): opening one is cheap, but the pool's checkout and return,
    with their locking, cost as much as the statements of a quota check.

    It is in autocommit mode (each statement is its own transaction) until
    `begin_write`; the write transaction ends with `commit` or, when the
    connection goes back, a rollback. On PostgreSQL that spares every read
    the ROLLBACK the pool would send when the connection goes back.
    """

    __slots__ = ("_pooled", "_kept", "dbapi", "is_postgresql", "_driver_error", "_on_commit")

    def __init__(self, engine: Engine):
        self._driver_error = engine.dialect.loaded_dbapi.Error
        self._on_commit = []
        self._kept = self._borrow(engine) if _keeps_connections(engine) else None
        self._pooled = self._kept.pooled if self._kept else self._check_out(engine)
        self.dbapi = self._pooled.driver_connection
        self.is_postgresql = engine.dialect.name == "postgresql"
        if self.is_postgresql:
            # Reads outside `begin_write` need no transaction (READ COMMITTED
            # gives every statement a fresh snapshot anyway): none to roll back.
            self.dbapi.autocommit = True

    def _check_out(self, engine: Engine):
        try:
            return engine.raw_connection()
        except self._driver_error as error:  # e.g. opening a read-only database
            raise DBAPIError.instance(None, None, error, self._driver_error) from error

    def _borrow(self, engine: Engine) -> "_Kept | None":
        """Lend this thread's kept connection (opened on first use); None if it is lent already."""
        kept = _THREAD_CONNECTIONS.by_engine.get(engine)
        if kept is None or kept.pid != os.getpid():  # none yet, or the parent's (forked)
            kept = _Kept(self._check_out(engine), os.getpid())
            _THREAD_CONNECTIONS.by_engine[engine] = kept
        if kept.lent:
            return None
        kept.lent = True
        return kept

    def execute(self, statement: Prepared, params: dict | None = None):
        """Run a prepared statement; return the DBAPI cursor."""
        sql = statement.postgresql if self.is_postgresql else statement.sqlite
        return self._run(sql, params or {})

    def _run(self, sql: str, params: dict = {}):  # noqa: B006 (never mutated)
        # Driver errors become SQLAlchemy's, as everywhere else in the app, so
        # one handler maps e.g. a full disk to its answer.
        try:
            return self.dbapi.execute(sql, params)
        except self._driver_error as error:
            raise DBAPIError.instance(sql, params, error, self._driver_error) from error

    def one(self, statement: Prepared, params: dict | None = None):
        """Return the first row of a prepared statement, or None."""
        return self.execute(statement, params).fetchone()

    def instant(self, value: datetime):
        """Return an aware instant as this backend's column stores it (naive UTC)."""
        naive = value.astimezone(UTC).replace(tzinfo=None)
        return naive if self.is_postgresql else naive.strftime(_SQLITE_INSTANT)

    def day(self, value: date):
        """Return a date as this backend's column stores it."""
        return value if self.is_postgresql else value.isoformat()

    @staticmethod
    def read_instant(value) -> datetime:
        """Return a stored instant (naive UTC, or SQLite's text) as an aware UTC datetime."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)

    def begin_write(self) -> None:
        """Start a write transaction (SQLite: take the database's write lock now)."""
        if self.is_postgresql:
            self.dbapi.autocommit = False  # the next statement begins it
        else:
            self._run("BEGIN IMMEDIATE")

    def on_commit(self, callback) -> None:
        """Call `callback()` after the current transaction commits (never if it rolls back)."""
        self._on_commit.append(callback)

    def commit(self) -> None:
        """Commit the transaction (raising SQLAlchemy's error if the driver refuses)."""
        if not self.is_postgresql:
            self._run("COMMIT")
        else:
            try:
                self.dbapi.commit()
            except self._driver_error as error:
                raise DBAPIError.instance("COMMIT", None, error, self._driver_error) from error
        callbacks, self._on_commit = self._on_commit, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self._on_commit = []
        if self.is_postgresql:
            self.dbapi.rollback()
        elif self.dbapi.in_transaction:
            self.dbapi.execute("ROLLBACK")

    def close(self) -> None:
        """Give the connection back to its thread or the pool, rolling back anything open."""
        if self._kept is None:
            if self.is_postgresql:
                try:
                    self.dbapi.rollback()
                    self.dbapi.autocommit = False  # as the ORM's sessions expect it
                except self._driver_error:
                    pass  # a broken connection: the pool's reset discards it
            self._pooled.close()
            return
        try:
            self.rollback()
        finally:
            self._kept.lent = False

    @classmethod
    @contextmanager
    def checkout(cls, engine: Engine):
        """Yield a Raw connection for the block, then give it back."""
        raw = cls(engine)
        try:
            yield raw
        finally:
            raw.close()


@contextmanager
def raw_write(engine: Engine):
    """Yield a Raw connection in a write transaction under the writer lock; commit after it."""
    with writer_lock(engine), Raw.checkout(engine) as raw:
        raw.begin_write()
        try:
            yield raw
            raw.commit()
        except BaseException:
            raw.rollback()
            raise


def lock_for_update(raw: Raw, statement: Prepared, ids: list[int]) -> None:
    """Lock the rows of `ids` (ascending) until commit; SQLite's write lock covers it."""
    if raw.is_postgresql and ids:
        raw.execute(statement, {"ids": sorted(ids)}).fetchall()


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
    with writer_lock(session.get_bind()):
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
