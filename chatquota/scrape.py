"""The /metrics route, who may scrape it, and the request hooks that feed chatquota.metrics.

Only addresses in CHATQUOTA_METRICS_ALLOW (default: this machine) may scrape;
behind a proxy, every address in X-Forwarded-For and X-Real-IP must be allowed
too, so clients of nginx on this machine are not let in by nginx's own
address. With CHATQUOTA_METRICS_TOKEN set, a scrape also needs
`Authorization: Bearer <token>`.
"""

import hmac
import ipaddress
import time

from flask import Blueprint, Response, current_app, g, request

from . import metrics
from .errors import error_response
from .extensions import db
from .services.reservations import live_holds

bp = Blueprint("metrics", __name__)

@bp.before_app_request
def _start_clock():
    """Note when the request started."""
    g.metrics_started = time.perf_counter()


@bp.after_app_request
def _record(response):
    """Count the answered request and its latency (admissions are counted by metering)."""
    started = g.pop("metrics_started", None)
    if started is not None:
        metrics.request_done(request.endpoint or "none", request.method, response.status_code,
                             time.perf_counter() - started)
    return response


@bp.get("/metrics")
def scrape():
    """Serve the Prometheus metrics to allowed addresses."""
    if not _address_allowed():
        return error_response(403, {"detail": "Metrics are not served to this address "
                                              "(CHATQUOTA_METRICS_ALLOW)."})
    if not _token_accepted():
        return error_response(401, {"detail": "Metrics need a bearer token."},
                              {"WWW-Authenticate": "Bearer"})
    body = metrics.exposition(lambda: live_holds(db.session))
    return Response(body, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def _address_allowed() -> bool:
    """Tell whether the peer and every address it forwards for are allowed."""
    forwarded = ",".join(request.headers.getlist("X-Forwarded-For") + request.headers.getlist("X-Real-IP"))
    hops = [request.remote_addr or ""] + [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    allowed = current_app.config["METRICS_ALLOW"]
    try:
        addresses = [ipaddress.ip_address(hop) for hop in hops]
    except ValueError:  # not an IP address: nothing to allow
        return False
    # A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
    addresses = [getattr(a, "ipv4_mapped", None) or a for a in addresses]
    return all(any(address in net for net in allowed) for address in addresses)


def _token_accepted() -> bool:
    """Tell whether no token is needed or the right one was sent."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        return True
    sent = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(sent, f"Bearer {token}".encode())
