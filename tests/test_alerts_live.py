"""Alerts through real gunicorn workers and a real receiver: exactly one alert per threshold under
concurrent load, delivered and signed; a failing receiver gets it later; SIGKILLs lose nothing;
a receiver that hangs does not hold up metering.

Each worker runs its own deliverer thread (gunicorn.conf.py), as under `make run`.
"""

import os
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from chatquota.extensions import db
from chatquota.models import Alert, Webhook, WebhookDelivery
from chatquota.services import limits, webhooks
from chatquota.services.deliveries import LOST

from .live import LiveServer, seed
from .receiver import Receiver

SECRET = "a-secret-of-24-characters"
DELIVERING = {"CHATQUOTA_WEBHOOK_DELIVERY": "on"}  # the suite turns it off (conftest.py)


def add_webhook(app, url, fmt="json"):
    with app.app_context():
        return webhooks.create_webhook(db.session, None, url=url, secret=SECRET, format=fmt,
                                       events=["quota.threshold"]).uuid


def alerts_in(app):
    with app.app_context():
        return [(a.subject_uuid, a.period, a.threshold, a.usage)
                for a in db.session.scalars(select(Alert).order_by(Alert.id))]


def deliveries_in(app):
    with app.app_context():
        return db.session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.alert_id.is_not(None)).order_by(WebhookDelivery.id)).all()


def attempts_in(app):
    with app.app_context():
        webhook = db.session.scalars(select(Webhook)).one()
        log = webhooks.list_deliveries(db.session, webhook, app.config["TZ"], limit=100)
        return [[(a.status_code, a.error) for a in d.log] for d in log.items]


def until(condition, timeout=60.0, what="the condition"):
    """Wait until `condition()` is true (polling); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


class Backend:
    """A chat backend's HTTP client: consume calls with the service key."""

    def __init__(self, base, key):
        self.base, self.http = base, requests.Session()
        self.http.headers["Authorization"] = f"Token {key}"

    def consume(self, user, tokens, enforce=True):
        started = time.monotonic()
        response = self.http.post(self.base + "/api/chat-quota/consume/", timeout=60, json={
            "user_uuid": user, "tokens": tokens, "enforce": enforce})
        return response.status_code, time.monotonic() - started


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def test_one_alert_per_threshold_under_concurrent_load(app, database_url, receiver, tmp_path):
    key, [user] = seed(app, users=1, daily_limit=1000)
    with app.app_context():
        limits.set_quota(db.session, None, user, {"weekly_limit": 1250})
    add_webhook(app, receiver.url("/json"))
    add_webhook(app, receiver.url("/slack"), fmt="slack")
    with LiveServer(database_url, workers=4, log_path=tmp_path / "gunicorn.log",
                    **DELIVERING) as server:
        def client(_):
            backend = Backend(server.url, key)
            return [backend.consume(user, 10)[0] for _ in range(4)]

        with ThreadPoolExecutor(48) as pool:
            statuses = [s for batch in pool.map(client, range(48)) for s in batch]
        until(lambda: all(d.state == "delivered" for d in deliveries_in(app))
              and len(deliveries_in(app)) == 6, what="6 deliveries")
    assert statuses.count(201) == 100 and statuses.count(429) == 92
    assert sorted(alerts_in(app)) == sorted([(user, "daily", 80, 800), (user, "daily", 100, 1000),
                                             (user, "weekly", 80, 1000)])
    sent = receiver.at("/json")
    assert len(sent) == 3 and len(receiver.at("/slack")) == 3  # each delivered once
    assert all(r.verifies(SECRET) for r in receiver.received)
    assert sorted((e["period"], e["threshold"], e["usage"], e["limit"])
                  for e in (r.json() for r in sent)) == [
        ("daily", 80, 800, 1000), ("daily", 100, 1000, 1000), ("weekly", 80, 1000, 1250)]
    ids = {r.headers["X-Chatquota-Event-Id"] for r in sent}
    assert ids == {r.headers["X-Chatquota-Event-Id"] for r in receiver.at("/slack")}
    assert [d.attempts for d in deliveries_in(app)] == [1] * 6
    assert "database is locked" not in (tmp_path / "gunicorn.log").read_text()
    print(f"\n{len(statuses)} consume calls from 48 clients on 4 workers: 100 admitted; "
          f"{len(alerts_in(app))} alerts written, {len(receiver.received)} deliveries received, "
          "each once, signatures verified")


def test_a_receiver_that_fails_then_recovers_gets_the_alert(app, database_url, receiver):
    key, [user] = seed(app, users=1, daily_limit=100)
    add_webhook(app, receiver.url())
    receiver.statuses = [500, 503]
    with LiveServer(database_url, workers=2, CHATQUOTA_WEBHOOK_RETRY_BASE_SECONDS="1",
                    **DELIVERING) as server:
        assert Backend(server.url, key).consume(user, 85)[0] == 201
        until(lambda: [d.state for d in deliveries_in(app)] == ["delivered"], what="delivery")
    got = receiver.received
    assert len(got) == 3 and len({r.headers["X-Chatquota-Event-Id"] for r in got}) == 1
    assert all(r.verifies(SECRET) for r in got)
    assert attempts_in(app) == [[(500, None), (503, None), (200, None)]]
    print(f"\nfailing receiver: {len(got)} attempts (500, 503, 200), delivered")


def worker_holding(server, client_port: int) -> int:
    """Return the pid of the gunicorn worker whose socket has local port `client_port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in server.worker_pids():
        folder = f"/proc/{pid}/fd"
        for fd in os.listdir(folder):
            try:
                if os.readlink(f"{folder}/{fd}") in inodes:
                    return pid
            except FileNotFoundError:  # closed meanwhile
                continue
    raise AssertionError(f"no worker has a socket on port {client_port}")


@pytest.mark.parametrize("killed", ["worker", "server"])
def test_a_sigkill_between_commit_and_delivery_loses_nothing(app, database_url, receiver, tmp_path,
                                                             killed):
    key, [user] = seed(app, users=1, daily_limit=100)
    add_webhook(app, receiver.url())
    receiver.hang()  # the first attempt never gets an answer
    # A 2-second timeout makes a lease of 11 s (lease_seconds): when another takes it over.
    settings = {"CHATQUOTA_WEBHOOK_TIMEOUT_SECONDS": "2", "log_path": tmp_path / "gunicorn.log",
                **DELIVERING}
    server = LiveServer(database_url, workers=3, **settings).__enter__()
    try:
        assert Backend(server.url, key).consume(user, 85)[0] == 201  # committed: the alert exists
        [first] = receiver.wait_for(1)
        if killed == "worker":  # the one sending it; gunicorn starts another
            os.kill(worker_holding(server, first.client_port), signal.SIGKILL)
        else:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
            server.__exit__(None, None, None)  # only closes its log now
            server = LiveServer(database_url, workers=3, **settings).__enter__()
        receiver.release()  # answers into a closed connection: the outcome is lost
        until(lambda: [d.state for d in deliveries_in(app)] == ["delivered"], timeout=60,
              what="delivery after the SIGKILL")
    finally:
        server.__exit__(None, None, None)
    assert len(alerts_in(app)) == 1
    got = receiver.received
    assert len(got) >= 2 and len({r.headers["X-Chatquota-Event-Id"] for r in got}) == 1
    assert attempts_in(app) == [[(None, LOST), (200, None)]]
    print(f"\nSIGKILL of the {killed} during the first attempt: alert kept, "
          f"delivered on attempt {len(got)} after the lease ran out")


def test_a_hanging_receiver_does_not_hold_up_consume(app, database_url, receiver):
    key, users = seed(app, users=12, daily_limit=100)
    add_webhook(app, receiver.url())
    receiver.hang()
    with LiveServer(database_url, workers=4, CHATQUOTA_WEBHOOK_TIMEOUT_SECONDS="60",
                    **DELIVERING) as server:
        backend = Backend(server.url, key)

        def calls(users, tokens):
            def run(i):
                return [backend.consume(users[i % len(users)], tokens, enforce=False)
                        for _ in range(10)]

            with ThreadPoolExecutor(16) as pool:
                return [r for batch in pool.map(run, range(16)) for r in batch]

        before = calls(users[8:], 0)  # the same load with nothing to deliver, for comparison
        for user in users[:8]:  # eight alerts: every worker's deliverer waits on the receiver
            assert backend.consume(user, 85)[0] == 201
        receiver.wait_for(2)
        during = calls(users[:8], 2)  # eight more alerts (100 %) while the first ones hang
        hanging = [d for d in deliveries_in(app) if d.state == "pending"]
        still_hanging = receiver.hanging
        receiver.release()
        until(lambda: len(deliveries_in(app)) == 16
              and all(d.state == "delivered" for d in deliveries_in(app)), timeout=120,
              what="16 deliveries")
    assert still_hanging and hanging, "the receiver must still be hanging while consume runs"
    assert [status for status, _ in during] == [201] * 160  # all answered meanwhile
    assert len(alerts_in(app)) == 16  # 80 % and 100 % of eight users
    median = {name: statistics.median(t for _, t in calls) * 1000
              for name, calls in (("before", before), ("during", during))}
    print(f"\nreceiver hanging on {len(hanging)} deliveries: 160 consume calls from 16 clients "
          f"answered meanwhile, median {median['during']:.0f} ms (the same load with nothing "
          f"to deliver: {median['before']:.0f} ms)")
