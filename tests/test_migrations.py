"""Alembic migrations: upgrading an empty database yields exactly the models' schema.

If this fails after a change to chatquota/models.py, the change needs a migration:
    flask --app chatquota db migrate -m "what changed"   (then review the new file)
"""

from pprint import pformat

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from chatquota import MIGRATIONS, create_app
from chatquota.extensions import db
from chatquota.services import accounts

MODEL_TABLES = {table.name for table in db.metadata.sorted_tables}


@pytest.fixture
def empty_app(empty_database_url):
    """An app on a database without any table."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test",
                      "SQLALCHEMY_DATABASE_URI": empty_database_url})
    yield app
    with app.app_context():
        db.engine.dispose()


def schema_diff(app) -> list:
    """Return what autogenerate would change to make the database match the models."""
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def tables(app) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


def scripts() -> ScriptDirectory:
    config = flask_migrate.Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_migrations_have_a_single_head():
    heads = scripts().get_heads()
    assert len(heads) == 1, f"several migration heads {heads}: run `flask db merge heads`"


def test_upgrade_from_empty_yields_exactly_the_models_schema(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
    diff = schema_diff(empty_app)
    assert diff == [], (
        "models.py and migrations/ disagree; create a migration with "
        "`flask --app chatquota db migrate -m '...'` and review it. Differences:\n" + pformat(diff)
    )
    assert tables(empty_app) == MODEL_TABLES | {"alembic_version"}


def test_downgrade_to_base_removes_every_table(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
    assert tables(empty_app) <= {"alembic_version"}


def test_init_db_migrates_to_head_and_can_run_again(empty_app):
    runner = empty_app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
    assert schema_diff(empty_app) == []
    with empty_app.app_context():
        revision = db.session.execute(db.text("SELECT version_num FROM alembic_version")).scalar()
        assert revision == scripts().get_current_head()
        accounts.create_user(db.session, None, "works")


def created_without_migrations(app, generation: str) -> None:
    """Give the empty database the schema the pre-migration init-db made (create_all).

    Those databases exist in two generations: the first migration's tables,
    and those plus the dashboard's web_sessions (the second migration's).
    """
    with app.app_context():
        flask_migrate.upgrade(revision=generation)
        db.session.execute(db.text("DROP TABLE alembic_version"))
        db.session.commit()
        db.session.execute(db.text(
            "INSERT INTO users (uuid, username, is_active, is_staff, is_support, is_service, "
            "created_at) VALUES ('" + "a" * 32 + "', 'kept', true, false, false, false, "
            "'2026-11-30 12:00:00')"))
        db.session.execute(db.text(
            "INSERT INTO quotas (user_id) SELECT id FROM users WHERE username = 'kept'"))
        db.session.commit()


def test_init_db_adopts_a_database_created_without_migrations(empty_app):
    created_without_migrations(empty_app, "0002")
    result = empty_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "alembic_version" in tables(empty_app)
    assert schema_diff(empty_app) == []
    with empty_app.app_context():
        assert accounts.get_user_by_name(db.session, "kept").username == "kept"


def test_init_db_upgrades_a_database_created_before_later_tables(empty_app):
    created_without_migrations(empty_app, "0001")
    result = empty_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert schema_diff(empty_app) == []
    with empty_app.app_context():
        assert accounts.get_user_by_name(db.session, "kept").username == "kept"


def test_upgrade_charges_existing_events_what_they_used(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade(revision="0003")
        db.session.execute(db.text(
            "INSERT INTO users (uuid, username, is_active, is_staff, is_support, is_service, "
            "created_at) VALUES ('" + "a" * 32 + "', 'ann', true, false, false, false, "
            "'2026-11-30 12:00:00')"))
        db.session.execute(db.text(
            "INSERT INTO usage_events (uuid, user_id, tokens, enforced, created_at) "
            "SELECT '" + "b" * 32 + "', id, 42, true, '2026-11-30 12:00:00' FROM users"))
        db.session.commit()
        flask_migrate.upgrade()
        charged = db.session.execute(db.text("SELECT tokens, charged_tokens FROM usage_events"))
        assert charged.all() == [(42, 42)]
    assert schema_diff(empty_app) == []
