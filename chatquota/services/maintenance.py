"""Operator chores: pruning old raw events, and backing up a live SQLite database.

Pruning only touches `usage_events`: current usage, history (`usage_days`)
and the audit log are kept elsewhere and stay exactly as they were.
"""

import os
import sqlite3
import tempfile
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..dialect import write_transaction
from ..models import UsageEvent
from ..periods import day_start
from .errors import InvalidValue

PRUNE_BATCH = 5000


def prune_events(session: Session, before: date, tz: ZoneInfo) -> int:
    """Delete usage events recorded before local midnight starting `before`; return how many.

    Deletes in batches, each its own short write transaction, so that
    metering is never blocked for long on a large table.
    """
    cutoff = day_start(before, tz)
    deleted = 0
    while True:
        with write_transaction(session):
            batch = (select(UsageEvent.id).where(UsageEvent.created_at < cutoff)
                     .limit(PRUNE_BATCH).scalar_subquery())
            count = session.execute(delete(UsageEvent).where(UsageEvent.id.in_(batch))).rowcount
        deleted += count
        if count < PRUNE_BATCH:
            return deleted


def backup_sqlite(session: Session, path: str) -> Path:
    """Write a consistent copy of the live SQLite database to `path`; return it.

    Uses SQLite's online backup in a single step, which copies one snapshot
    while other connections keep writing. The copy appears at `path` only
    when complete (written beside it, then renamed).
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
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        _copy(engine, partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _copy(engine, destination: str) -> None:
    raw = engine.raw_connection()
    try:
        copy = sqlite3.connect(destination)
        try:
            raw.driver_connection.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            copy.close()
    finally:
        raw.close()
