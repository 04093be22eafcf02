"""Alert thresholds and the webhooks that receive alerts."""

import click

from .common import command, load


@command("set-alert-thresholds")
@click.argument("percents", nargs=-1, required=True)
def set_alert_thresholds(percents):
    """Set the alert thresholds, in percent of each limit (e.g. 80 100); `none` turns alerts off."""
    from ..extensions import db
    from ..schemas.alerts import AlertThresholdsSchema
    from ..services import alerts

    given = [] if [p.lower() for p in percents] == ["none"] else list(percents)
    thresholds = load(AlertThresholdsSchema, {"thresholds": given})["thresholds"]
    now = alerts.set_thresholds(db.session, None, thresholds)
    click.echo("Alert thresholds: " + (", ".join(f"{p}%" for p in now) or "none") + ".", err=True)


@command("add-webhook")
@click.argument("url")
@click.option("--secret", required=True, help="Signs every delivery (at least 16 characters).")
@click.option("--format", "fmt", type=click.Choice(("json", "slack")), default="json",
              show_default=True, help="slack: Slack, Mattermost and Rocket.Chat incoming webhooks.")
def add_webhook(url, secret, fmt):
    """Add a webhook that receives alerts and print its uuid."""
    from ..extensions import db
    from ..schemas.alerts import WebhookCreateSchema
    from ..services import webhooks

    fields = load(WebhookCreateSchema, {"url": url, "secret": secret, "format": fmt})
    click.echo(webhooks.create_webhook(db.session, None, **fields).uuid)
