"""Health: whether the database answers and can take a write, cheaply enough to poll."""

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..dialect import probe_write
from ..models import Setting
from .errors import STORAGE_DETAILS, storage_failure

# SQLite's write-ahead log grows by up to 1000 pages (4 MiB) between
# checkpoints; with less free space than that a write may fail at any moment.
MIN_FREE_BYTES = 4 * 1024 * 1024
UNREACHABLE = "The database does not answer."


@dataclass(frozen=True)
class DatabaseHealth:
    """The database's state: "ok", "unreachable", "read-only" or "full"; if not ok, why."""

    state: str
    detail: str | None = None  # for the caller
    cause: str | None = None  # for the log: the error or the free space


def database_health(session: Session) -> DatabaseHealth:
    """Probe the database with a write that changes nothing, and the space beside a SQLite file."""
    try:
        probe_write(session, Setting.__table__)
    except (SQLAlchemyError, OSError) as error:  # OSError: the SQLite writer-lock file
        session.rollback()
        state = storage_failure(error)
        return DatabaseHealth(state or "unreachable", STORAGE_DETAILS.get(state, UNREACHABLE),
                              str(error))
    free = _free_bytes(session)
    if free is not None and free < MIN_FREE_BYTES:
        return DatabaseHealth("full", STORAGE_DETAILS["full"],
                              f"{free} bytes free beside the database file")
    return DatabaseHealth("ok")


def _free_bytes(session: Session) -> int | None:
    """Return the space left beside the SQLite file, else None.

    The write probe is rolled back before anything reaches the disk, so the
    free space is what tells a full disk. A PostgreSQL server's disk is not
    visible from here; a full one fails writes with DiskFull (a 503 too).
    """
    url = session.get_bind().url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return shutil.disk_usage(Path(url.database).resolve().parent).free
