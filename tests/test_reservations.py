"""Reservations: every state transition, holds in admission, expiry, idempotency."""

import threading
from datetime import timedelta

import pytest

from chatquota.extensions import db
from chatquota.models import Reservation, UsageEvent
from chatquota.services import reservations

BASE = "/api/chat-quota/reservations/"


def reserve(client, caller, user, **body):
    return client.post(BASE, json={"user_uuid": user.uuid, **body}, headers=caller.headers)


def act(client, caller, uuid, action, **body):
    return client.post(f"{BASE}{uuid}/{action}/", json=body, headers=caller.headers)


def count(app, model):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_reserve_holds_tokens_for_every_admission(client, service, limited, fixed_clock):
    response = reserve(client, service, limited, tokens=60, ttl_seconds=120)
    assert response.status_code == 201
    body = response.json
    assert (body["tokens"], body["state"], body["user_uuid"]) == (60, "active", limited.uuid)
    assert body["expires_at"] == "2026-11-30T12:02:00+00:00"
    check = client.post("/api/chat-quota/check/", json={"tokens": 40}, headers=limited.headers)
    assert check.status_code == 200 and check.json["held"] == 60
    assert client.post("/api/chat-quota/check/", json={"tokens": 41},
                       headers=limited.headers).status_code == 429
    consume = client.post("/api/chat-quota/consume/", json={"user_uuid": limited.uuid, "tokens": 41},
                          headers=service.headers)
    assert consume.status_code == 429 and consume.json["remaining"] == 40
    assert reserve(client, service, limited, tokens=41).status_code == 429
    assert reserve(client, service, limited, tokens=40).status_code == 201


def test_commit_records_actual_usage_and_ends_the_hold(app, client, service, limited):
    uuid = reserve(client, service, limited, tokens=60).json["uuid"]
    response = act(client, service, uuid, "commit", input_tokens=10, output_tokens=15)
    assert response.status_code == 200
    assert response.json["reservation"]["state"] == "committed"
    assert response.json["event"]["tokens"] == 25
    assert response.json["usage"]["daily_usage"] == 25
    assert response.json["usage"]["daily_remaining"] == 75
    check = client.post("/api/chat-quota/check/", json={"tokens": 75}, headers=limited.headers)
    assert check.status_code == 200 and check.json["held"] == 0


def test_commit_may_exceed_the_hold(client, service, limited):
    uuid = reserve(client, service, limited, tokens=10).json["uuid"]
    response = act(client, service, uuid, "commit", tokens=150)
    assert response.status_code == 200
    assert response.json["usage"]["daily_usage"] == 150
    assert response.json["usage"]["daily_remaining"] == 0


def test_release_records_nothing(app, client, service, limited):
    uuid = reserve(client, service, limited, tokens=100).json["uuid"]
    response = act(client, service, uuid, "release")
    assert (response.status_code, response.json["state"]) == (200, "released")
    assert count(app, UsageEvent) == 0
    assert reserve(client, service, limited, tokens=100).status_code == 201


def test_empty_release_body_is_fine(client, service, limited):
    uuid = reserve(client, service, limited, tokens=1).json["uuid"]
    response = client.post(f"{BASE}{uuid}/release/", headers=service.headers)
    assert response.status_code == 200


@pytest.mark.parametrize("first, second", [("commit", "commit"), ("commit", "release"),
                                           ("release", "release"), ("release", "commit")])
def test_a_second_end_is_409(app, client, service, limited, first, second):
    uuid = reserve(client, service, limited, tokens=5).json["uuid"]
    body = {"tokens": 5} if first == "commit" else {}
    assert act(client, service, uuid, first, **body).status_code == 200
    body = {"tokens": 6} if second == "commit" else {}  # a repeat of the same commit is a 200
    response = act(client, service, uuid, second, **body)
    assert response.status_code == 409
    state = "committed" if first == "commit" else "released"
    assert response.json == {"detail": f"Reservation is already {state}."}
    assert count(app, UsageEvent) == (1 if first == "commit" else 0)


def test_a_repeated_commit_returns_the_first_result_and_counts_once(app, client, service, limited):
    uuid = reserve(client, service, limited, tokens=50).json["uuid"]
    first = act(client, service, uuid, "commit", input_tokens=10, output_tokens=20)
    again = act(client, service, uuid, "commit", input_tokens=10, output_tokens=20)
    assert first.status_code == again.status_code == 200
    assert again.json["event"] == first.json["event"]
    assert again.json["reservation"]["state"] == "committed"
    assert again.json["usage"]["daily_usage"] == 30
    assert count(app, UsageEvent) == 1
    other = act(client, service, uuid, "commit", input_tokens=10, output_tokens=21)
    assert other.status_code == 409
    assert other.json == {"detail": "Reservation is already committed."}


def test_expired_hold_stops_counting_and_can_still_be_committed(client, service, limited, fixed_clock):
    uuid = reserve(client, service, limited, tokens=100, ttl_seconds=60).json["uuid"]
    assert reserve(client, service, limited, tokens=1).status_code == 429
    fixed_clock.set(2026, 11, 30, 12, 1, 0)
    got = client.get(f"{BASE}{uuid}/", headers=service.headers)
    assert got.json["state"] == "expired"
    assert client.post("/api/chat-quota/check/", json={"tokens": 100},
                       headers=limited.headers).json["held"] == 0
    response = act(client, service, uuid, "commit", tokens=30)
    assert response.status_code == 200 and response.json["usage"]["daily_usage"] == 30


def test_expired_hold_can_be_released(client, service, limited, fixed_clock):
    uuid = reserve(client, service, limited, tokens=10, ttl_seconds=1).json["uuid"]
    fixed_clock.set(2026, 11, 30, 12, 0, 2)
    assert act(client, service, uuid, "release").json["state"] == "released"


def test_idempotent_reserve(app, client, service, limited):
    first = reserve(client, service, limited, tokens=10, idempotency_key="stream-1")
    again = reserve(client, service, limited, tokens=10, idempotency_key="stream-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["uuid"] == first.json["uuid"]
    other = reserve(client, service, limited, tokens=11, idempotency_key="stream-1")
    assert other.status_code == 409
    assert count(app, Reservation) == 1


def test_same_key_from_two_threads_records_once(app, service, limited):
    barrier = threading.Barrier(2)
    results = []

    def call(path, body):
        with app.test_client() as c:
            barrier.wait()
            results.append(c.post(path, json=body, headers=service.headers).status_code)

    for path, body in [("/api/chat-quota/consume/", {"user_uuid": limited.uuid, "tokens": 3,
                                                     "idempotency_key": "twin"}),
                       (BASE, {"user_uuid": limited.uuid, "tokens": 3, "idempotency_key": "twin"})]:
        results.clear()
        threads = [threading.Thread(target=call, args=(path, body)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200, 201]
    assert count(app, UsageEvent) == 1 and count(app, Reservation) == 1


def test_not_found_and_malformed_uuid(client, service):
    unknown, bodies = "0" * 32, {"commit": {"tokens": 1}, "release": {}}
    assert client.get(f"{BASE}{unknown}/", headers=service.headers).status_code == 404
    for action, body in bodies.items():
        response = act(client, service, unknown, action, **body)
        assert (response.status_code, response.json) == (404, {"detail": "Reservation not found."})
    malformed = {"reservation_uuid": ["Must be a valid UUID."]}
    response = client.get(f"{BASE}not-a-uuid/", headers=service.headers)
    assert (response.status_code, response.json) == (400, malformed)
    for action, body in bodies.items():
        response = act(client, service, "not-a-uuid", action, **body)
        assert (response.status_code, response.json) == (400, malformed)


def test_permissions(client, service, support, limited, bob):
    assert reserve(client, limited, limited, tokens=1).status_code == 403
    assert reserve(client, support, limited, tokens=1).status_code == 403
    uuid = reserve(client, service, limited, tokens=1).json["uuid"]
    assert client.get(f"{BASE}{uuid}/", headers=limited.headers).status_code == 200
    assert client.get(f"{BASE}{uuid}/", headers=bob.headers).status_code == 404
    assert act(client, limited, uuid, "commit", tokens=1).status_code == 403
    assert act(client, limited, uuid, "release").status_code == 403


@pytest.mark.parametrize("body, field", [
    ({"tokens": -1}, "tokens"), ({}, "tokens"), ({"tokens": 1, "ttl_seconds": 0}, "ttl_seconds"),
    ({"tokens": 1, "ttl_seconds": 86401}, "ttl_seconds"), ({"tokens": 1, "ttl_seconds": 1.5}, "ttl_seconds"),
    ({"tokens": 1, "state": "active"}, "state"),
])
def test_reserve_validation(app, client, service, limited, body, field):
    response = reserve(client, service, limited, **body)
    assert response.status_code == 400 and list(response.json) == [field]
    assert count(app, Reservation) == 0


def test_commit_validation_changes_nothing(app, client, service, limited):
    uuid = reserve(client, service, limited, tokens=5).json["uuid"]
    for body in ({}, {"tokens": -3}, {"tokens": 3, "input_tokens": 1, "output_tokens": 1}):
        assert act(client, service, uuid, "commit", **body).status_code == 400
    assert act(client, service, uuid, "release", tokens=3).status_code == 400
    assert client.get(f"{BASE}{uuid}/", headers=service.headers).json["state"] == "active"


def test_purge_keeps_recent_and_live_holds(app, session, client, service, limited, fixed_clock):
    old = reserve(client, service, limited, tokens=1, ttl_seconds=60).json["uuid"]
    done = reserve(client, service, limited, tokens=1).json["uuid"]
    act(client, service, done, "commit", tokens=1)
    fixed_clock.set(2026, 12, 2, 12)
    live = reserve(client, service, limited, tokens=1, ttl_seconds=600).json["uuid"]
    recent = reserve(client, service, limited, tokens=1, ttl_seconds=1).json["uuid"]
    fixed_clock.set(2026, 12, 2, 12, 5)
    assert reservations.purge(session, timedelta(hours=24)) == 2
    left = set(session.scalars(db.select(Reservation.uuid)))
    assert left == {live, recent} and old not in left
    assert count(app, UsageEvent) == 1  # the committed usage stays


def test_purge_command(runner, client, service, limited):
    reserve(client, service, limited, tokens=1, ttl_seconds=1)
    result = runner.invoke(args=["purge-reservations", "--older-than-hours", "0"])
    assert result.exit_code == 0 and "Deleted" in result.stderr
