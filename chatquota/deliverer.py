"""The deliverer: a thread in each worker process sends the alerts' deliveries to webhooks.

gunicorn's `post_worker_init` hook starts it in every worker (gunicorn.conf.py);
under `flask run` the first request does. It never runs in a testing app
(`TESTING`) or with CHATQUOTA_WEBHOOK_DELIVERY=off: deliveries then wait in
the database for a process that delivers.

Each round is one indexed read when there is nothing to do, once a second,
or at once when this process has just committed an alert. Otherwise it fans
out new alerts and claims up to BATCH due deliveries (services/deliveries.py),
sends them at the same time with httpx, and records the outcomes. While it
waits on HTTP it holds no database connection and no lock: a receiver that
hangs costs one sending thread for at most the timeout, and metering never
waits for it.
"""

import logging
import os
import threading
import time
from datetime import timedelta

import httpx

from . import clock
from .dialect import Raw
from .extensions import db
from .ids import time_ordered_uuid
from .services import alerts, deliveries, events, webhooks
from .services.deliveries import Claimed, Outcome, Retry

POLL_SECONDS = 1.0
BATCH = 8  # deliveries claimed, and sent at the same time, per round

log = logging.getLogger(__name__)


def lease_seconds(timeout: float) -> float:
    """Return how long a claim lasts: connecting, sending and reading may each take `timeout`."""
    return 3 * timeout + 5


def post(client: httpx.Client, url: str, payload: bytes, headers: dict) -> Outcome:
    """Send one delivery; return its status code or what went wrong, never raise for the network."""
    started, begun = clock.now(), time.monotonic()
    code = error = None
    try:
        # Streamed and closed unread: the status is the answer; a body could be slow or huge.
        with client.stream("POST", url, content=payload, headers=headers) as response:
            code = response.status_code
    except httpx.TimeoutException as failure:
        error = f"{type(failure).__name__}: no answer within {client.timeout.read:g} s."
    except (httpx.HTTPError, httpx.InvalidURL) as failure:
        error = f"{type(failure).__name__}: {failure}".rstrip(": ")
    return Outcome(started, code, error, round((time.monotonic() - begun) * 1000))


def _client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False)


def _signed(event: events.Event, fmt: str, secret: str, tz) -> tuple[bytes, dict]:
    payload = events.render(fmt, event, tz)
    return payload, events.headers(event, secret, int(time.time()), payload)


class Deliverer:
    """Claims, sends and records deliveries for one app's database."""

    def __init__(self, app):
        config = app.config
        self.timeout = config["WEBHOOK_TIMEOUT_SECONDS"]
        self.retry = Retry(config["WEBHOOK_RETRY_BASE_SECONDS"],
                           timedelta(hours=config["WEBHOOK_RETRY_HOURS"]))
        self.tz = config["TZ"]
        with app.app_context():
            self.engine = db.engine
        self.client = _client(self.timeout)

    def run_once(self) -> int:
        """Fan out new alerts, send the deliveries due, record the outcomes; return how many."""
        now = clock.now()
        with Raw.checkout(self.engine) as raw:
            if not deliveries.anything_due(raw, now):
                return 0
        claimed = deliveries.take_due(self.engine, now, lease_seconds(self.timeout), BATCH)
        if claimed:
            outcomes = self._send_all(claimed)
            deliveries.record(self.engine, list(zip(claimed, outcomes)), self.retry, clock.now())
        return len(claimed)

    def _send_all(self, claimed: list[Claimed]) -> list[Outcome]:
        """Send the deliveries at the same time; return their outcomes in order.

        Daemon threads: a worker that exits does not wait for a receiver
        that hangs (the lease brings the delivery back).
        """
        outcomes: list = [None] * len(claimed)

        def send(i: int, delivery: Claimed) -> None:
            payload, headers = _signed(delivery.event, delivery.format, delivery.secret, self.tz)
            outcomes[i] = post(self.client, delivery.url, payload, headers)

        threads = [threading.Thread(target=send, args=(i, delivery), daemon=True,
                                    name="chatquota-send") for i, delivery in enumerate(claimed)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if None in outcomes:  # a sending thread failed (a bug): the leases bring them back
            raise RuntimeError("a delivery could not be sent; see the error above")
        return outcomes

    def close(self) -> None:
        self.client.close()


def send_test(session, config, webhook_uuid: str) -> webhooks.DeliveryRecord:
    """Send a test event to a webhook now, log the attempt, and return its delivery."""
    target = webhooks.target_of(session, webhook_uuid)
    event = events.Event(time_ordered_uuid(), events.TEST, clock.now(), None)
    payload, headers = _signed(event, target.format, target.secret, config["TZ"])
    with _client(config["WEBHOOK_TIMEOUT_SECONDS"]) as client:
        outcome = post(client, target.url, payload, headers)
    return webhooks.record_test(session, target, event, outcome, config["TZ"])


# This process's deliverer thread: started once per process (a forked
# worker starts its own), stopped when the worker exits.
_running: dict = {}
_mutex = threading.Lock()


def start(app) -> None:
    """Start this process's deliverer thread, unless it runs, is off, or the app is testing."""
    if _running.get("pid") == os.getpid() or app.testing or not app.config["WEBHOOK_DELIVERY"]:
        return
    with _mutex:
        if _running.get("pid") == os.getpid():
            return
        stopping = threading.Event()
        thread = threading.Thread(target=_loop, args=(Deliverer(app), stopping),
                                  name="chatquota-deliverer", daemon=True)
        _running.update(pid=os.getpid(), thread=thread, stopping=stopping)
        thread.start()


def stop(wait_seconds: float = 2.0) -> None:
    """Stop this process's deliverer; an attempt under way gets `wait_seconds` to be recorded."""
    with _mutex:
        if _running.get("pid") != os.getpid():
            return
        running = dict(_running)
        _running.clear()
    running["stopping"].set()
    alerts.WRITTEN.set()  # wake it from its wait
    running["thread"].join(wait_seconds)


def _loop(deliverer: Deliverer, stopping: threading.Event) -> None:
    try:
        while not stopping.is_set():
            try:
                sent = deliverer.run_once()
            except Exception:  # e.g. the database restarting: try again next round
                log.exception("Webhook delivery round failed; trying again.")
                sent = 0
            if not sent:
                alerts.WRITTEN.wait(POLL_SECONDS)
                alerts.WRITTEN.clear()
    finally:
        deliverer.close()


def init_app(app) -> None:
    """Start the deliverer with this process's first request (gunicorn starts it sooner)."""
    if not app.testing and app.config["WEBHOOK_DELIVERY"]:
        app.before_request(lambda: start(app))
