"""Operator chores: pruning old raw events, and backing up a live SQLite database.

Pruning only touches `usage_events`: current usage, history (`usage_days`)
and the audit log are kept elsewhere and stay exactly as they were.

Both run beside a serving deployment and must never hold metering up:

- Pruning deletes the oldest events a hundred at a time, each batch its
  own write transaction taken the way metering takes it (the writer flock,
  then `BEGIN IMMEDIATE`), and then rests for a few times as long as the
  batch held the lock, so metering has the lock almost all the time and a
  consume call waits for at most one short batch. On SQLite it also
  checkpoints the WAL (PASSIVE: it waits for nobody) between batches, so
  the WAL stays small and no consume call pays for a large checkpoint.
- Backup takes no write lock at all. It copies one pinned read snapshot with
  SQLite's online backup API, a few hundred pages per step, paced (about
  64 MiB/s) and flushed to disk as it goes, so neither the copy nor its
  writeback crowds out the fsyncs of metering's commits.
"""

import os
import sqlite3
import tempfile
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..dialect import write_transaction
from ..models import UsageEvent
from ..periods import day_start
from .errors import InvalidValue

# Events deleted per write transaction: a few milliseconds of the writer lock.
PRUNE_BATCH = 100
# After a batch, rest this many times as long as the batch held the lock
# (and at least PRUNE_MIN_PAUSE seconds): the lock is free >= 80% of the time.
PRUNE_REST_FACTOR = 4
PRUNE_MIN_PAUSE = 0.01
# Checkpoint the WAL (PASSIVE) after this many batches (SQLite only).
PRUNE_CHECKPOINT_EVERY = 4

# Backup: pages copied per step and the pace of the copy (bytes per second).
BACKUP_STEP_PAGES = 256
BACKUP_RATE = 64 * 1024 * 1024
# Flush the partial copy to disk after about this many bytes: a metering commit's
# fsync that comes meanwhile waits for at most this much writeback.
BACKUP_SYNC_BYTES = 2 * 1024 * 1024


def prune_events(session: Session, before: date, tz: ZoneInfo) -> int:
    """Delete usage events recorded before local midnight starting `before`; return how many.

    Oldest first, PRUNE_BATCH at a time through the `created_at` index, each
    batch its own short write transaction followed by a rest, so that
    metering is never blocked for long on a large table.
    """
    cutoff = day_start(before, tz)
    engine = session.get_bind()
    sqlite = engine.dialect.name == "sqlite"
    oldest = (select(UsageEvent.id).where(UsageEvent.created_at < cutoff)
              .order_by(UsageEvent.created_at))
    deleted = batches = 0
    while True:
        started = time.monotonic()
        with write_transaction(session):
            ids = session.scalars(oldest.limit(PRUNE_BATCH)).all()
            if ids:
                session.execute(delete(UsageEvent).where(UsageEvent.id.in_(ids)),
                                execution_options={"synchronize_session": False})
        held = time.monotonic() - started
        deleted += len(ids)
        batches += 1
        if len(ids) < PRUNE_BATCH:
            if sqlite and batches > 1:
                _checkpoint(engine)
            return deleted
        if sqlite and batches % PRUNE_CHECKPOINT_EVERY == 0:
            started = time.monotonic()
            _checkpoint(engine)
            held += time.monotonic() - started  # its I/O competes with metering's fsyncs
        time.sleep(max(PRUNE_MIN_PAUSE, PRUNE_REST_FACTOR * held))


def _checkpoint(engine) -> None:
    """Copy what the WAL holds into the database file, waiting for no reader or writer."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        raw.close()


def backup_sqlite(session: Session, path: str) -> Path:
    """Write a consistent copy of the live SQLite database to `path`; return it.

    Uses SQLite's online backup API from a connection that holds one read
    snapshot for the whole copy, so the copy is that instant's database even
    while other connections keep writing, and never restarts. It copies
    BACKUP_STEP_PAGES pages per step at about BACKUP_RATE bytes per second,
    flushing as it goes. The copy appears at `path` only when complete and
    on disk (written beside it, fsynced, then renamed).
    """
    engine = session.get_bind()
    if engine.dialect.name != "sqlite":
        raise InvalidValue("database", "backup works on SQLite only; "
                                       "use pg_dump to back up PostgreSQL.")
    target = Path(path).resolve()
    if engine.url.database and target == Path(engine.url.database).resolve():
        raise InvalidValue("path", "PATH is the live database itself.")
    if not target.parent.is_dir():
        raise InvalidValue("path", f"No such directory: {target.parent}.")
    session.commit()  # no SQL unless a transaction is open
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        _copy(engine, partial)
        os.replace(partial, target)
        _fsync_directory(target.parent)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _copy(engine, destination: str) -> None:
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        # Pin one snapshot: backup steps then read it and never see (nor
        # restart for) what other connections commit meanwhile.
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM sqlite_master").fetchall()
        try:
            copy = sqlite3.connect(destination, isolation_level=None)
            try:
                copy.execute("PRAGMA synchronous=OFF")  # flushed below, then once at the end
                with _Pacer(destination, source) as pacer:
                    source.backup(copy, pages=BACKUP_STEP_PAGES, progress=pacer.step)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                copy.close()
        finally:
            source.execute("ROLLBACK")
    finally:
        raw.close()
    fd = os.open(destination, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Pacer:
    """The backup's progress callback: keeps the copy near BACKUP_RATE and flushes it."""

    def __init__(self, destination: str, source: sqlite3.Connection):
        self.page_size = source.execute("PRAGMA page_size").fetchone()[0]
        self.destination = destination
        self.started = time.monotonic()
        self.copied = 0
        self.unsynced = 0
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.destination, os.O_RDONLY)
        return self

    def __exit__(self, *_exc):
        os.close(self.fd)

    def step(self, _status, remaining: int, total: int) -> None:
        done = (total - remaining) * self.page_size
        self.unsynced += done - self.copied
        self.copied = done
        if self.unsynced >= BACKUP_SYNC_BYTES:
            os.fsync(self.fd)  # a little at a time, not gigabytes of writeback at the end
            self.unsynced = 0
        ahead = self.copied / BACKUP_RATE - (time.monotonic() - self.started)
        if ahead > 0 and remaining:
            time.sleep(ahead)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
