"""Browser sign-in state: the session cookie, role checks and CSRF, Flask side.

The cookie holds a random value; `services.web_sessions` keeps its hash and
the per-session CSRF token. Every POST must carry that token in the form
field `csrf_token`. The sign-in form, which has no session yet, uses a
double-submit cookie instead.
"""

import hmac
import secrets
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, request, url_for

from ..auth import READERS, has_role
from ..extensions import db
from ..services import web_sessions

COOKIE = "chatquota_session"
SIGNIN_COOKIE = "chatquota_signin"


def load_session() -> None:
    """Set `g.user` and `g.web_session` from the session cookie (None when signed out)."""
    g.user = g.web_session = None
    value = request.cookies.get(COOKIE)
    if value:
        found = web_sessions.resolve(db.session, value)
        if found:
            g.web_session, g.user = found


def check_csrf() -> None:
    """Refuse a POST whose form does not carry the expected CSRF token (400)."""
    if request.method != "POST":
        return
    if g.web_session is not None:
        expected = g.web_session.csrf_token
    else:
        expected = request.cookies.get(SIGNIN_COOKIE, "")
    sent = request.form.get("csrf_token", "")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        abort(400, description="The form was stale or forged (CSRF check failed). "
                               "Reload the page and try again.")


def csrf_token() -> str:
    """Return the CSRF token to put in this page's forms."""
    if g.web_session is not None:
        return g.web_session.csrf_token
    if "signin_csrf" not in g:
        g.signin_csrf = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
    return g.signin_csrf


def _cookie_options() -> dict:
    return {"httponly": True, "samesite": "Lax", "secure": request.is_secure, "path": "/"}


def remember_signin_csrf(response):
    """Set the double-submit cookie when a page handed out a sign-in CSRF token."""
    if "signin_csrf" in g and g.web_session is None:
        response.set_cookie(SIGNIN_COOKIE, g.signin_csrf, **_cookie_options())
    return response


def start(response, key: str):
    """Sign in with API key `key` (may raise InvalidValue); set the cookie on `response`."""
    hours = current_app.config["SESSION_HOURS"]
    _session, value = web_sessions.sign_in(db.session, key, timedelta(hours=hours))
    old = request.cookies.get(COOKIE)
    if old:  # signing in again replaces this browser's previous session
        web_sessions.sign_out(db.session, old)
    response.set_cookie(COOKIE, value, max_age=hours * 3600, **_cookie_options())
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


def end(response):
    """Delete this browser's session row and cookie."""
    value = request.cookies.get(COOKIE)
    if value:
        web_sessions.sign_out(db.session, value)
    response.delete_cookie(COOKIE, path="/")
    return response


def is_reader(user) -> bool:
    """Tell whether the user may open the administration pages (staff or support)."""
    return has_role(user, *READERS)


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def signed_in(*roles: str):
    """Decorate a page: signed out -> sign-in page; lacking all of `roles` -> 403."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.user is None:
                return redirect(url_for("dashboard.sign_in", next=request.full_path.rstrip("?")))
            if roles and not has_role(g.user, *roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator
