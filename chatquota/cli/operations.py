"""The database itself: its schema, copies, retention and the OpenAPI document."""

from datetime import timedelta

import click
from flask import current_app

from .common import call, command, fail


BASELINE_REVISION = "0001"


@command("init-db")
def init_db():
    """Create the database schema, or upgrade it to the latest migration."""
    import flask_migrate
    from sqlalchemy import inspect

    from ..extensions import db

    tables = set(inspect(db.engine).get_table_names())
    if "users" in tables and "alembic_version" not in tables:
        # Made by the pre-migration init-db (create_all), which made the first
        # migration's schema, or the second's once the dashboard had sessions.
        made = "0002" if "web_sessions" in tables else BASELINE_REVISION
        flask_migrate.stamp(revision=made)
    flask_migrate.upgrade()
    click.echo("Database ready.", err=True)


@command("purge-reservations")
@click.option("--older-than-hours", type=click.IntRange(min=0), default=24, show_default=True,
              help="Keep holds that ended or expired more recently (late commits still work).")
def purge_reservations(older_than_hours):
    """Delete reservations that ended or expired long ago."""
    from ..extensions import db
    from ..services import reservations

    count = reservations.purge(db.session, timedelta(hours=older_than_hours))
    click.echo(f"Deleted {count} reservations.", err=True)


@command("prune-events")
@click.option("--before", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Delete events recorded before this local date (YYYY-MM-DD).")
def prune_events(before):
    """Delete raw usage events older than a date; usage totals and audit log stay."""
    from .. import clock
    from ..extensions import db
    from ..services import maintenance

    day = before.date()
    if day > clock.now().astimezone(current_app.config["TZ"]).date():
        fail("--before must not be after today.")
    deleted = maintenance.prune_events(db.session, day, current_app.config["TZ"])
    click.echo(f"Deleted {deleted} usage events recorded before {day}.", err=True)


@command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
def backup(path):
    """Write a consistent copy of the live SQLite database to PATH."""
    from ..extensions import db
    from ..services import maintenance

    target = call(maintenance.backup_sqlite, db.session, path)
    click.echo(f"Backup written to {target}.", err=True)


@command("openapi")
@click.option("--format", "fmt", type=click.Choice(("json", "yaml")), default="json",
              show_default=True)
def openapi(fmt):
    """Print the OpenAPI document (the one served at /api/schema/)."""
    from ..docs import render
    from ..openapi import document

    click.echo(render(document(current_app), fmt))


@command("copy-data")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="An empty database migrated to the same revision, e.g. postgresql+psycopg://...")
def copy_data(target_url):
    """Copy every table of this database into the empty database at URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from .. import copydata
    from ..extensions import db

    try:
        target = create_engine(target_url, poolclass=NullPool)
    except (ArgumentError, ImportError) as err:
        fail(f"--to: not a usable database URL ({err}).")
    try:
        counts = copydata.copy_database(db.engine, target, db.metadata)
    except copydata.CopyError as err:
        fail(str(err))
    except SQLAlchemyError as err:
        fail(f"Copy failed, nothing written: {str(getattr(err, 'orig', err)).splitlines()[0]}")
    finally:
        target.dispose()
    for name, count in counts.items():
        click.echo(f"{name}: {count} rows", err=True)
    click.echo(f"Copied {sum(counts.values())} rows.", err=True)
