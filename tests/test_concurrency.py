"""Several gunicorn workers on one database never over-admit or lose a write.

Runs on the suite's backend: a SQLite file, or PostgreSQL when
CHATQUOTA_TEST_DATABASE_URL is set.
"""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func

from chatquota.extensions import db
from chatquota.models import UsageDay, UsageEvent

from .live import LiveServer, seed

CLIENTS = 48
CALLS_PER_CLIENT = 12
LIMIT = 2000


@pytest.fixture
def seeded(app, database_url):
    """The test database with a service account and a user limited to LIMIT tokens a day."""
    key, (user_uuid,) = seed(app, users=1, daily_limit=LIMIT)
    return app, database_url, key, user_uuid


def hammer(server_url, key, user_uuid, seed):
    """One client: CALLS_PER_CLIENT consume calls; returns (status, body) pairs."""
    rng = random.Random(seed)
    results = []
    with requests.Session() as http:
        http.headers["Authorization"] = f"Token {key}"
        for _ in range(CALLS_PER_CLIENT):
            r = http.post(f"{server_url}/api/chat-quota/consume/",
                          json={"user_uuid": user_uuid, "tokens": rng.randint(1, 20)}, timeout=60)
            results.append((r.status_code, r.json()))
    return results


def test_workers_never_overshoot_and_lose_nothing(seeded, tmp_path):
    app, url, key, user_uuid = seeded
    log = tmp_path / "gunicorn.log"
    with LiveServer(url, workers=4, log_path=log) as server:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(hammer, server.url, key, user_uuid, i) for i in range(CLIENTS)]
            results = [r for f in futures for r in f.result()]

    statuses = [s for s, _ in results]
    assert len(results) == CLIENTS * CALLS_PER_CLIENT
    assert all(s in (201, 429) for s in statuses), sorted(set(statuses))
    acknowledged = {body["event"]["uuid"]: body["event"]["tokens"] for s, body in results if s == 201}
    assert statuses.count(429) > 0, "the load must reach the limit for this test to mean anything"

    with app.app_context():
        stored = dict(db.session.execute(db.select(UsageEvent.uuid, UsageEvent.tokens)).all())
        day_total = db.session.scalar(db.select(func.sum(UsageDay.tokens)))
    assert stored == acknowledged  # every 201 exactly once, nothing unacknowledged
    assert sum(stored.values()) == day_total
    assert day_total <= LIMIT
    assert "database is locked" not in log.read_text()
    print(f"\n{len(results)} calls from {CLIENTS} clients on 4 workers: "
          f"{len(acknowledged)} admitted ({day_total}/{LIMIT} tokens), {statuses.count(429)} refused")


def test_concurrent_retries_of_one_idempotency_key_record_once(seeded):
    app, url, key, user_uuid = seeded
    body = {"user_uuid": user_uuid, "tokens": 7, "idempotency_key": "retry-storm"}
    start = threading.Barrier(CLIENTS, timeout=60)

    def retry(_):
        with requests.Session() as http:
            start.wait()
            r = http.post(f"{server.url}/api/chat-quota/consume/", json=body, timeout=60,
                          headers={"Authorization": f"Token {key}"})
            return r.status_code, r.json()

    with LiveServer(url, workers=4) as server, ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(retry, range(CLIENTS)))

    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * (CLIENTS - 1) + [201]
    assert len({body["event"]["uuid"] for _, body in results}) == 1
    with app.app_context():
        assert db.session.scalar(db.select(func.count()).select_from(UsageEvent)) == 1
        assert db.session.scalar(db.select(func.sum(UsageDay.tokens))) == 7
