"""Group pages: every group with its usage bars, and one group's limits, members and chart.

Staff and support read them and set group limits; staff create and rename
groups and add and remove members.
"""

from flask import current_app, g, redirect, render_template, request, url_for
from marshmallow import ValidationError

from ..auth import READERS
from ..extensions import db
from ..periods import PERIODS
from ..schemas.fields import Uuid
from ..schemas.groups import GroupCreateSchema, GroupUpdateSchema
from ..services import accounts, groups, history, limits
from ..services.errors import DomainError, GroupNotFound, InvalidValue, MembershipNotFound
from . import bp, forms, present
from .pages import paging
from .websession import signed_in

MEMBERS_SHOWN = 200
SAVED = {"created": "Group created.", "limits": "Limits saved.", "name": "Name saved.",
         "member": "Member added.", "removed": "Member removed."}


def _field_error(schema, data: dict) -> tuple[dict, str | None]:
    """Load `data` with a schema; return it and the first error message, if any."""
    try:
        return schema().load(data), None
    except ValidationError as err:
        return {}, next(iter(err.normalized_messages().values()))[0]


def _render_groups(status: int = 200, error: str | None = None, name: str = ""):
    tz = current_app.config["TZ"]
    page, size = paging()
    search = request.args.get("search", "").strip()
    found = groups.list_groups(db.session, tz, search=search or None,
                               offset=(page - 1) * size, limit=size)
    rows = [(row, present.group_bars(row.report)) for row in found.items]
    html = render_template("dashboard/groups.html", rows=rows, total=found.total, page=page,
                           page_size=size, pages=max(1, -(-found.total // size)), search=search,
                           error=error, name=name, may_edit=g.user.is_staff)
    return html, status


@bp.get("/admin/groups/")
@signed_in(*READERS)
def group_list():
    """List every group with its usage bars and member count; search, paginate."""
    return _render_groups()


@bp.post("/admin/groups/")
@signed_in("is_staff")
def create_group():
    """Create a group (staff); a bad or taken name re-renders the list with the error."""
    name = request.form.get("name", "")
    fields, error = _field_error(GroupCreateSchema, {"name": name})
    if error is None:
        try:
            group = groups.create_group(db.session, g.user, fields["name"])
        except InvalidValue as err:
            error = err.message
        else:
            return redirect(url_for("dashboard.group", group_uuid=group.uuid, saved="created"))
    return _render_groups(400, error, name)


def _group_uuid(group_uuid: str) -> str:
    try:
        return Uuid().deserialize(group_uuid)
    except ValidationError:
        raise GroupNotFound() from None


def _render_group(group_uuid: str, form: forms.LimitsForm | None = None, status: int = 200,
                  error: str | None = None):
    tz = current_app.config["TZ"]
    record = groups.group_record(db.session, tz, group_uuid)
    if form is None:
        form = forms.initial({p: getattr(record, f"{p}_limit") for p in PERIODS})
    subject = groups.get_group(db.session, group_uuid)
    members = groups.list_members(db.session, subject, limit=MEMBERS_SHOWN)
    html = render_template(
        "dashboard/group.html", group=record, bars=present.group_bars(record.report),
        held=record.report.held, form=form, error=error,
        saved=SAVED.get(request.args.get("saved", "")),
        defaults=limits.get_defaults(db.session, limits.GROUP), members=members.items,
        members_total=members.total, may_edit=g.user.is_staff,
        chart=present.chart(history.daily_history(db.session, tz, 30, group=subject)))
    return html, status


@bp.get("/admin/groups/<group_uuid>/")
@signed_in(*READERS)
def group(group_uuid: str):
    """Show one group's bars, limits form, members and 30-day chart."""
    return _render_group(_group_uuid(group_uuid))


@bp.post("/admin/groups/<group_uuid>/")
@signed_in(*READERS)
def set_group_limits(group_uuid: str):
    """Change a group's three limits; bad input re-renders the form and changes nothing."""
    uuid = _group_uuid(group_uuid)
    form, new = forms.parse(request.form, allow_default=True)
    if form.errors:
        return _render_group(uuid, form, status=400)
    groups.set_group_quota(db.session, g.user, uuid,
                           {f"{period}_limit": value for period, value in new.items()})
    return redirect(url_for("dashboard.group", group_uuid=uuid, saved="limits"))


@bp.post("/admin/groups/<group_uuid>/name/")
@signed_in("is_staff")
def rename_group(group_uuid: str):
    """Rename a group (staff)."""
    uuid = _group_uuid(group_uuid)
    fields, error = _field_error(GroupUpdateSchema, {"name": request.form.get("name", "")})
    if error is None:
        try:
            groups.rename_group(db.session, g.user, uuid, fields["name"])
        except InvalidValue as err:
            error = err.message
        else:
            return redirect(url_for("dashboard.group", group_uuid=uuid, saved="name"))
    return _render_group(uuid, status=400, error=error)


@bp.post("/admin/groups/<group_uuid>/members/")
@signed_in("is_staff")
def add_member(group_uuid: str):
    """Add a user, by username, to a group (staff)."""
    uuid = _group_uuid(group_uuid)
    try:
        user = accounts.get_user_by_name(db.session, request.form.get("username", "").strip())
        groups.add_member(db.session, g.user, uuid, user.uuid)
    except DomainError as err:  # no such group: rendering it raises GroupNotFound, a 404
        return _render_group(uuid, status=400, error=err.message)
    return redirect(url_for("dashboard.group", group_uuid=uuid, saved="member"))


@bp.post("/admin/groups/<group_uuid>/members/<user_uuid>/remove/")
@signed_in("is_staff")
def remove_member(group_uuid: str, user_uuid: str):
    """Remove a user from a group (staff)."""
    uuid = _group_uuid(group_uuid)
    try:
        member = Uuid().deserialize(user_uuid)
    except ValidationError:
        raise MembershipNotFound() from None
    groups.remove_member(db.session, g.user, uuid, member)  # a stale button: a 404 page
    return redirect(url_for("dashboard.group", group_uuid=uuid, saved="removed"))
