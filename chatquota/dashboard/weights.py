"""The model weights page: every weighted model; staff set a model's weights."""

from flask import g, redirect, render_template, request, url_for
from marshmallow import ValidationError

from ..auth import READERS
from ..extensions import db
from ..schemas.weights import ModelWeightRequestSchema
from ..services import weights
from . import bp
from .pages import paging
from .websession import signed_in

FIELDS = ("model", "input_weight", "output_weight")


def _render(status: int = 200, errors: dict | None = None, values: dict | None = None):
    page, size = paging()
    found = weights.list_weights(db.session, offset=(page - 1) * size, limit=size)
    html = render_template(
        "dashboard/model_weights.html", weights=found.items, total=found.total, page=page,
        page_size=size, pages=max(1, -(-found.total // size)), errors=errors or {},
        values=values or {}, saved=request.args.get("saved"), may_edit=g.user.is_staff)
    return html, status


@bp.get("/admin/model-weights/")
@signed_in(*READERS)
def model_weights():
    """List the weighted models; any other model's tokens weigh 1."""
    return _render()


@bp.post("/admin/model-weights/")
@signed_in("is_staff")
def set_model_weights():
    """Set a model's weights (staff); bad input re-renders the form and changes nothing."""
    values = {name: request.form.get(name, "").strip() for name in FIELDS}
    try:
        fields = ModelWeightRequestSchema().load(values)
    except ValidationError as err:
        errors = {name: messages[0] for name, messages in err.normalized_messages().items()}
        return _render(400, errors, values)
    weights.set_weights(db.session, g.user, **fields)
    return redirect(url_for("dashboard.model_weights", saved=fields["model"]))
