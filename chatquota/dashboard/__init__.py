"""The web dashboard: server-rendered pages over the same services as the API.

`/admin/` (staff and support) lists everyone's usage and edits limits, with
pages for groups and model weights; `/admin/webhooks/` (staff) manages alerts;
`/me/` shows any signed-in user their own usage, their groups' and their
alerts. Sign-in is by pasting an API token.
"""

from itertools import chain

from flask import Blueprint, abort, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from ..schemas.fields import unstorable_fields
from ..security import page_headers
from ..services.errors import NotFound
from . import present, websession

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard/static")

SECURITY_HEADERS = page_headers("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self'; form-action 'self'; base-uri 'none'")


@bp.before_request
def _before():
    if request.endpoint == "dashboard.static":
        return  # assets need no session lookup
    bad = unstorable_fields(chain(request.args.items(multi=True), request.form.items(multi=True)))
    if bad:
        abort(400, description=" ".join(f"{name}: {messages[0]}" for name, messages in bad.items()))
    websession.load_session()
    websession.check_csrf()


@bp.after_request
def _after(response):
    response.headers.update(SECURITY_HEADERS)
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return websession.remember_signin_csrf(response)


@bp.context_processor
def _context():
    tz = current_app.config["TZ"]
    return {"csrf_token": websession.csrf_token, "is_reader": websession.is_reader,
            "tokens": present.tokens, "limit_caption": present.limit_caption,
            "local_time": lambda instant: present.local_time(instant, tz), "iso": present.iso}


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return render_template("dashboard/error.html", error=error), error.code


@bp.errorhandler(NotFound)
def _not_found(error: NotFound):
    return render_template("dashboard/error.html", error=error, code=404), 404


def register(app) -> None:
    """Register the dashboard's pages on the app."""
    from . import account, groups, pages, webhooks, weights  # noqa: F401  (they add routes to `bp`)

    app.register_blueprint(bp)
