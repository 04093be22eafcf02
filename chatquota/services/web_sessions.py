"""Dashboard sign-in: server-side sessions opened with an API token.

The browser holds a random value in a cookie; the database holds only its
SHA-256, so a leaked database cannot be replayed as cookies. Every lookup
joins the token and the user, so revoking the token or deactivating the user
ends the session on the next request.
"""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import clock
from ..dialect import Raw, write_transaction
from ..models import ApiToken, User, WebSession
from .accounts import authenticate
from .errors import InvalidValue


def _digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def sign_in(session: Session, key: str, lifetime: timedelta) -> tuple[WebSession, str]:
    """Open a session for the owner of API key `key`; return it and the cookie value."""
    with Raw.checkout(session.get_bind()) as raw:
        caller = authenticate(raw, key.strip())
    if caller is None:
        raise InvalidValue("token", "This token is not valid, was revoked, "
                                    "or its user is inactive.")
    cookie_value = secrets.token_urlsafe(32)
    now = clock.now()
    web_session = WebSession(
        id=_digest(cookie_value), user_id=caller.id, token_id=caller.token_id,
        csrf_token=secrets.token_urlsafe(32), created_at=now, expires_at=now + lifetime,
    )
    with write_transaction(session):
        session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        session.add(web_session)
    return web_session, cookie_value


def resolve(session: Session, cookie_value: str) -> tuple[WebSession, User] | None:
    """Return the live session for a cookie value and its user, else None."""
    row = session.execute(
        select(WebSession, User)
        .join(User, WebSession.user_id == User.id)
        .join(ApiToken, WebSession.token_id == ApiToken.id)
        .where(
            WebSession.id == _digest(cookie_value),
            WebSession.expires_at > clock.now(),
            ApiToken.revoked_at.is_(None),
            User.is_active,
        )
    ).first()
    return None if row is None else (row[0], row[1])


def sign_out(session: Session, cookie_value: str) -> None:
    """End the session of this cookie value; ending an unknown one changes nothing."""
    with write_transaction(session):
        session.execute(delete(WebSession).where(WebSession.id == _digest(cookie_value)))
