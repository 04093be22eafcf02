"""Benchmark databases: users and tokens through the services, history in bulk.

Accounts, tokens, defaults and limits are created the way an operator would
(the services behind the CLI). Long histories are written straight into
`usage_events` and the matching `usage_days` totals with one
`INSERT ... SELECT` over a recursive CTE each, in chronological order with
monotonic uuids, so every index insert is an append: ten million events take
well under two minutes.
"""

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from chatquota import clock, create_app
from chatquota.extensions import db
from chatquota.services import accounts, limits

HISTORY_DAYS = 1000
EVENT_TOKENS = 7
DEFAULTS = {"daily": 2_000_000, "weekly": 10_000_000, "monthly": 40_000_000}

_EVENTS_SQL = """
WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < :count - 1)
INSERT INTO usage_events (uuid, user_id, tokens, input_tokens, output_tokens, model,
                          enforced, day, created_at, idempotency_key, request_hash,
                          reservation_id)
SELECT printf('%08x%024x', :user_id, n), :user_id, :tokens, NULL, NULL, 'bench', 1,
       date(:start + n * :step, 'unixepoch'),
       strftime('%Y-%m-%d %H:%M:%S', :start + n * :step, 'unixepoch') || '.000000',
       NULL, NULL, NULL
FROM seq
"""

_DAYS_SQL = """
WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < :days - 1)
INSERT INTO usage_days (user_id, day, tokens)
SELECT :user_id, date(:start + i * 86400, 'unixepoch'), :per_day * :tokens FROM d
"""


@dataclass
class Seeded:
    """Who is in a benchmark database: name -> (uuid, API key)."""

    path: str
    users: dict[str, tuple[str, str]] = field(default_factory=dict)
    has_reservations: bool = False

    def key(self, name: str) -> str:
        return self.users[name][1]

    def uuid(self, name: str) -> str:
        return self.users[name][0]


def bench_app(path: str):
    """Return a chatquota app on the SQLite file `path`."""
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "bench"})


def seed_accounts(path: str) -> Seeded:
    """Create the schema, defaults and the benchmark users with one token each."""
    app = bench_app(path)
    seeded = Seeded(path)
    with app.app_context():
        db.create_all()
        limits.set_defaults(db.session, None, DEFAULTS)
        for name, roles, unlimited in (
            ("service", {"is_service": True}, False),
            ("reader", {}, False),
            ("spender", {}, True),
            ("history", {}, True),
        ):
            user = accounts.create_user(db.session, None, name, **roles)
            if unlimited:
                limits.set_quota(db.session, None, user.uuid,
                                 {f"{p}_limit": -1 for p in DEFAULTS})
            _token, key = accounts.issue_token(db.session, None, user, "bench")
            seeded.users[name] = (user.uuid, key)
        seeded.has_reservations = any(
            rule.rule == "/api/chat-quota/reservations/" for rule in app.url_map.iter_rules()
        )
        db.engine.dispose()
    return seeded


def _user_id(conn: sqlite3.Connection, user_uuid: str) -> int:
    return conn.execute("SELECT id FROM users WHERE uuid = ?", (user_uuid,)).fetchone()[0]


def add_history(path: str, user_uuid: str, events: int, days: int = HISTORY_DAYS) -> None:
    """Store `events` past usage events, spread evenly over the `days` before today.

    The history ends at yesterday's midnight, so the current week and month
    hold some of it and the per-day totals must be summed to answer.
    """
    if events % days:
        raise ValueError("events must be a multiple of days")
    per_day = events // days
    today = clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int((today - timedelta(days=days)).timestamp())
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A rollback journal only copies pages that existed before, so the
        # new ones are written once instead of to the WAL and then again.
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("BEGIN IMMEDIATE")
        user_id = _user_id(conn, user_uuid)
        conn.execute(_EVENTS_SQL, {"count": events, "user_id": user_id, "tokens": EVENT_TOKENS,
                                   "start": start, "step": 86400 / per_day})
        conn.execute(_DAYS_SQL, {"days": days, "user_id": user_id, "start": start,
                                 "per_day": per_day, "tokens": EVENT_TOKENS})
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def copy_database(source: str, target: str) -> None:
    """Copy a SQLite database consistently (the backup API, WAL included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def history_total(path: str, user_uuid: str) -> tuple[int, int]:
    """Return (stored events, sum of day totals) of a user, to check a seed."""
    conn = sqlite3.connect(path)
    try:
        user_id = _user_id(conn, user_uuid)
        events = conn.execute("SELECT count(*) FROM usage_events WHERE user_id = ?",
                              (user_id,)).fetchone()[0]
        total = conn.execute("SELECT coalesce(sum(tokens), 0) FROM usage_days WHERE user_id = ?",
                             (user_id,)).fetchone()[0]
        return events, total
    finally:
        conn.close()


