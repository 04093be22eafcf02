"""Command line: `chatquota <command>`, or `flask --app chatquota <command>`; thin wrappers over services.

Scriptable: `create-user` prints only the uuid and `create-token` only the key
on stdout; messages go to stderr; errors exit non-zero with one line, also
for what an operator must fix (a setting, the database, its permissions).

Each command imports what it needs when it runs, and the `chatquota` command
builds an app without the HTTP layer unless the command reads it, so listing
the commands loads no command and most commands load no API, dashboard or schema.
"""

import click
from flask.cli import ScriptInfo

from . import accounts, alerts, groups, operations

# Commands that read the HTTP layer (routes and schemas), not only the database.
HTTP_COMMANDS = {"openapi"}

COMMANDS = (operations.init_db, operations.copy_data, accounts.create_user, accounts.create_token,
            accounts.set_default, accounts.set_quota, accounts.usage, groups.create_group,
            groups.add_member, groups.remove_member, groups.set_group_quota,
            groups.set_group_default, groups.group_usage, groups.set_model_weight,
            alerts.set_alert_thresholds, alerts.add_webhook, accounts.ensure_admin,
            operations.purge_reservations, operations.prune_events, operations.backup,
            operations.openapi)


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
    from .. import create_app
    from ..checks import check_database

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
