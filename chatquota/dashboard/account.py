"""Signing in and out, and `/me/`: every user's own usage."""

from flask import current_app, g, make_response, redirect, render_template, request, url_for

from ..extensions import connection, db
from ..services import alerts, history
from ..services.errors import InvalidValue
from ..services.usage import group_reports, quota_report
from . import bp, present, websession


def _home() -> str:
    return url_for("dashboard.users" if websession.is_reader(g.user) else "dashboard.me")


@bp.get("/")
def index():
    """Send the browser to the page that suits it."""
    return redirect(_home() if g.user else url_for("dashboard.sign_in"))


@bp.route("/sign-in/", methods=["GET", "POST"])
def sign_in():
    """Show the sign-in form; on a valid API token, open a session."""
    target = websession.safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.user is not None:
            return redirect(target or _home())
        return render_template("dashboard/sign_in.html", next=target, error=None)
    try:
        response = make_response(redirect(target or url_for("dashboard.index")))
        return websession.start(response, request.form.get("token", ""))
    except InvalidValue as err:
        page = render_template("dashboard/sign_in.html", next=target, error=err.message)
        return page, 400


@bp.post("/sign-out/")
def sign_out():
    """End this browser's session."""
    return websession.end(make_response(redirect(url_for("dashboard.sign_in"))))


@bp.get("/me/")
@websession.signed_in()
def me():
    """Show the signed-in user's usage, limits, reset times, thresholds reached, and groups'."""
    tz = current_app.config["TZ"]
    report = quota_report(connection(), g.user, tz)
    groups = group_reports(connection(), g.user.id, tz, report.now)
    past = history.daily_history(db.session, tz, 30, user=g.user)
    return render_template(
        "dashboard/me.html", bars=present.bars(report), held=report.held,
        chart=present.chart(past), refusal=present.refusal_now(report, groups),
        groups=[(group, present.group_bars(group.report)) for group in groups],
        notices=alerts.notices(report, alerts.get_thresholds(db.session)),
        models=history.usage_by_model(db.session, tz, g.user, 30))
