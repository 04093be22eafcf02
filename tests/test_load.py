"""Load: 64 clients mixing consume, reserve/commit, reserve/release and abandoned
holds, retrying with idempotency keys, while a gunicorn worker is SIGKILLed.

Invariants are checked afterwards from the database alone: at every enforced
admission, usage + live holds + the admitted tokens stayed within the limit;
every acknowledged event exists exactly once; no 5xx; no "database is locked".
"""

import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from chatquota.extensions import db
from chatquota.models import Reservation, UsageEvent

from .live import LiveServer, seed

CLIENTS = 64
OPS_PER_CLIENT = 14
USERS = 4
LIMIT = 2500


@pytest.fixture
def seeded(app, database_url):
    key, users = seed(app, users=USERS, daily_limit=LIMIT)
    return app, database_url, key, users


class Client:
    """One chat backend thread; retries a call with the same body after a lost connection."""

    def __init__(self, base, key, users, seed, log):
        self.base, self.users, self.rng, self.log = base, users, random.Random(seed), log
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {key}"
        self.seed = seed

    def call(self, path, body):
        for _attempt in range(8):
            try:
                r = self.http.post(self.base + path, json=body, timeout=60)
            except requests.RequestException:
                self.log["lost"] += 1
                time.sleep(0.05)
                continue
            self.log["statuses"].append(r.status_code)
            return r
        raise AssertionError(f"{path} failed 8 times in a row")

    def run(self):
        for op in range(OPS_PER_CLIENT):
            user, key = self.rng.choice(self.users), f"c{self.seed}-op{op}"
            kind = self.rng.choice(["consume", "consume", "commit", "release", "abandon"])
            if kind == "consume":
                self.consume(user, key)
            else:
                self.stream(user, key, kind)

    def consume(self, user, key):
        body = {"user_uuid": user, "tokens": self.rng.randint(1, 40), "idempotency_key": key}
        r = self.call("/api/chat-quota/consume/", body)
        if r.status_code in (200, 201):
            self.log["acked"].append(r.json()["event"]["uuid"])
            if self.rng.random() < 0.3:  # a retry of an answered call
                again = self.call("/api/chat-quota/consume/", body)
                assert again.status_code == 200, again.status_code
                assert again.json()["event"]["uuid"] == r.json()["event"]["uuid"]

    def stream(self, user, key, kind):
        held = self.rng.randint(10, 80)
        ttl = 2 if kind == "abandon" else 60
        r = self.call("/api/chat-quota/reservations/",
                      {"user_uuid": user, "tokens": held, "ttl_seconds": ttl, "idempotency_key": key})
        if r.status_code not in (200, 201) or kind == "abandon":
            return
        path = f"/api/chat-quota/reservations/{r.json()['uuid']}/{kind}/"
        body = {"tokens": self.rng.randint(0, held + 10)} if kind == "commit" else {}
        done = self.call(path, body)
        if done.status_code == 200 and kind == "commit":
            self.log["acked"].append(done.json()["event"]["uuid"])
        else:  # 409 only when a lost connection hid an earlier success
            assert done.status_code in (200, 409), done.status_code


def killer(server, stop):
    """SIGKILL one worker once the load is under way; gunicorn's master replaces it."""
    time.sleep(1.0)
    if not stop.is_set():
        os.kill(server.worker_pids()[0], signal.SIGKILL)
        return True
    return False


def admissions_within_limits(app):
    """Replay every enforced admission from the stored rows; return the violations."""
    with app.app_context():
        events = db.session.scalars(db.select(UsageEvent)).all()
        holds = db.session.scalars(db.select(Reservation)).all()
    violations = []
    commits = {r.event_id for r in holds if r.event_id is not None}  # admitted as holds
    admitted = [(e.user_id, e.created_at, e.tokens) for e in events
                if e.enforced and e.id not in commits]
    admitted += [(r.user_id, r.created_at, r.tokens) for r in holds]
    for user_id, t, n in admitted:  # the test app's periods are UTC days
        used = sum(e.tokens for e in events if e.user_id == user_id and e.created_at < t
                   and e.created_at.date() == t.date())
        held = sum(r.tokens for r in holds if r.user_id == user_id and r.created_at < t
                   and r.expires_at > t and (r.ended_at is None or r.ended_at > t))
        if used + held + n > LIMIT:
            violations.append((user_id, t, used, held, n))
    return violations, len(admitted), len(events)


def test_mixed_load_with_a_killed_worker(seeded, tmp_path):
    app, url, key, users = seeded
    log = {"statuses": [], "acked": [], "lost": 0}
    gunicorn_log = tmp_path / "gunicorn.log"
    started = time.monotonic()
    with LiveServer(url, workers=4, log_path=gunicorn_log) as server:
        stop = threading.Event()
        with ThreadPoolExecutor(CLIENTS + 1) as pool:
            kill = pool.submit(killer, server, stop)
            clients = [pool.submit(Client(server.url, key, users, i, log).run) for i in range(CLIENTS)]
            for f in clients:
                f.result()
            stop.set()
        assert kill.result(), "the worker was killed after the load ended; raise OPS_PER_CLIENT"
    elapsed = time.monotonic() - started

    statuses = log["statuses"]
    assert not [s for s in statuses if s >= 500]
    assert set(statuses) <= {200, 201, 409, 429}
    with app.app_context():
        stored = db.session.scalars(db.select(UsageEvent.uuid)).all()
        sqlite = db.engine.dialect.name == "sqlite"
        integrity = db.session.execute(text("PRAGMA integrity_check")).scalar() if sqlite else "ok"
    assert len(log["acked"]) == len(set(log["acked"]))
    assert set(log["acked"]) <= set(stored)
    assert len(stored) == len(set(stored))
    violations, admissions, events = admissions_within_limits(app)
    assert violations == []
    assert statuses.count(429) > 0, "the load must reach the limits to mean anything"
    assert integrity == "ok"
    assert "database is locked" not in gunicorn_log.read_text()
    print(f"\n{len(statuses)} responses from {CLIENTS} clients on 4 workers in {elapsed:.1f}s: "
          f"{admissions} admissions, {events} events, {statuses.count(429)} refusals, "
          f"{log['lost']} connections lost to the SIGKILL and retried")
