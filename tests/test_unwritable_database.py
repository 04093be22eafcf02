"""A SQLite database that cannot be written: /health/ and every write answer 503 saying why.

Read-only is made with real permission bits. Root ignores them, so a run as
root drops its effective uid to `nobody` while the app touches the files;
the database therefore lives in a directory of its own under /tmp, which
`nobody` can reach (pytest's tmp_path is private to root). A full disk is
SQLite's own SQLITE_FULL, raised by `PRAGMA max_page_count`, the same error
a full file system gives.
"""

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from chatquota.extensions import db
from chatquota.models import UsageDay, UsageEvent, User
from chatquota.services import health

from .dashboard_helpers import session_csrf, sign_in
from .databases import sqlite_only

pytestmark = sqlite_only

NOBODY = 65534
CONSUME = "/api/chat-quota/consume/"
READ_ONLY = "The database cannot be written: it is read-only."
FULL = "The database cannot be written: disk full."


@pytest.fixture
def folder():
    """A directory for the database that an unprivileged user can reach."""
    path = Path(tempfile.mkdtemp(prefix="chatquota-test-"))
    path.chmod(0o777)
    yield path
    path.chmod(0o700)
    shutil.rmtree(path)


@pytest.fixture
def database_url(folder, sqlite_schema):
    """Overrides conftest's: the test database (a copy of the empty schema) lives in `folder`."""
    shutil.copyfile(sqlite_schema, folder / "test.sqlite3")
    return f"sqlite:///{folder / 'test.sqlite3'}"


@contextmanager
def unprivileged(app):
    """Run the block as a user the permission bits apply to; connections are opened anew."""
    with app.app_context():
        db.engine.dispose()  # connections opened as root could still write
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        with app.app_context():
            db.engine.dispose()


def read_only_file(folder: Path):
    """Make the database file read-only; its directory stays writable."""
    (folder / "test.sqlite3").chmod(0o444)


def read_only_folder(folder: Path):
    """Make the directory read-only: no -wal, -shm or lock file can appear; the file is writable."""
    for path in folder.iterdir():
        path.chmod(0o666)
    folder.chmod(0o555)


def stored(app) -> tuple[int, int, int]:
    """Return how many users and events are stored, and the tokens of the day totals."""
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(User)),
                db.session.scalar(select(func.count()).select_from(UsageEvent)),
                db.session.scalar(select(func.coalesce(func.sum(UsageDay.tokens), 0))))


@pytest.mark.parametrize("make_read_only", [read_only_file, read_only_folder])
def test_health_is_503_read_only(app, client, folder, make_read_only, caplog):
    assert client.get("/health/").status_code == 200
    make_read_only(folder)
    with unprivileged(app), caplog.at_level(logging.WARNING):
        response = client.get("/health/")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "read-only", "detail": READ_ONLY}
    assert "Health check failed" in caplog.text and "readonly" in caplog.text.replace("-", "")


@pytest.mark.parametrize("make_read_only", [read_only_file, read_only_folder])
def test_writes_to_a_read_only_database_are_503_and_logged_once(
        app, client, service, alice, folder, make_read_only, caplog):
    before = stored(app)
    make_read_only(folder)
    with unprivileged(app):
        with caplog.at_level(logging.ERROR):
            response = client.post(CONSUME, json={"user_uuid": alice.uuid, "tokens": 5},
                                   headers=service.headers)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        reading = client.get("/api/chat-quota/usage/", headers=service.headers)
    assert (response.status_code, response.json) == (503, {"detail": READ_ONLY})
    assert len(errors) == 1 and errors[0].getMessage() == READ_ONLY and errors[0].exc_info
    # A read-only file can still be read; in a read-only directory SQLite
    # cannot even create the write-ahead log it reads through.
    assert reading.status_code == (200 if make_read_only is read_only_file else 503)
    assert stored(app) == before


def test_a_dashboard_write_to_a_read_only_database_is_a_503_page(app, client, staff, alice, folder):
    sign_in(client, staff)
    csrf = session_csrf(client)
    read_only_file(folder)
    with unprivileged(app):
        response = client.post(f"/admin/users/{alice.uuid}/", data={
            "csrf_token": csrf, "daily_mode": "unlimited", "weekly_mode": "unlimited",
            "monthly_mode": "unlimited"})
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert READ_ONLY in response.get_data(as_text=True)


@pytest.fixture
def full_disk(app):
    """Make SQLite refuse to grow the file by one more page: SQLITE_FULL, as on a full disk."""
    with app.app_context():
        pages = db.session.execute(db.text("PRAGMA page_count")).scalar()
        db.engine.dispose()

        @event.listens_for(db.engine, "connect")
        def _cap(dbapi_connection, _record):
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    yield
    with app.app_context():
        event.remove(db.engine, "connect", _cap)
        db.engine.dispose()


def test_writes_on_a_full_disk_are_503_and_write_nothing(app, client, service, alice, full_disk,
                                                         caplog):
    # Long keys and model names fill the pages in a few calls; the first call
    # that needs a new page fails as a whole.
    statuses = []
    with caplog.at_level(logging.ERROR):
        for i in range(200):
            response = client.post(CONSUME, headers=service.headers, json={
                "user_uuid": alice.uuid, "tokens": 1, "model": "m" * 200,
                "idempotency_key": f"{i:04d}" + "k" * 196})
            statuses.append(response.status_code)
            if response.status_code != 201:
                break
    assert statuses[-1] == 503 and set(statuses[:-1]) == {201}, statuses
    assert response.json == {"detail": FULL}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [FULL]
    accepted = len(statuses) - 1
    assert stored(app)[1:] == (accepted, accepted)


def test_health_is_503_full_when_the_disk_has_no_room(client, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(health.shutil, "disk_usage",
                        lambda path: real(path)._replace(free=health.MIN_FREE_BYTES - 1))
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "full", "detail": FULL}
