"""Response headers that keep browsers from misreading, framing or caching what the app sends.

Every response says `X-Content-Type-Options: nosniff`, so no browser runs
JSON (which may echo what a caller sent) as script or HTML. The HTML pages
(the dashboard, Swagger UI) also carry their own Content-Security-Policy and
refuse to be framed. A response that shows a new API key must not be kept by
any cache (`NO_STORE`).
"""

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
NO_STORE = {"Cache-Control": "no-store"}


def page_headers(content_security_policy: str) -> dict:
    """Return an HTML page's headers: its CSP, no framing, no sniffing, same-origin referrers."""
    return {
        "Content-Security-Policy": content_security_policy + "; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
        "Referrer-Policy": "same-origin",
        **NOSNIFF,
    }


def _nosniff(response):
    """Add `X-Content-Type-Options: nosniff` to a response."""
    response.headers.update(NOSNIFF)
    return response


def init_app(app) -> None:
    """Send `X-Content-Type-Options: nosniff` on every response of the app."""
    app.after_request(_nosniff)
