"""Alembic environment: runs chatquota's migrations on the app's database.

Used by `flask --app chatquota db ...` and by `init-db`. Besides the stock
Flask-Migrate setup it (1) renders the UTCDateTime column type as a plain
`sa.DateTime()`, so migrations never import application code; (2) on SQLite
turns foreign keys off while a migration runs, because batch mode recreates
tables and a DROP TABLE with foreign keys on would cascade-delete child rows;
(3) on PostgreSQL takes a transaction-level advisory lock, so hosts that run
`db upgrade` at the same moment apply each migration once.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from chatquota.models import UTCDateTime

config = context.config
# Configure logging only on the command line: under a test runner or inside
# an app that already logs, leave the existing handlers alone.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

MIGRATION_LOCK_ID = 0x63686174  # "chat": any constant shared by every host

db = current_app.extensions["migrate"].db
config.set_main_option(
    "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def render_item(type_, obj, autogen_context):
    """Render application column types as the plain SQLAlchemy type they store."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def skip_empty_revision(context_, revision, directives):
    """Write no file when autogenerate finds nothing to change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def configure_args() -> dict:
    """Return the arguments for `context.configure`, Flask-Migrate's first."""
    args = dict(current_app.extensions["migrate"].configure_args)
    args.setdefault("process_revision_directives", skip_empty_revision)
    args.setdefault("render_item", render_item)
    args.setdefault("compare_type", True)
    return args


def run_migrations_offline():
    """Print the SQL of the migrations instead of running it."""
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=db.metadata, literal_binds=True, **configure_args())
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection, on: bool):
    # A PRAGMA outside any transaction: straight to the driver connection.
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def run_migrations_online():
    """Run the migrations on the app's engine, in one transaction where the backend allows."""
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, False)
        try:
            context.configure(connection=connection, target_metadata=db.metadata,
                              **configure_args())
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
                context.run_migrations()
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("migration left rows that violate a foreign key")
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, True)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
