"""The deliverer in one process, round by round, against a real receiver: bodies, signatures,
retries with backoff, giving up, leases of workers that died, and what it never sends."""

import threading
from datetime import timedelta

import pytest

from chatquota import clock, create_app, deliverer
from chatquota.deliverer import Deliverer, lease_seconds
from chatquota.dialect import Raw
from chatquota.extensions import db
from chatquota.services import deliveries, groups, metering
from chatquota.services.deliveries import LOST, Outcome

from .receiver import Receiver
from .test_costs import full_scans

SECRET = "a-secret-of-24-characters"


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def rounds(app):
    """The deliverer of the test app, run one round at a time: `rounds.run_once()`."""
    running = Deliverer(app)
    yield running
    running.close()


@pytest.fixture
def hook(client, staff, receiver):
    """Add a webhook for the receiver: hook("/path", format="slack") returns its uuid."""

    def add(path="/hook", **body):
        response = client.post("/api/webhooks/", headers=staff.headers, json={
            "url": receiver.url(path), "secret": SECRET, **body})
        assert response.status_code == 201, response.json
        return response.json["uuid"]

    return add


def use(app, account, tokens):
    with app.app_context():
        metering.consume(db.engine, app.config["TZ"], user_uuid=account.uuid, tokens=tokens)


def log_of(client, staff, webhook_uuid):
    response = client.get(f"/api/webhooks/{webhook_uuid}/deliveries/?page_size=200",
                          headers=staff.headers)
    assert response.status_code == 200
    return response.json


def test_an_alert_reaches_every_subscribed_webhook_signed(app, client, staff, limited, hook,
                                                          receiver, rounds, fixed_clock):
    fixed_clock.set(2026, 11, 30, 12)
    json_hook, slack_hook = hook("/json"), hook("/slack", format="slack")
    hook("/paused", events=[])
    use(app, limited, 85)
    assert rounds.run_once() == 2
    assert rounds.run_once() == 0
    [sent] = receiver.at("/json")
    [text] = receiver.at("/slack")
    assert receiver.at("/paused") == []
    assert sent.verifies(SECRET) and text.verifies(SECRET)
    event = sent.json()
    assert event == {
        "id": event["id"], "type": "quota.threshold", "subject": "user",
        "user_uuid": limited.uuid, "period": "daily", "threshold": 80, "usage": 85,
        "limit": 100, "reset_at": "2026-12-01T00:00:00Z", "created_at": "2026-11-30T12:00:00Z"}
    assert list(event) == ["id", "type", "subject", "user_uuid", "period", "threshold", "usage",
                           "limit", "reset_at", "created_at"]
    assert text.json() == {"text": "alice reached 80% of the daily limit: 85 of 100 tokens; "
                                   "resets at 2026-12-01 00:00 UTC."}
    ids = {sent.headers["X-Chatquota-Event-Id"], text.headers["X-Chatquota-Event-Id"]}
    assert ids == {event["id"]}
    [delivery] = log_of(client, staff, json_hook)
    assert (delivery["state"], delivery["attempts"], delivery["event"]) == ("delivered", 1, event)
    assert log_of(client, staff, slack_hook)[0]["state"] == "delivered"


def test_a_failing_receiver_gets_it_after_backoff(app, client, staff, limited, hook, receiver,
                                                  rounds, fixed_clock):
    start = fixed_clock.set(2026, 11, 30, 12)
    webhook = hook()
    receiver.statuses = [500, 502]
    use(app, limited, 85)
    assert rounds.run_once() == 1
    [delivery] = log_of(client, staff, webhook)
    assert (delivery["state"], delivery["last_status_code"]) == ("pending", 500)
    assert delivery["next_attempt_at"] == (start + timedelta(seconds=10)).isoformat()
    fixed_clock.instant = start + timedelta(seconds=9)
    assert rounds.run_once() == 0
    fixed_clock.instant = start + timedelta(seconds=10)
    assert rounds.run_once() == 1  # 502; the next wait doubles
    assert log_of(client, staff, webhook)[0]["next_attempt_at"] == (
        start + timedelta(seconds=30)).isoformat()
    fixed_clock.instant = start + timedelta(seconds=30)
    assert rounds.run_once() == 1
    [delivery] = log_of(client, staff, webhook)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)
    assert [a["status_code"] for a in delivery["log"]] == [500, 502, 200]
    got = receiver.wait_for(3)
    assert len({r.headers["X-Chatquota-Event-Id"] for r in got}) == 1  # one event, three tries
    assert all(r.verifies(SECRET) for r in got)


def test_it_gives_up_after_the_retry_window(app, client, staff, limited, hook, receiver, rounds,
                                            fixed_clock):
    start = fixed_clock.set(2026, 11, 30, 12)
    webhook = hook()
    receiver.statuses = [500] * 100
    use(app, limited, 85)
    while rounds.run_once():
        delivery = log_of(client, staff, webhook)[0]
        if delivery["next_attempt_at"]:
            fixed_clock.instant = fixed_clock.instant.fromisoformat(delivery["next_attempt_at"])
    [delivery] = log_of(client, staff, webhook)
    assert delivery["state"] == "failed" and delivery["next_attempt_at"] is None
    tries = [fixed_clock.instant.fromisoformat(a["started_at"]) for a in delivery["log"]]
    gaps = [(b - a).total_seconds() for a, b in zip(tries, tries[1:])]
    assert gaps[:4] == [10, 20, 40, 80] and max(gaps) == 3600  # doubling, capped at an hour
    assert tries[-1] <= start + timedelta(hours=24) < tries[-1] + timedelta(hours=1)
    assert delivery["attempts"] == len(tries) == len(receiver.received)


def test_a_lease_of_a_dead_worker_runs_out_then_it_is_sent(app, client, staff, limited, hook,
                                                          receiver, rounds, fixed_clock):
    start = fixed_clock.set(2026, 11, 30, 12)
    webhook = hook()
    use(app, limited, 85)
    with app.app_context():  # a worker claims it and dies before sending
        [claimed] = deliveries.take_due(db.engine, start, lease_seconds(rounds.timeout), 8)
    fixed_clock.instant = claimed.lease - timedelta(seconds=1)
    assert rounds.run_once() == 0
    fixed_clock.instant = claimed.lease
    assert rounds.run_once() == 1
    [delivery] = log_of(client, staff, webhook)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    assert [(a["status_code"], a["error"]) for a in delivery["log"]] == [(None, LOST), (200, None)]


def test_only_the_holder_of_the_lease_settles_an_attempt(app, client, staff, limited, hook,
                                                         rounds, fixed_clock):
    start = fixed_clock.set(2026, 11, 30, 12)
    webhook = hook()
    use(app, limited, 85)
    lease = lease_seconds(rounds.timeout)
    with app.app_context():
        [slow] = deliveries.take_due(db.engine, start, lease, 8)
        later = start + timedelta(seconds=lease)
        [taken] = deliveries.take_due(db.engine, later, lease, 8)  # the slow one's lease ran out
        assert taken.id == slow.id and taken.lease > slow.lease
        deliveries.record(db.engine, [(slow, Outcome(start, 500, None, 9000))], rounds.retry, later)
        assert log_of(client, staff, webhook)[0]["state"] == "pending"
        deliveries.record(db.engine, [(taken, Outcome(later, 204, None, 5))], rounds.retry, later)
    [delivery] = log_of(client, staff, webhook)
    assert delivery["state"] == "delivered"
    assert [a["status_code"] for a in delivery["log"]] == [None, 204]  # the slow 500: not logged


def test_an_alert_written_before_a_webhook_existed_is_not_sent_to_it(app, limited, hook, receiver,
                                                                      rounds):
    use(app, limited, 85)
    assert rounds.run_once() == 0  # fanned out to no webhook
    hook()
    assert rounds.run_once() == 0
    use(app, limited, 15)  # 100 %: written after
    assert rounds.run_once() == 1
    assert [r.json()["threshold"] for r in receiver.received] == [100]


def test_deleting_a_webhook_drops_what_it_has_pending(app, client, staff, limited, hook, receiver,
                                                      rounds, fixed_clock):
    start = fixed_clock.set(2026, 11, 30, 12)
    webhook = hook()
    receiver.statuses = [500]
    use(app, limited, 85)
    assert rounds.run_once() == 1
    assert client.delete(f"/api/webhooks/{webhook}/", headers=staff.headers).status_code == 204
    fixed_clock.instant = start + timedelta(hours=1)
    assert rounds.run_once() == 0
    assert len(receiver.received) == 1


def test_polling_and_claiming_read_indexes(app, client, staff, limited, hook, rounds):
    for _ in range(3):
        client.post(f"/api/webhooks/{hook()}/test/", headers=staff.headers)
    use(app, limited, 85)
    rounds.run_once()
    with app.app_context(), Raw.checkout(db.engine) as raw:
        now = {"now": raw.instant(clock.now())}
        sql = (lambda p: p.postgresql) if raw.is_postgresql else (lambda p: p.sqlite)
    statements = [(sql(deliveries._ANYTHING), now), (sql(deliveries._DUE), {**now, "limit": 8})]
    # Reading all of a partial index is reading only what it holds: alerts not yet fanned out.
    scans = [line for line in full_scans(app, statements) if "ix_alerts_undispatched" not in line]
    assert scans == []


def test_the_thread_runs_only_outside_tests_and_once_per_process(database_url):
    testing = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    deliverer.start(testing)
    assert deliverer._running == {}
    switched_off = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "WEBHOOK_DELIVERY": False})
    deliverer.start(switched_off)
    assert deliverer._running == {}
    serving = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "WEBHOOK_DELIVERY": True})
    try:
        serving.test_client().get("/health/")  # the first request starts it
        thread = deliverer._running["thread"]
        assert thread.is_alive() and thread.daemon
        deliverer.start(serving)
        assert deliverer._running["thread"] is thread
        assert [t for t in threading.enumerate() if t.name == "chatquota-deliverer"] == [thread]
    finally:
        deliverer.stop()
    thread.join(5)
    assert not thread.is_alive() and deliverer._running == {}
    for app in (testing, switched_off, serving):
        with app.app_context():
            db.engine.dispose()


def test_a_group_crossing_its_threshold_is_alerted_and_named(app, client, staff, alice, bob,
                                                            hook, receiver, rounds, fixed_clock):
    fixed_clock.set(2026, 11, 30, 12)
    with app.app_context():
        team = groups.create_group(db.session, None, "physics", {"daily_limit": 200})
        for member in (alice, bob):
            groups.add_member(db.session, None, team.uuid, member.uuid)
    json_hook = hook("/json")
    hook("/slack", format="slack")
    use(app, alice, 100)
    use(app, bob, 70)  # the group at 170 of 200: past 80 %, the users unlimited
    assert rounds.run_once() == 2
    [sent], [text] = receiver.at("/json"), receiver.at("/slack")
    event = sent.json()
    assert (event["subject"], event["group_uuid"], event["threshold"], event["usage"],
            event["limit"]) == ("group", team.uuid, 80, 170, 200)
    assert "user_uuid" not in event
    assert text.json()["text"].startswith("Group physics reached 80% of the daily limit")
    assert log_of(client, staff, json_hook)[0]["event"] == event
