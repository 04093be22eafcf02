"""`GET /health/`, the probe behind it, and which database errors mean "cannot write".

Read-only and full SQLite files are in test_unwritable_database.py.
"""

import errno
import sqlite3

import psycopg
import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.orm import Session

from chatquota import create_app
from chatquota.extensions import db
from chatquota.services.errors import storage_failure
from chatquota.services.health import database_health

from .databases import TEST_DATABASE_URL


def test_a_writable_database_is_healthy(client, session):
    assert database_health(session).state == "ok"
    response = client.get("/health/")
    assert (response.status_code, response.json) == (200, {"status": "ok", "database": "ok"})


def test_the_probe_changes_nothing(session):
    before = session.execute(db.text("SELECT count(*) FROM settings")).scalar()
    database_health(session)
    assert session.execute(db.text("SELECT count(*) FROM settings")).scalar() == before


def test_unreachable_database(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/no-such-folder/db.sqlite3")
    with Session(engine) as session:
        assert database_health(session).state == "unreachable"
    engine.dispose()


def test_health_answers_503_when_the_database_is_unreachable(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/no-such-folder/db.sqlite3"})
    response = app.test_client().get("/health/")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable",
                             "detail": "The database does not answer."}
    with app.app_context():
        db.engine.dispose()


@pytest.mark.skipif(TEST_DATABASE_URL is None, reason="needs the PostgreSQL test database")
def test_a_read_only_postgresql_is_503_for_health_and_writes(app, service, alice):
    url = make_url(TEST_DATABASE_URL).update_query_dict(
        {"options": "-c default_transaction_read_only=on"})
    read_only = create_app({"SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False)})
    client = read_only.test_client()
    detail = "The database cannot be written: it is read-only."
    response = client.get("/health/")
    assert (response.status_code, response.json["database"]) == (503, "read-only")
    response = client.post("/api/chat-quota/consume/", headers=service.headers,
                           json={"user_uuid": alice.uuid, "tokens": 1})
    assert (response.status_code, response.json) == (503, {"detail": detail})
    with read_only.app_context():
        db.engine.dispose()


def _sqlite_error(code: int, message: str) -> OperationalError:
    """Return SQLAlchemy's wrapping of a sqlite3 error with this (extended) result code."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return OperationalError("INSERT ...", {}, error)


@pytest.mark.parametrize("error, state", [
    (_sqlite_error(8, "attempt to write a readonly database"), "read-only"),
    (_sqlite_error(1544, "attempt to write a readonly database"), "read-only"),  # _DIRECTORY
    (_sqlite_error(13, "database or disk is full"), "full"),
    (_sqlite_error(14, "unable to open database file"), "unreachable"),
    (_sqlite_error(5, "database is locked"), None),
    (OperationalError("INSERT ...", {}, psycopg.errors.DiskFull()), "full"),
    (InternalError("INSERT ...", {}, psycopg.errors.ReadOnlySqlTransaction()), "read-only"),
    (OperationalError("INSERT ...", {}, psycopg.errors.DeadlockDetected()), None),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/instance/db.sqlite3-lock"),
     "read-only"),
    (OSError(errno.ENOSPC, "No space left on device", "/srv/instance/db.sqlite3-lock"), "full"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/templates/page.html"), None),
])
def test_which_errors_mean_the_database_cannot_be_written(error, state):
    assert storage_failure(error) == state
