"""Administration pages: users overview, one user's page, system defaults, audit log.

(Groups and model weights have their own modules.)
"""

from flask import current_app, g, redirect, render_template, request, url_for
from marshmallow import ValidationError

from ..auth import READERS
from ..extensions import connection, db
from ..periods import PERIODS
from ..schemas.fields import Uuid
from ..services import accounts, audit as audit_log, history, limits, overview
from ..services.errors import UserNotFound
from ..services.reservations import list_active
from ..services.usage import group_reports, quota_report
from . import bp, forms, present
from .websession import signed_in

PAGE_SIZE, MAX_PAGE_SIZE = 20, 200
ORDERINGS = ("username", "daily_usage", "weekly_usage", "monthly_usage")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """Read a whole-number query argument; out of range or malformed -> the default."""
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        return default
    return value if low <= value <= high else default


def paging() -> tuple[int, int]:
    """Return the page number and page size asked for (defaults when malformed)."""
    size = _int_arg("page_size", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return _int_arg("page", 1, 1, 10**9), size


def _ordering() -> str:
    ordering = request.args.get("ordering", "username")
    return ordering if ordering.lstrip("-") in ORDERINGS else "username"


@bp.get("/admin/")
@signed_in(*READERS)
def users():
    """List every user with their usage bars; search, sort, paginate."""
    tz = current_app.config["TZ"]
    page, size = paging()
    search = request.args.get("search", "").strip()
    ordering = _ordering()
    found = overview.list_quotas(db.session, tz, search=search or None, ordering=ordering,
                                offset=(page - 1) * size, limit=size)
    rows = [(row, present.bars(row.report)) for row in found.items]
    past = history.daily_history(db.session, tz, 30)
    return render_template(
        "dashboard/users.html", rows=rows, total=found.total, page=page, page_size=size,
        pages=max(1, -(-found.total // size)), search=search, ordering=ordering,
        chart=present.chart(past),
    )


def _user(user_uuid: str):
    try:
        return accounts.get_user(db.session, Uuid().deserialize(user_uuid))
    except ValidationError:
        raise UserNotFound() from None


def _render_user(user, form: forms.LimitsForm, status: int = 200, saved: bool = False):
    tz = current_app.config["TZ"]
    report = quota_report(connection(), user, tz)
    groups = group_reports(connection(), user.id, tz, report.now)
    past = history.daily_history(db.session, tz, 30, user=user)
    events = history.list_events(db.session, tz, user=user, limit=20)
    models = history.usage_by_model(db.session, tz, user, 30)
    page = render_template(
        "dashboard/user.html", subject=user, bars=present.bars(report), held=report.held,
        groups=groups, refusal=present.refusal_now(report, groups) if user.is_active else None,
        defaults={p.window.period: p.system_default for p in report.periods}, form=form,
        chart=present.chart(past), models=models, events=events.items, events_total=events.total,
        reservations=list_active(db.session, user, report.now), saved=saved,
    )
    return page, status


@bp.get("/admin/users/<user_uuid>/")
@signed_in(*READERS)
def user(user_uuid: str):
    """Show one user's bars, limits form, 30-day chart, recent events and holds."""
    subject = _user(user_uuid)
    stored = {p: getattr(subject.quota, f"{p}_limit") for p in PERIODS}
    return _render_user(subject, forms.initial(stored), saved=request.args.get("saved") == "1")


@bp.post("/admin/users/<user_uuid>/")
@signed_in(*READERS)
def set_user_limits(user_uuid: str):
    """Change a user's three limits; bad input re-renders the form and changes nothing."""
    subject = _user(user_uuid)
    form, new = forms.parse(request.form, allow_default=True)
    if form.errors:
        return _render_user(subject, form, status=400)
    changes = {f"{period}_limit": value for period, value in new.items()}
    limits.set_quota(db.session, g.user, subject.uuid, changes)
    return redirect(url_for("dashboard.user", user_uuid=subject.uuid, saved=1))


def _render_defaults(users: forms.LimitsForm | None = None,
                     groups: forms.LimitsForm | None = None, status: int = 200):
    """Render both default forms; one given (submitted with errors) replaces the stored values."""
    page = render_template(
        "dashboard/defaults.html", saved=request.args.get("saved"), may_edit=g.user.is_staff,
        form=users or forms.initial(limits.get_defaults(db.session)),
        group_form=groups or forms.initial(limits.get_defaults(db.session, limits.GROUP)))
    return page, status


@bp.get("/admin/defaults/")
@signed_in(*READERS)
def defaults():
    """Show the system defaults of users and of groups; staff get forms to change them."""
    return _render_defaults()


@bp.post("/admin/defaults/")
@signed_in("is_staff")
def set_defaults():
    """Change the system defaults of users (staff only)."""
    form, new = forms.parse(request.form, allow_default=False)
    if form.errors:
        return _render_defaults(users=form, status=400)
    limits.set_defaults(db.session, g.user, new)
    return redirect(url_for("dashboard.defaults", saved="users"))


@bp.post("/admin/group-defaults/")
@signed_in("is_staff")
def set_group_defaults():
    """Change the defaults of groups whose limits are null (staff only)."""
    form, new = forms.parse(request.form, allow_default=False)
    if form.errors:
        return _render_defaults(groups=form, status=400)
    limits.set_defaults(db.session, g.user, new, limits.GROUP)
    return redirect(url_for("dashboard.defaults", saved="groups"))


@bp.get("/admin/audit/")
@signed_in(*READERS)
def audit():
    """List who changed which limit or default, newest first."""
    page, size = paging()
    found = audit_log.list_entries(db.session, offset=(page - 1) * size, limit=size)
    return render_template("dashboard/audit.html", entries=found.items, total=found.total,
                           page=page, page_size=size, pages=max(1, -(-found.total // size)))
