"""Command line: `flask --app chatquota <command>`. Thin wrappers over services.

Scriptable: `create-user` prints only the uuid and `create-token` only the key
on stdout; messages go to stderr; errors exit non-zero with one line.
"""

import json
import os
from datetime import timedelta

import click
import flask_migrate
from flask import current_app
from flask.cli import with_appcontext
from marshmallow import ValidationError
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from . import clock, copydata
from .dialect import Raw
from .docs import FORMATS, render
from .extensions import db
from .openapi import document
from .periods import PERIODS
from .schemas.administration import UserCreateSchema
from .schemas.quota import SetTokenQuotaRequestSchema
from .services import accounts, limits, maintenance, reservations
from .services.errors import DomainError
from .services.usage import quota_report


def _fail(message: str):
    raise click.ClickException(message)


def _first_error(err: ValidationError) -> str:
    field, messages = next(iter(err.normalized_messages().items()))
    return f"{field}: {messages[0] if isinstance(messages, list) else messages}"


def _limit(value: str, field: str) -> int | None:
    """Parse a CLI limit: an integer, -1 (unlimited) or `default`/`null`."""
    if value.lower() in ("default", "null", "none"):
        return None
    try:
        return SetTokenQuotaRequestSchema().load({"user_uuid": "0" * 32, field: value})[field]
    except ValidationError as err:
        _fail(_first_error(err))


def _run(fn, *args, **kwargs):
    """Call a service, turning its domain errors into a one-line CLI error."""
    try:
        return fn(*args, **kwargs)
    except DomainError as err:
        _fail(err.message)


BASELINE_REVISION = "0001"


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the database schema, or upgrade it to the latest migration."""
    tables = set(inspect(db.engine).get_table_names())
    if "users" in tables and "alembic_version" not in tables:
        # Made by the pre-migration init-db (create_all), which made the first
        # migration's schema, or the second's once the dashboard had sessions.
        made = "0002" if "web_sessions" in tables else BASELINE_REVISION
        flask_migrate.stamp(revision=made)
    flask_migrate.upgrade()
    click.echo("Database ready.", err=True)


@click.command("create-user")
@with_appcontext
@click.argument("name")
@click.option("--uuid", "user_uuid", help="Use this uuid instead of a random one.")
@click.option("--staff", is_flag=True, help="Staff: everything, including defaults and users.")
@click.option("--support", is_flag=True, help="Support: read anyone's usage, set quotas.")
@click.option("--service", is_flag=True, help="Service account: metering for a chat backend.")
def create_user(name, user_uuid, staff, support, service):
    """Create a user and print its uuid."""
    given = {"username": name, "is_staff": staff, "is_support": support, "is_service": service}
    try:  # the same rules as POST /api/users/
        fields = UserCreateSchema().load(given | ({"uuid": user_uuid} if user_uuid else {}))
    except ValidationError as err:
        _fail(_first_error(err))
    user = _run(accounts.create_user, db.session, None, fields.pop("username"),
                fields.pop("uuid", None), **fields)
    click.echo(user.uuid)


@click.command("create-token")
@with_appcontext
@click.argument("name")
@click.option("--label", default="", help="A note to tell tokens apart.")
def create_token(name, label):
    """Issue an API token for user NAME and print its key (shown only once)."""
    user = _run(accounts.get_user_by_name, db.session, name)
    _token, key = _run(accounts.issue_token, db.session, None, user, label)
    click.echo(key)


@click.command("set-default")
@with_appcontext
@click.argument("period", type=click.Choice(PERIODS))
@click.argument("limit")
def set_default(period, limit):
    """Set the system default LIMIT (-1 = unlimited) of PERIOD."""
    value = _limit(limit, f"{period}_limit")
    if value is None:
        _fail("LIMIT must be an integer >= -1.")
    limits.set_defaults(db.session, None, {period: value})
    click.echo(f"{period} default set to {value}.", err=True)


@click.command("set-quota")
@with_appcontext
@click.argument("name")
@click.option("--daily", help="Limit, -1 for unlimited, or 'default'.")
@click.option("--weekly", help="Limit, -1 for unlimited, or 'default'.")
@click.option("--monthly", help="Limit, -1 for unlimited, or 'default'.")
def set_quota(name, daily, weekly, monthly):
    """Set user NAME's limits; periods not given keep their value."""
    given = {"daily": daily, "weekly": weekly, "monthly": monthly}
    changes = {f"{p}_limit": _limit(v, f"{p}_limit") for p, v in given.items() if v is not None}
    if not changes:
        _fail("Give at least one of --daily, --weekly, --monthly.")
    user = _run(accounts.get_user_by_name, db.session, name)
    _run(limits.set_quota, db.session, None, user.uuid, changes)
    click.echo(f"Quota of {name} updated.", err=True)


@click.command("usage")
@with_appcontext
@click.argument("name")
def usage(name):
    """Print user NAME's quota and usage as JSON."""
    user = _run(accounts.get_user_by_name, db.session, name)
    with Raw.checkout(db.engine) as raw:
        report = quota_report(raw, user, current_app.config["TZ"])
    click.echo(json.dumps(report.fields(), indent=2))


@click.command("ensure-admin")
@with_appcontext
@click.option("--username", default="admin", show_default=True)
def ensure_admin(username):
    """Create the first staff account if there is none; print its token once.

    Uses CHATQUOTA_ADMIN_TOKEN as the key when set. Does nothing when a staff
    user already exists, so it is safe on every start.
    """
    if accounts.any_staff(db.session):
        click.echo("A staff account exists; nothing to do.", err=True)
        return
    key = os.environ.get("CHATQUOTA_ADMIN_TOKEN") or accounts.new_key()
    _run(accounts.check_key, key)  # before creating anything: no staff user without a key
    user = _run(accounts.create_user, db.session, None, username, is_staff=True)
    _run(accounts.issue_token, db.session, None, user, "first admin", key=key)
    click.echo(f"Created staff user {username!r}. Its API token (shown once):", err=True)
    click.echo(key)


@click.command("purge-reservations")
@with_appcontext
@click.option("--older-than-hours", type=click.IntRange(min=0), default=24, show_default=True,
              help="Keep holds that ended or expired more recently (late commits still work).")
def purge_reservations(older_than_hours):
    """Delete reservations that ended or expired long ago."""
    count = reservations.purge(db.session, timedelta(hours=older_than_hours))
    click.echo(f"Deleted {count} reservations.", err=True)


@click.command("prune-events")
@with_appcontext
@click.option("--before", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Delete events recorded before this local date (YYYY-MM-DD).")
def prune_events(before):
    """Delete raw usage events older than a date; usage totals and audit log stay."""
    day = before.date()
    if day > clock.now().astimezone(current_app.config["TZ"]).date():
        _fail("--before must not be after today.")
    deleted = maintenance.prune_events(db.session, day, current_app.config["TZ"])
    click.echo(f"Deleted {deleted} usage events recorded before {day}.", err=True)


@click.command("backup")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False))
def backup(path):
    """Write a consistent copy of the live SQLite database to PATH."""
    target = _run(maintenance.backup_sqlite, db.session, path)
    click.echo(f"Backup written to {target}.", err=True)


@click.command("openapi")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="json", show_default=True)
@with_appcontext
def openapi(fmt):
    """Print the OpenAPI document (the one served at /api/schema/)."""
    click.echo(render(document(current_app), fmt))


@click.command("copy-data")
@with_appcontext
@click.option("--to", "target_url", required=True, metavar="URL",
              help="An empty database migrated to the same revision, e.g. postgresql+psycopg://...")
def copy_data(target_url):
    """Copy every table of this database into the empty database at URL."""
    try:
        target = create_engine(target_url, poolclass=NullPool)
    except (ArgumentError, ImportError) as err:
        _fail(f"--to: not a usable database URL ({err}).")
    try:
        counts = copydata.copy_database(db.engine, target, db.metadata)
    except copydata.CopyError as err:
        _fail(str(err))
    except SQLAlchemyError as err:
        _fail(f"Copy failed, nothing written: {str(getattr(err, 'orig', err)).splitlines()[0]}")
    finally:
        target.dispose()
    for name, count in counts.items():
        click.echo(f"{name}: {count} rows", err=True)
    click.echo(f"Copied {sum(counts.values())} rows.", err=True)


COMMANDS = (init_db, copy_data, create_user, create_token, set_default, set_quota, usage,
            ensure_admin, purge_reservations, prune_events, backup, openapi)


def init_app(app) -> None:
    """Register the CLI commands on the app."""
    for command in COMMANDS:
        app.cli.add_command(command)
