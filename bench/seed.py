"""Benchmark databases: users and tokens through the services, history in bulk.

Accounts, tokens, defaults and limits are created the way an operator would
(the services behind the CLI). The crowd (thousands of users) and its long
history are written straight into `users`, `quotas`, `usage_events` and the
matching `usage_days` totals with one `INSERT ... SELECT` over a recursive
CTE each: the history is spread round-robin over the crowd and evenly over
the days before today, in chronological order. The per-user index is built
after the rows (a sort, not ten million random inserts): ten million events
take about a minute.
"""

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from chatquota import clock, create_app
from chatquota.extensions import db
from chatquota.models import User
from chatquota.services import accounts, limits

HISTORY_DAYS = 100
EVENT_TOKENS = 7
DEFAULTS = {"daily": 2_000_000, "weekly": 10_000_000, "monthly": 40_000_000}
# The crowd user whose calls are measured against each history size.
CROWD_MEASURED = "crowd-00000"

_CROWD_SQL = """
WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < :count - 1)
INSERT INTO users (uuid, username, is_active, is_staff, is_support, is_service, created_at)
SELECT printf('c%031x', n), printf('crowd-%05d', n), 1, 0, 0, 0, '2026-01-01 00:00:00.000000'
FROM seq
"""
_CROWD_QUOTAS_SQL = """
INSERT INTO quotas (user_id, daily_limit, weekly_limit, monthly_limit)
SELECT id, -1, -1, -1 FROM users WHERE username LIKE 'crowd-%'
"""
_EVENTS_SQL = """
WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < :count - 1)
INSERT INTO usage_events (uuid, user_id, tokens, input_tokens, output_tokens, model,
                          charged_tokens, enforced, created_at, idempotency_key, request_hash)
SELECT printf('%016x%016x', n, :users), :first + n % :users, :tokens, NULL, NULL, 'bench',
       :tokens, 1,
       strftime('%Y-%m-%d %H:%M:%S', :start + n * :step, 'unixepoch') || '.000000',
       NULL, NULL
FROM seq
"""
_DAYS_SQL = """
WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < :days - 1)
INSERT INTO usage_days (user_id, day, tokens)
SELECT u.id, date(:start + d.i * 86400, 'unixepoch'), :per_user_day * :tokens
FROM d CROSS JOIN (SELECT id FROM users WHERE id BETWEEN :first AND :first + :users - 1) AS u
"""


@dataclass
class Seeded:
    """Who is in a benchmark database: name -> (uuid, API key)."""

    path: str
    users: dict[str, tuple[str, str]] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return self.users[name][1]

    def uuid(self, name: str) -> str:
        return self.users[name][0]


def bench_app(url: str):
    """Return a chatquota app on the database at `url`."""
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})


def seed_accounts(url: str, path: str = "", crowd: int = 0) -> Seeded:
    """Create the schema, defaults, the benchmark users with one token each, and a crowd.

    The crowd (`crowd` users without limits, SQLite only) carries the long
    histories; its first member gets a token so that its calls can be measured.
    """
    app = bench_app(url)
    seeded = Seeded(path)
    with app.app_context():
        db.create_all()
        limits.set_defaults(db.session, None, DEFAULTS)
        for name, roles, unlimited in (
            ("service", {"is_service": True}, False),
            ("reader", {}, False),
            ("spender", {}, True),
        ):
            user = accounts.create_user(db.session, None, name, **roles)
            if unlimited:
                limits.set_quota(db.session, None, user.uuid,
                                 {f"{p}_limit": -1 for p in DEFAULTS})
            _token, key = accounts.issue_token(db.session, None, user, "bench")
            seeded.users[name] = (user.uuid, key)
        db.engine.dispose()
    if crowd:
        _add_crowd(path, crowd)
        with app.app_context():
            user = db.session.query(User).filter_by(username=CROWD_MEASURED).one()
            _token, key = accounts.issue_token(db.session, None, user, "bench")
            seeded.users[CROWD_MEASURED] = (user.uuid, key)
            db.engine.dispose()
    return seeded


def _bulk(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    # A rollback journal only copies pages that existed before, so the new
    # ones are written once instead of to the WAL and then again.
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    return conn


def _add_crowd(path: str, count: int) -> None:
    conn = _bulk(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_CROWD_SQL, {"count": count})
        conn.execute(_CROWD_QUOTAS_SQL)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def add_history(path: str, events: int, users: int, days: int = HISTORY_DAYS) -> None:
    """Store `events` past usage events of the first `users` crowd members over `days` days.

    Round-robin over the users and evenly over the days, so every user has
    the same number of events each day. The history ends at yesterday's
    midnight (UTC), so the current week and month hold some of it and the
    per-day totals must be summed to answer.
    """
    if events % (users * days):
        raise ValueError("events must be a multiple of users * days")
    today = clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = int((today - timedelta(days=days)).timestamp())
    conn = _bulk(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        first = conn.execute("SELECT id FROM users WHERE username = ?",
                             (CROWD_MEASURED,)).fetchone()[0]
        index_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = "
                                 "'ix_usage_events_user_created'").fetchone()[0]
        conn.execute("DROP INDEX ix_usage_events_user_created")
        conn.execute(_EVENTS_SQL, {"count": events, "users": users, "first": first,
                                   "tokens": EVENT_TOKENS, "start": start,
                                   "step": days * 86400 / events})
        conn.execute(index_sql)
        conn.execute(_DAYS_SQL, {"days": days, "users": users, "first": first, "start": start,
                                 "per_user_day": events // (users * days),
                                 "tokens": EVENT_TOKENS})
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


def history_total(path: str, user_uuid: str) -> tuple[int, int, int]:
    """Return (all stored events, the user's events, the user's day totals), to check a seed."""
    conn = sqlite3.connect(path)
    try:
        user_id = conn.execute("SELECT id FROM users WHERE uuid = ?", (user_uuid,)).fetchone()[0]
        everyone = conn.execute("SELECT max(id) FROM usage_events").fetchone()[0] or 0
        events = conn.execute("SELECT count(*) FROM usage_events WHERE user_id = ?",
                              (user_id,)).fetchone()[0]
        total = conn.execute("SELECT coalesce(sum(tokens), 0) FROM usage_days WHERE user_id = ?",
                             (user_id,)).fetchone()[0]
        return everyone, events, total
    finally:
        conn.close()
