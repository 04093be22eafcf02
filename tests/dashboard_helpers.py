"""Helpers for the dashboard tests: sign a test client in, read CSRF tokens and cookies."""

import re

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(response) -> str:
    """Return the CSRF token embedded in a page's forms."""
    return CSRF.search(response.get_data(as_text=True)).group(1)


def sign_in(client, account, next_path: str | None = None):
    """Sign `client` in with the account's API key; return the sign-in response."""
    form = client.get("/sign-in/")
    data = {"token": account.key, "csrf_token": csrf_of(form)}
    if next_path:
        data["next"] = next_path
    return client.post("/sign-in/", data=data)


def session_csrf(client) -> str:
    """Return the CSRF token of the client's current session."""
    return csrf_of(client.get("/me/"))


def set_cookie_header(response, name: str) -> str:
    """Return the Set-Cookie header that sets cookie `name`."""
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "="))
