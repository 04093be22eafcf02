"""Test databases: a SQLite file per test, or one shared PostgreSQL database.

With CHATQUOTA_TEST_DATABASE_URL set (e.g. postgresql+psycopg://postgres@127.0.0.1/chatquota_test)
the suite runs on that PostgreSQL database: created if missing, its schema rebuilt
from the models once per session, every table truncated before each test. Tests that
need a database of their own (migrations, copying) get a scratch schema in it.
"""

import os
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import MetaData, create_engine, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

from chatquota.extensions import db

TEST_DATABASE_URL = os.environ.get("CHATQUOTA_TEST_DATABASE_URL") or None
# For the few tests of SQLite-only features (e.g. `backup`, which copies the file).
sqlite_only = pytest.mark.skipif(TEST_DATABASE_URL is not None,
                                 reason="tests a SQLite-only feature; this run is on PostgreSQL")
# A test that leaves a transaction open must fail, not hang the truncation.
LOCK_TIMEOUT = "10s"


def _create_database_if_missing(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), poolclass=NullPool,
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": target.database}
            ).first()
            if not exists:
                try:
                    conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
                except ProgrammingError:  # created by a concurrent run meanwhile
                    pass
    finally:
        admin.dispose()


def prepare_postgresql(url: str) -> Engine:
    """Return an engine on `url` whose schema is exactly the models', with no rows."""
    _create_database_if_missing(url)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        found = MetaData()
        found.reflect(conn)
        found.drop_all(conn)
        db.metadata.create_all(conn)
    return engine


def truncate_all(engine: Engine) -> None:
    """Empty every table of the models and restart their id sequences."""
    names = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


def with_search_path(url: str, schema: str) -> str:
    """Return `url` with connections confined to `schema` (psycopg's `options`)."""
    confined = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return confined.render_as_string(hide_password=False)


@contextmanager
def scratch_schema(url: str):
    """Yield a URL on a new, empty schema of the PostgreSQL database; drop it afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield with_search_path(url, name)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        engine.dispose()
