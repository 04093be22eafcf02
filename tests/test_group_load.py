"""Groups under load: 64 clients acting as 8 members of one group on 4 gunicorn workers.

Runs on the suite's backend (a SQLite file, or PostgreSQL when
CHATQUOTA_TEST_DATABASE_URL is set). The members share the group "physics"
(a daily limit); four of them also share "lab" (a tighter one), and each has
a limit of their own, one much tighter. Clients mix weighted consumes,
reserve/commit (never more than held) and reserve/release. Afterwards, from
the database alone: no group and no user past a limit, every acknowledged
event stored once and counted once in its user's and in every group's
totals at its charge, no hold left counting, nothing locked, no 5xx.
"""

import random
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from sqlalchemy import create_engine, func, select, text

from chatquota.extensions import db
from chatquota.models import GroupUsageDay, ReservationGroup, UsageDay, UsageEvent, User
from chatquota.services import accounts, groups, limits, weights
from chatquota.services.weights import Weights, charge

from .live import LiveServer

CLIENTS = 64
OPS_PER_CLIENT = 12
MEMBERS = 8
GROUP_LIMIT = 2000  # physics: all 8 members
LAB_LIMIT = 800  # lab: members 0-3
USER_LIMIT = 600
TIGHT_USER_LIMIT = 150  # member 7
BIG = Weights(Decimal("0.5"), Decimal(2))  # the weights of the model "big"


@pytest.fixture
def seeded(app, database_url):
    """A service account, the 8 members with their limits, the two groups and a weighted model."""
    with app.app_context():
        s = db.session
        service = accounts.create_user(s, None, "backend", is_service=True)
        _token, key = accounts.issue_token(s, None, service)
        physics = groups.create_group(s, None, "physics", {"daily_limit": GROUP_LIMIT}).uuid
        lab = groups.create_group(s, None, "lab", {"daily_limit": LAB_LIMIT}).uuid
        members = []
        for i in range(MEMBERS):
            user = accounts.create_user(s, None, f"member{i}")
            limit = TIGHT_USER_LIMIT if i == MEMBERS - 1 else USER_LIMIT
            limits.set_quota(s, None, user.uuid, {"daily_limit": limit})
            groups.add_member(s, None, physics, user.uuid)
            if i < 4:
                groups.add_member(s, None, lab, user.uuid)
            members.append(user.uuid)
        weights.set_weights(s, None, "big", BIG.input, BIG.output)
    return app, database_url, key, members, {"physics": physics, "lab": lab}


class Client:
    """One chat backend thread acting for random members."""

    def __init__(self, base, key, members, seed, log):
        self.base, self.members, self.rng, self.log = base, members, random.Random(seed), log
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {key}"

    def post(self, path, body):
        response = self.http.post(self.base + path, json=body, timeout=120)
        self.log["statuses"].append(response.status_code)
        if response.status_code == 429:
            self.log["refusals"].append(response.json().get("group_uuid") or "user")
        return response

    def run(self):
        for _ in range(OPS_PER_CLIENT):
            user = self.rng.choice(self.members)
            kind = self.rng.choice(["consume", "consume", "commit", "release"])
            if kind == "consume":
                self.consume(user)
            else:
                self.stream(user, kind)

    def consume(self, user):
        body = {"user_uuid": user, "model": "big", "input_tokens": self.rng.randint(0, 30),
                "output_tokens": self.rng.randint(0, 15)}
        if self.rng.random() < 0.3:  # no split: charged at the higher weight
            body["tokens"] = body.pop("input_tokens") + body.pop("output_tokens")
        response = self.post("/api/chat-quota/consume/", body)
        if response.status_code == 201:
            self.log["acked"][response.json()["event"]["uuid"]] = body

    def stream(self, user, kind):
        held = self.rng.randint(10, 60)
        response = self.post("/api/chat-quota/reservations/",
                             {"user_uuid": user, "tokens": held, "ttl_seconds": 300})
        if response.status_code != 201:
            return
        path = f"/api/chat-quota/reservations/{response.json()['uuid']}/{kind}/"
        body = {"tokens": self.rng.randint(0, held)} if kind == "commit" else {}
        done = self.post(path, body)
        assert done.status_code == 200, (done.status_code, done.text)
        if kind == "commit":
            self.log["acked"][done.json()["event"]["uuid"]] = body


def nothing_locked(app) -> bool:
    """Tell whether a new writer gets every lock the ledger takes, at once."""
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT user_id FROM quotas FOR UPDATE NOWAIT")).all()
            conn.execute(text("SELECT id FROM groups FOR UPDATE NOWAIT")).all()
            idle = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'")).scalar()
        return idle == 0
    finally:
        engine.dispose()


def test_members_of_a_group_on_four_workers_never_overshoot(seeded, tmp_path):
    app, url, key, members, group_uuids = seeded
    log = {"statuses": [], "acked": {}, "refusals": []}
    gunicorn_log = tmp_path / "gunicorn.log"
    started = time.monotonic()
    with LiveServer(url, workers=4, log_path=gunicorn_log) as server:
        with ThreadPoolExecutor(CLIENTS) as pool:
            for future in [pool.submit(Client(server.url, key, members, i, log).run)
                           for i in range(CLIENTS)]:
                future.result()
        unlocked = nothing_locked(app)  # while every worker still holds its connections
    elapsed = time.monotonic() - started

    statuses = log["statuses"]
    assert not [s for s in statuses if s >= 500]
    assert set(statuses) <= {200, 201, 429}
    assert unlocked
    assert "database is locked" not in gunicorn_log.read_text()
    with app.app_context():
        s = db.session
        events = {e.uuid: e for e in s.scalars(select(UsageEvent))}
        user_days = dict(s.execute(select(User.uuid, UsageDay.tokens)
                                   .join(UsageDay, UsageDay.user_id == User.id)).all())
        group_days = dict(s.execute(select(GroupUsageDay.group_id, GroupUsageDay.tokens)).all())
        group_ids = {name: groups.get_group(s, uuid).id for name, uuid in group_uuids.items()}
        live_group_holds = s.scalar(select(func.count()).select_from(ReservationGroup))
        owners = dict(s.execute(select(User.id, User.uuid)).all())

    # Every acknowledged event stored once, nothing unacknowledged, each charged by the weights.
    assert set(events) == set(log["acked"])
    for uuid, body in log["acked"].items():
        event = events[uuid]
        expected = charge(BIG, event.tokens, body.get("input_tokens"), body.get("output_tokens")) \
            if "model" in body else event.tokens
        assert event.charged_tokens == expected, (uuid, body)
    # ... and counted once in its user's total and in every group's.
    charged = {uuid: 0 for uuid in members}
    for event in events.values():
        charged[owners[event.user_id]] += event.charged_tokens
    assert {u: user_days.get(u, 0) for u in members} == charged
    assert group_days[group_ids["physics"]] == sum(charged.values())
    assert group_days[group_ids["lab"]] == sum(charged[u] for u in members[:4])
    # No limit passed.
    assert group_days[group_ids["physics"]] <= GROUP_LIMIT
    assert group_days[group_ids["lab"]] <= LAB_LIMIT
    assert all(charged[u] <= USER_LIMIT for u in members)
    assert charged[members[-1]] <= TIGHT_USER_LIMIT
    assert live_group_holds == 0  # every hold ended, none still counts against a group
    # The load reached every kind of limit.
    refusals = log["refusals"]
    assert refusals.count(group_uuids["physics"]) > 0 and refusals.count(group_uuids["lab"]) > 0
    assert refusals.count("user") > 0
    print(f"\n{len(statuses)} responses from {CLIENTS} clients as {MEMBERS} members on 4 "
          f"workers in {elapsed:.1f}s: {len(events)} events; physics "
          f"{group_days[group_ids['physics']]}/{GROUP_LIMIT}, lab "
          f"{group_days[group_ids['lab']]}/{LAB_LIMIT}; members "
          f"{sorted(charged.values())}; {statuses.count(429)} refusals "
          f"(physics {refusals.count(group_uuids['physics'])}, lab "
          f"{refusals.count(group_uuids['lab'])}, own limit {refusals.count('user')})")
