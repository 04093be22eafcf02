"""Command line: `chatquota <command>`, or `flask --app chatquota <command>`; thin wrappers over services.

Scriptable: `create-user` prints only the uuid and `create-token` only the key
on stdout; messages go to stderr; errors exit non-zero with one line, also
for what an operator must fix (a setting, the database, its permissions).

Each command imports what it needs when it runs, and the `chatquota` command
builds an app without the HTTP layer unless the command reads it, so listing
the commands loads no command and most commands load no API, dashboard or schema.
"""

import functools
import json
import os
from datetime import timedelta

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext

from .periods import PERIODS

# Commands that read the HTTP layer (routes and schemas), not only the database.
HTTP_COMMANDS = {"openapi"}


def command(name: str):
    """Declare a command that runs in the app context and reports operator errors in one line."""
    def declare(fn):
        run = with_appcontext(fn)

        @functools.wraps(run)
        def guarded(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            except Exception as error:
                from .checks import operator_message

                message = operator_message(error)
                if message is None:
                    raise
                raise click.ClickException(message) from None

        return click.command(name)(guarded)

    return declare


def _fail(message: str):
    """Stop the command with a one-line error."""
    raise click.ClickException(message)


def _first_error(err) -> str:
    """Return a validation error's first message, prefixed by its field."""
    field, messages = next(iter(err.normalized_messages().items()))
    while isinstance(messages, dict):  # an item of a list field: {index: [...]}
        messages = next(iter(messages.values()))
    return f"{field}: {messages[0] if isinstance(messages, list) else messages}"


def _load(schema, data: dict) -> dict:
    """Validate with a marshmallow schema, failing with its first message."""
    from marshmallow import ValidationError

    try:
        return schema().load(data)
    except ValidationError as err:
        _fail(_first_error(err))


def _limit(value: str, field: str) -> int | None:
    """Parse a CLI limit: an integer, -1 (unlimited) or `default`/`null`."""
    from .schemas.quota import SetTokenQuotaRequestSchema

    if value.lower() in ("default", "null", "none"):
        return None
    return _load(SetTokenQuotaRequestSchema, {"user_uuid": "0" * 32, field: value})[field]


def _run(fn, *args, **kwargs):
    """Call a service, turning its domain errors into a one-line CLI error."""
    from .services.errors import DomainError

    try:
        return fn(*args, **kwargs)
    except DomainError as err:
        _fail(err.message)


def _user(name: str):
    """Return the user called NAME, or fail naming it."""
    from .extensions import db
    from .services import accounts

    return _run(accounts.get_user_by_name, db.session, name)


def _group(name: str):
    """Return the group called NAME, or fail naming it."""
    from .extensions import db
    from .services import groups

    return _run(groups.get_group_by_name, db.session, name)


def _limit_changes(**given) -> dict[str, int | None]:
    """Return `<period>_limit` -> value for the --daily/--weekly/--monthly options given."""
    return {f"{p}_limit": _limit(v, f"{p}_limit") for p, v in given.items() if v is not None}


def _limit_options(fn):
    """Add --daily, --weekly and --monthly to a command."""
    for period in reversed(PERIODS):
        fn = click.option(f"--{period}", help="Limit, -1 for unlimited, or 'default'.")(fn)
    return fn


BASELINE_REVISION = "0001"


@command("init-db")
def init_db():
    """Create the database schema, or upgrade it to the latest migration."""
    import flask_migrate
    from sqlalchemy import inspect

    from .extensions import db

    tables = set(inspect(db.engine).get_table_names())
    if "users" in tables and "alembic_version" not in tables:
        # Made by the pre-migration init-db (create_all), which made the first
        # migration's schema, or the second's once the dashboard had sessions.
        made = "0002" if "web_sessions" in tables else BASELINE_REVISION
        flask_migrate.stamp(revision=made)
    flask_migrate.upgrade()
    click.echo("Database ready.", err=True)


@command("create-user")
@click.argument("name")
@click.option("--uuid", "user_uuid", help="Use this uuid instead of a random one.")
@click.option("--staff", is_flag=True, help="Staff: everything, including defaults and users.")
@click.option("--support", is_flag=True, help="Support: read anyone's usage, set quotas.")
@click.option("--service", is_flag=True, help="Service account: metering for a chat backend.")
def create_user(name, user_uuid, staff, support, service):
    """Create a user and print its uuid."""
    from .extensions import db
    from .schemas.administration import UserCreateSchema
    from .services import accounts

    given = {"username": name, "is_staff": staff, "is_support": support, "is_service": service}
    # the same rules as POST /api/users/
    fields = _load(UserCreateSchema, given | ({"uuid": user_uuid} if user_uuid else {}))
    user = _run(accounts.create_user, db.session, None, fields.pop("username"),
                fields.pop("uuid", None), **fields)
    click.echo(user.uuid)


@command("create-token")
@click.argument("name")
@click.option("--label", default="", help="A note to tell tokens apart.")
def create_token(name, label):
    """Issue an API token for user NAME and print its key (shown only once)."""
    from .extensions import db
    from .services import accounts

    _token, key = _run(accounts.issue_token, db.session, None, _user(name), label)
    click.echo(key)


@command("set-default")
@click.argument("period", type=click.Choice(PERIODS))
@click.argument("limit")
def set_default(period, limit):
    """Set the system default LIMIT (-1 = unlimited) of PERIOD."""
    from .extensions import db
    from .services import limits

    value = _limit(limit, f"{period}_limit")
    if value is None:
        _fail("LIMIT must be an integer >= -1.")
    limits.set_defaults(db.session, None, {period: value})
    click.echo(f"{period} default set to {value}.", err=True)


@command("set-quota")
@click.argument("name")
@_limit_options
def set_quota(name, daily, weekly, monthly):
    """Set user NAME's limits; periods not given keep their value."""
    from .extensions import db
    from .services import limits

    changes = _limit_changes(daily=daily, weekly=weekly, monthly=monthly)
    if not changes:
        _fail("Give at least one of --daily, --weekly, --monthly.")
    _run(limits.set_quota, db.session, None, _user(name).uuid, changes)
    click.echo(f"Quota of {name} updated.", err=True)


@command("create-group")
@click.argument("name")
@_limit_options
def create_group(name, daily, weekly, monthly):
    """Create group NAME (limits not given follow the group defaults) and print its uuid."""
    from .extensions import db
    from .schemas.groups import GroupCreateSchema
    from .services import groups

    fields = _load(GroupCreateSchema, {"name": name})  # the rules of POST /api/groups/
    limits = _limit_changes(daily=daily, weekly=weekly, monthly=monthly)
    group = _run(groups.create_group, db.session, None, fields["name"], limits)
    click.echo(group.uuid)


@command("add-member")
@click.argument("group")
@click.argument("user")
def add_member(group, user):
    """Add user USER to group GROUP: from now on their usage counts for the group too."""
    from .extensions import db
    from .services import groups

    _run(groups.add_member, db.session, None, _group(group).uuid, _user(user).uuid)
    click.echo(f"{user} is now a member of {group}.", err=True)


@command("remove-member")
@click.argument("group")
@click.argument("user")
def remove_member(group, user):
    """Remove user USER from group GROUP; what they used stays the group's."""
    from .extensions import db
    from .services import groups

    _run(groups.remove_member, db.session, None, _group(group).uuid, _user(user).uuid)
    click.echo(f"{user} is no longer a member of {group}.", err=True)


@command("set-group-quota")
@click.argument("group")
@_limit_options
def set_group_quota(group, daily, weekly, monthly):
    """Set group GROUP's limits; periods not given keep their value."""
    from .extensions import db
    from .services import groups

    changes = _limit_changes(daily=daily, weekly=weekly, monthly=monthly)
    if not changes:
        _fail("Give at least one of --daily, --weekly, --monthly.")
    _run(groups.set_group_quota, db.session, None, _group(group).uuid, changes)
    click.echo(f"Quota of group {group} updated.", err=True)


@command("set-group-default")
@click.argument("period", type=click.Choice(PERIODS))
@click.argument("limit")
def set_group_default(period, limit):
    """Set the default LIMIT (-1 = unlimited) of PERIOD for groups."""
    from .extensions import db
    from .services import limits

    value = _limit(limit, f"{period}_limit")
    if value is None:
        _fail("LIMIT must be an integer >= -1.")
    limits.set_defaults(db.session, None, {period: value}, limits.GROUP)
    click.echo(f"{period} group default set to {value}.", err=True)


@command("set-model-weight")
@click.argument("model")
@click.argument("input_weight")
@click.argument("output_weight")
def set_model_weight(model, input_weight, output_weight):
    """Charge MODEL's tokens by INPUT_WEIGHT and OUTPUT_WEIGHT (e.g. 0.25 4) from now on."""
    from .extensions import db
    from .schemas.weights import ModelWeightRequestSchema
    from .services import weights

    fields = _load(ModelWeightRequestSchema, {"model": model, "input_weight": input_weight,
                                              "output_weight": output_weight})
    record, _created = weights.set_weights(db.session, None, **fields)
    click.echo(f"{model}: input tokens weigh {record.input_weight}, "
               f"output tokens {record.output_weight}.", err=True)


@command("usage")
@click.argument("name")
def usage(name):
    """Print user NAME's quota and usage as JSON."""
    from .dialect import Raw
    from .extensions import db
    from .services.usage import quota_report

    with Raw.checkout(db.engine) as raw:
        report = quota_report(raw, _user(name), current_app.config["TZ"])
    click.echo(json.dumps(report.fields(), indent=2))


@command("group-usage")
@click.argument("name")
def group_usage(name):
    """Print group NAME's quota and usage as JSON."""
    from .dialect import Raw
    from .extensions import db
    from .services.usage import group_report

    with Raw.checkout(db.engine) as raw:
        report = group_report(raw, _group(name).uuid, current_app.config["TZ"])
    click.echo(json.dumps(report.fields(), indent=2))


@command("set-alert-thresholds")
@click.argument("percents", nargs=-1, required=True)
def set_alert_thresholds(percents):
    """Set the alert thresholds, in percent of each limit (e.g. 80 100); `none` turns alerts off."""
    from .extensions import db
    from .schemas.alerts import AlertThresholdsSchema
    from .services import alerts

    given = [] if [p.lower() for p in percents] == ["none"] else list(percents)
    thresholds = _load(AlertThresholdsSchema, {"thresholds": given})["thresholds"]
    now = alerts.set_thresholds(db.session, None, thresholds)
    click.echo("Alert thresholds: " + (", ".join(f"{p}%" for p in now) or "none") + ".", err=True)


@command("add-webhook")
@click.argument("url")
@click.option("--secret", required=True, help="Signs every delivery (at least 16 characters).")
@click.option("--format", "fmt", type=click.Choice(("json", "slack")), default="json",
              show_default=True, help="slack: Slack, Mattermost and Rocket.Chat incoming webhooks.")
def add_webhook(url, secret, fmt):
    """Add a webhook that receives alerts and print its uuid."""
    from .extensions import db
    from .schemas.alerts import WebhookCreateSchema
    from .services import webhooks

    fields = _load(WebhookCreateSchema, {"url": url, "secret": secret, "format": fmt})
    click.echo(webhooks.create_webhook(db.session, None, **fields).uuid)


@command("ensure-admin")
@click.option("--username", default="admin", show_default=True)
def ensure_admin(username):
    """Create the first staff account if there is none; print its token once.

    Uses CHATQUOTA_ADMIN_TOKEN as the key when set. Does nothing when a staff
    user already exists, so it is safe on every start.
    """
    from .extensions import db
    from .services import accounts

    if accounts.any_staff(db.session):
        click.echo("A staff account exists; nothing to do. Lost its token? "
                   f"`chatquota create-token {username}` prints a new one "
                   "(`chatquota create-user NAME --staff` adds another staff user).", err=True)
        return
    key = os.environ.get("CHATQUOTA_ADMIN_TOKEN") or accounts.new_key()
    _run(accounts.check_key, key)  # before creating anything: no staff user without a key
    user = _run(accounts.create_user, db.session, None, username, is_staff=True)
    _run(accounts.issue_token, db.session, None, user, "first admin", key=key)
    click.echo(f"Created staff user {username!r}. Its API token (shown once):", err=True)
    click.echo(key)


@command("purge-reservations")
@click.option("--older-than-hours", type=click.IntRange(min=0), default=24, show_default=True,
              help="Keep holds that ended or expired more recently (late commits still work).")
def purge_reservations(older_than_hours):
    """Delete reservations that ended or expired long ago."""
    from .extensions import db
    from .services import reservations

    count = reservations.purge(db.session, timedelta(hours=older_than_hours))
    click.echo(f"Deleted {count} reservations.", err=True)


@command("prune-events")
@click.option("--before", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Delete events recorded before this local date (YYYY-MM-DD).")
def prune_events(before):
    """Delete raw usage events older than a date; usage totals and audit log stay."""
    from . import clock
    from .extensions import db
    from .services import maintenance

    day = before.date()
    if day > clock.now().astimezone(current_app.config["TZ"]).date():
        _fail("--before must not be after today.")
    deleted = maintenance.prune_events(db.session, day, current_app.config["TZ"])
    click.echo(f"Deleted {deleted} usage events recorded before {day}.", err=True)


@command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
def backup(path):
    """Write a consistent copy of the live SQLite database to PATH."""
    from .extensions import db
    from .services import maintenance

    target = _run(maintenance.backup_sqlite, db.session, path)
    click.echo(f"Backup written to {target}.", err=True)


@command("openapi")
@click.option("--format", "fmt", type=click.Choice(("json", "yaml")), default="json",
              show_default=True)
def openapi(fmt):
    """Print the OpenAPI document (the one served at /api/schema/)."""
    from .docs import render
    from .openapi import document

    click.echo(render(document(current_app), fmt))


@command("copy-data")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="An empty database migrated to the same revision, e.g. postgresql+psycopg://...")
def copy_data(target_url):
    """Copy every table of this database into the empty database at URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from . import copydata
    from .extensions import db

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
            create_group, add_member, remove_member, set_group_quota, set_group_default,
            group_usage, set_model_weight, set_alert_thresholds, add_webhook, ensure_admin,
            purge_reservations, prune_events, backup, openapi)


def init_app(app) -> None:
    """Register the CLI commands on the app (for `flask --app chatquota ...`)."""
    for cmd in COMMANDS:
        app.cli.add_command(cmd)


class _Commands(click.Group):
    """chatquota's commands, and Flask-Migrate's `db` group imported only when it runs."""

    def resolve_command(self, ctx, args):
        """Swap the `db` stand-in listed by --help for Flask-Migrate's group."""
        name, found, rest = super().resolve_command(ctx, args)
        if name == "db":
            from flask_migrate.cli import db as found
        return name, found, rest


def _app_for_command():
    """Build the app the running command needs, checking what an operator can fix first."""
    from . import create_app
    from .checks import check_database

    name = click.get_current_context().find_root().invoked_subcommand
    app = create_app(http=name in HTTP_COMMANDS)
    check_database(app)
    return app


commands = _Commands("chatquota", help="Administer chatquota: users, tokens, limits, the database.",
                     commands=[*COMMANDS, click.Group(
                         "db", help="Schema migrations (Flask-Migrate): upgrade, current, migrate, ...")])


def main() -> None:
    """Run the `chatquota` command (installed by `pip install -e .` as .venv/bin/chatquota)."""
    commands.main(obj=ScriptInfo(create_app=_app_for_command))
