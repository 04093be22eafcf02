"""Users, tokens, their limits and the system defaults."""

import json
import os

import click
from flask import current_app

from ..periods import PERIODS
from .common import call, command, default_limit, limit_changes, limit_options, load, user_named


@command("create-user")
@click.argument("name")
@click.option("--uuid", "user_uuid", help="Use this uuid instead of a random one.")
@click.option("--staff", is_flag=True, help="Staff: everything, including defaults and users.")
@click.option("--support", is_flag=True, help="Support: read anyone's usage, set quotas.")
@click.option("--service", is_flag=True, help="Service account: metering for a chat backend.")
def create_user(name, user_uuid, staff, support, service):
    """Create a user and print its uuid."""
    from ..extensions import db
    from ..schemas.administration import UserCreateSchema
    from ..services import accounts

    given = {"username": name, "is_staff": staff, "is_support": support, "is_service": service}
    # the same rules as POST /api/users/
    fields = load(UserCreateSchema, given | ({"uuid": user_uuid} if user_uuid else {}))
    user = call(accounts.create_user, db.session, None, fields.pop("username"),
                fields.pop("uuid", None), **fields)
    click.echo(user.uuid)


@command("create-token")
@click.argument("name")
@click.option("--label", default="", help="A note to tell tokens apart.")
def create_token(name, label):
    """Issue an API token for user NAME and print its key (shown only once)."""
    from ..extensions import db
    from ..services import accounts

    _token, key = call(accounts.issue_token, db.session, None, user_named(name), label)
    click.echo(key)


@command("set-default")
@click.argument("period", type=click.Choice(PERIODS))
@click.argument("limit")
def set_default(period, limit):
    """Set the system default LIMIT (-1 = unlimited) of PERIOD."""
    from ..extensions import db
    from ..services import limits

    value = default_limit(period, limit)
    limits.set_defaults(db.session, None, {period: value})
    click.echo(f"{period} default set to {value}.", err=True)


@command("set-quota")
@click.argument("name")
@limit_options
def set_quota(name, daily, weekly, monthly):
    """Set user NAME's limits; periods not given keep their value."""
    from ..extensions import db
    from ..services import limits

    changes = limit_changes(required=True, daily=daily, weekly=weekly, monthly=monthly)
    call(limits.set_quota, db.session, None, user_named(name).uuid, changes)
    click.echo(f"Quota of {name} updated.", err=True)


@command("usage")
@click.argument("name")
def usage(name):
    """Print user NAME's quota and usage as JSON."""
    from ..dialect import Raw
    from ..extensions import db
    from ..services.usage import quota_report

    with Raw.checkout(db.engine) as raw:
        report = quota_report(raw, user_named(name), current_app.config["TZ"])
    click.echo(json.dumps(report.fields(), indent=2))


@command("ensure-admin")
@click.option("--username", default="admin", show_default=True)
def ensure_admin(username):
    """Create the first staff account if there is none; print its token once.

    Uses CHATQUOTA_ADMIN_TOKEN as the key when set. Does nothing when a staff
    user already exists, so it is safe on every start.
    """
    from ..extensions import db
    from ..services import accounts

    if accounts.any_staff(db.session):
        click.echo("A staff account exists; nothing to do. Lost its token? "
                   f"`chatquota create-token {username}` prints a new one "
                   "(`chatquota create-user NAME --staff` adds another staff user).", err=True)
        return
    key = os.environ.get("CHATQUOTA_ADMIN_TOKEN") or accounts.new_key()
    call(accounts.check_key, key)  # before creating anything: no staff user without a key
    user = call(accounts.create_user, db.session, None, username, is_staff=True)
    call(accounts.issue_token, db.session, None, user, "first admin", key=key)
    click.echo(f"Created staff user {username!r}. Its API token (shown once):", err=True)
    click.echo(key)
