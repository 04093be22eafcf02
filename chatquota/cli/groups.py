"""Groups, their members and limits, and model weights."""

import json

import click
from flask import current_app

from ..periods import PERIODS
from .common import (call, command, default_limit, group_named, limit_changes, limit_options, load,
                     user_named)


@command("create-group")
@click.argument("name")
@limit_options
def create_group(name, daily, weekly, monthly):
    """Create group NAME (limits not given follow the group defaults) and print its uuid."""
    from ..extensions import db
    from ..schemas.groups import GroupCreateSchema
    from ..services import groups

    fields = load(GroupCreateSchema, {"name": name})  # the rules of POST /api/groups/
    limits = limit_changes(daily=daily, weekly=weekly, monthly=monthly)
    group = call(groups.create_group, db.session, None, fields["name"], limits)
    click.echo(group.uuid)


@command("add-member")
@click.argument("group")
@click.argument("user")
def add_member(group, user):
    """Add user USER to group GROUP: from now on their usage counts for the group too."""
    from ..extensions import db
    from ..services import groups

    call(groups.add_member, db.session, None, group_named(group).uuid, user_named(user).uuid)
    click.echo(f"{user} is now a member of {group}.", err=True)


@command("remove-member")
@click.argument("group")
@click.argument("user")
def remove_member(group, user):
    """Remove user USER from group GROUP; what they used stays the group's."""
    from ..extensions import db
    from ..services import groups

    call(groups.remove_member, db.session, None, group_named(group).uuid, user_named(user).uuid)
    click.echo(f"{user} is no longer a member of {group}.", err=True)


@command("set-group-quota")
@click.argument("group")
@limit_options
def set_group_quota(group, daily, weekly, monthly):
    """Set group GROUP's limits; periods not given keep their value."""
    from ..extensions import db
    from ..services import groups

    changes = limit_changes(required=True, daily=daily, weekly=weekly, monthly=monthly)
    call(groups.set_group_quota, db.session, None, group_named(group).uuid, changes)
    click.echo(f"Quota of group {group} updated.", err=True)


@command("set-group-default")
@click.argument("period", type=click.Choice(PERIODS))
@click.argument("limit")
def set_group_default(period, limit):
    """Set the default LIMIT (-1 = unlimited) of PERIOD for groups."""
    from ..extensions import db
    from ..services import limits

    value = default_limit(period, limit)
    limits.set_defaults(db.session, None, {period: value}, limits.GROUP)
    click.echo(f"{period} group default set to {value}.", err=True)


@command("group-usage")
@click.argument("name")
def group_usage(name):
    """Print group NAME's quota and usage as JSON."""
    from ..dialect import Raw
    from ..extensions import db
    from ..services.usage import group_report

    with Raw.checkout(db.engine) as raw:
        report = group_report(raw, group_named(name).uuid, current_app.config["TZ"])
    click.echo(json.dumps(report.fields(), indent=2))


@command("set-model-weight")
@click.argument("model")
@click.argument("input_weight")
@click.argument("output_weight")
def set_model_weight(model, input_weight, output_weight):
    """Charge MODEL's tokens by INPUT_WEIGHT and OUTPUT_WEIGHT (e.g. 0.25 4) from now on."""
    from ..extensions import db
    from ..schemas.weights import ModelWeightRequestSchema
    from ..services import weights

    fields = load(ModelWeightRequestSchema, {"model": model, "input_weight": input_weight,
                                              "output_weight": output_weight})
    record, _created = weights.set_weights(db.session, None, **fields)
    click.echo(f"{model}: input tokens weigh {record.input_weight}, "
               f"output tokens {record.output_weight}.", err=True)
