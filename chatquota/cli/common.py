"""What every command shares: declaring it, one-line errors, reading limits and names."""

import functools

import click
from flask.cli import with_appcontext

from ..periods import PERIODS


def command(name: str):
    """Declare a command that runs in the app context and reports operator errors in one line."""
    def declare(fn):
        run = with_appcontext(fn)

        @functools.wraps(run)
        def guarded(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            except Exception as error:
                from ..checks import operator_message

                message = operator_message(error)
                if message is None:
                    raise
                raise click.ClickException(message) from None

        return click.command(name)(guarded)

    return declare


def fail(message: str):
    """Stop the command with a one-line error."""
    raise click.ClickException(message)


def first_error(err) -> str:
    """Return a validation error's first message, prefixed by its field."""
    field, messages = next(iter(err.normalized_messages().items()))
    while isinstance(messages, dict):  # an item of a list field: {index: [...]}
        messages = next(iter(messages.values()))
    return f"{field}: {messages[0] if isinstance(messages, list) else messages}"


def load(schema, data: dict) -> dict:
    """Validate with a marshmallow schema, failing with its first message."""
    from marshmallow import ValidationError

    try:
        return schema().load(data)
    except ValidationError as err:
        fail(first_error(err))


def parse_limit(value: str, field: str) -> int | None:
    """Parse a CLI limit: an integer, -1 (unlimited) or `default`/`null`."""
    from ..schemas.quota import SetTokenQuotaRequestSchema

    if value.lower() in ("default", "null", "none"):
        return None
    return load(SetTokenQuotaRequestSchema, {"user_uuid": "0" * 32, field: value})[field]


def call(fn, *args, **kwargs):
    """Call a service, turning its domain errors into a one-line CLI error."""
    from ..services.errors import DomainError

    try:
        return fn(*args, **kwargs)
    except DomainError as err:
        fail(err.message)


def user_named(name: str):
    """Return the user called NAME, or fail naming it."""
    from ..extensions import db
    from ..services import accounts

    return call(accounts.get_user_by_name, db.session, name)


def group_named(name: str):
    """Return the group called NAME, or fail naming it."""
    from ..extensions import db
    from ..services import groups

    return call(groups.get_group_by_name, db.session, name)


def limit_changes(required: bool = False, **given) -> dict[str, int | None]:
    """Return `<period>_limit` -> value for the --daily/--weekly/--monthly options given.

    `required`: stop with an error unless at least one was given.
    """
    changes = {f"{p}_limit": parse_limit(v, f"{p}_limit")
               for p, v in given.items() if v is not None}
    if required and not changes:
        fail("Give at least one of --daily, --weekly, --monthly.")
    return changes


def default_limit(period: str, limit: str) -> int:
    """Return the LIMIT argument of a set-default command, or stop naming what is wrong."""
    value = parse_limit(limit, f"{period}_limit")
    if value is None:
        fail("LIMIT must be an integer >= -1.")
    return value


def limit_options(fn):
    """Add --daily, --weekly and --monthly to a command."""
    for period in reversed(PERIODS):
        fn = click.option(f"--{period}", help="Limit, -1 for unlimited, or 'default'.")(fn)
    return fn
