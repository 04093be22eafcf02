"""Shared fixtures: a fresh database per test, users with tokens, a movable clock.

The database is a new SQLite file per test, or, when CHATQUOTA_TEST_DATABASE_URL
is set, that PostgreSQL database emptied before each test (see databases.py).
"""

import os
import shutil
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine

from chatquota import clock, create_app
from chatquota.extensions import db
from chatquota.services import accounts, limits

from .databases import TEST_DATABASE_URL, prepare_postgresql, scratch_schema, truncate_all

# No webhook deliverer in the test process or in the servers tests start
# (they inherit it), unless a test turns it on: one would start with the first
# request to any app not in testing mode and keep polling databases the tests
# delete. The alert tests turn it on (tests/test_alerts_live.py).
os.environ["CHATQUOTA_WEBHOOK_DELIVERY"] = "off"


@pytest.fixture(scope="session")
def postgresql():
    """An engine on the PostgreSQL test database with the models' schema, or None."""
    if TEST_DATABASE_URL is None:
        yield None
        return
    engine = prepare_postgresql(TEST_DATABASE_URL)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory):
    """A SQLite file with the models' tables and no rows, made once per session."""
    path = tmp_path_factory.mktemp("schema") / "schema.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(postgresql, sqlite_schema, tmp_path):
    """The URL of this test's empty database, with the models' tables."""
    if postgresql is None:
        # A copy of the empty schema: the same as create_all, a fraction of the time.
        shutil.copyfile(sqlite_schema, tmp_path / "test.sqlite3")
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    truncate_all(postgresql)
    return TEST_DATABASE_URL


@pytest.fixture
def empty_database_url(postgresql, tmp_path):
    """The URL of a database with no tables at all (a scratch schema on PostgreSQL)."""
    if postgresql is None:
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    with scratch_schema(TEST_DATABASE_URL) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(postgresql, sqlite_schema, tmp_path_factory):
    """The URL of an empty database that one module's tests share (e.g. behind one live server)."""
    if postgresql is None:
        path = tmp_path_factory.mktemp("module") / "test.sqlite3"
        shutil.copyfile(sqlite_schema, path)
        return f"sqlite:///{path}"
    truncate_all(postgresql)
    return TEST_DATABASE_URL


@contextmanager
def app_on(database_url: str):
    """Yield a testing app on `database_url` (a database with the models' tables)."""
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test",
        "SQLALCHEMY_DATABASE_URI": database_url,
    })
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(database_url):
    """An app on this test's fresh database."""
    with app_on(database_url) as app:
        yield app


@pytest.fixture(scope="module")
def module_app(module_database_url):
    """An app on the database this module's tests share."""
    with app_on(module_database_url) as app:
        yield app


@pytest.fixture
def session(app):
    """The database session, inside an app context."""
    with app.app_context():
        yield db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Clock:
    """A clock tests set by hand: `clock.set(2026, 3, 1, 12)`."""

    def __init__(self):
        self.instant = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def set(self, *args, tzinfo=UTC):
        self.instant = datetime(*args, tzinfo=tzinfo)
        return self.instant

    def __call__(self):
        return self.instant


@pytest.fixture
def fixed_clock(monkeypatch):
    """Replace chatquota's clock; returns the Clock to move."""
    fake = Clock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


class Account:
    """A user and one of its API keys, with the header to send it."""

    def __init__(self, user, key):
        self.user, self.key, self.uuid = user, key, user.uuid
        self.headers = {"Authorization": f"Token {key}"}


@pytest.fixture
def make_account(app):
    """Create a user with a token: make_account("bob", is_staff=True)."""

    def make(username, **roles):
        with app.app_context():
            user = accounts.create_user(db.session, None, username, **roles)
            _token, key = accounts.issue_token(db.session, None, user)
            return Account(user, key)

    return make


@pytest.fixture
def staff(make_account):
    return make_account("staff", is_staff=True)


@pytest.fixture
def support(make_account):
    return make_account("support", is_support=True)


@pytest.fixture
def service(make_account):
    return make_account("service", is_service=True)


@pytest.fixture
def alice(make_account):
    return make_account("alice")


@pytest.fixture
def bob(make_account):
    return make_account("bob")


@pytest.fixture
def limited(app, alice):
    """alice with a daily limit of 100."""
    with app.app_context():
        limits.set_quota(db.session, None, alice.uuid, {"daily_limit": 100})
    return alice
