"""The gateway: an OpenAI-compatible proxy that puts every chat UI's users under quota.

Point a chat UI's "OpenAI API base URL" at chatquota's `/v1`; chatquota
forwards each call to the upstream server of its model (`upstreams.py`)
after admitting a hold for the call's worst case (`estimate.py`,
`proxy.py`), relays streamed replies event by event (`relay.py`) and
charges what the reply cost (`calls.py`). It is a client of metering like
any chat backend, through reservations: the same ledger, the same limits.

On when `CHATQUOTA_UPSTREAM_URL` is set (or an upstreams file exists).
Under gunicorn every open call holds a worker thread; at most
`CHATQUOTA_THREADS - CHATQUOTA_GATEWAY_RESERVED_THREADS` calls per worker
are open at once (more get a 503 asking to retry), so the rest of the API
always has threads to answer with.
"""

import threading

from .estimate import Learned
from .proxy import Gateway
from .upstreams import Router, load


def register(app) -> None:
    """Add the /v1 routes to the app when it has an upstream."""
    upstreams = load(app.config, app.instance_path)
    if not upstreams:
        return
    from .routes import bp

    config = app.config
    slots = max(1, config["THREADS"] - config["GATEWAY_RESERVED_THREADS"])
    app.extensions["chatquota.gateway"] = Gateway(
        Router(upstreams, config["UPSTREAM_TIMEOUT"]),
        Learned(config["GATEWAY_PROMPT_OVERHEAD"]),
        threading.BoundedSemaphore(slots),
    )
    app.register_blueprint(bp)
