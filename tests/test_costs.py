"""Admission and usage reads touch a bounded number of rows, whatever the history.

Every statement they run is checked with the database's query planner: each
table is reached through an index, never read whole (SQLite: SEARCH, not SCAN;
PostgreSQL: no Seq Scan even with sequential scans discouraged), and the
statement count per call is fixed, also for a user in several groups with
long histories, many members and many expired holds.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event

from chatquota.dialect import Raw
from chatquota.extensions import db
from chatquota.models import (
    Group,
    GroupUsageDay,
    Membership,
    Quota,
    Reservation,
    ReservationGroup,
    UsageDay,
    UsageEvent,
    User,
)


@pytest.fixture
def history(app, alice):
    """alice with 3,000 old events, 400 day totals and 2,000 expired holds."""
    with app.app_context():
        old = datetime(2025, 1, 1, tzinfo=UTC)
        db.session.add_all(UsageEvent(uuid=f"{i:032x}", user_id=alice.user.id, tokens=1,
                                      charged_tokens=1, enforced=True, created_at=old)
                           for i in range(3000))
        db.session.add_all(UsageDay(user_id=alice.user.id, day=date(2025, 1, 1) + timedelta(days=i),
                                    tokens=5) for i in range(400))
        db.session.add_all(Reservation(uuid=f"{i:031x}f", user_id=alice.user.id, tokens=1, state="active",
                                       created_at=old, expires_at=old + timedelta(minutes=5))
                           for i in range(2000))
        db.session.commit()
    return alice


def statements_of(app, call, monkeypatch):
    """Run `call` and return the SQL statements (with parameters) it executed.

    Both kinds: through SQLAlchemy, and prepared statements run on the DBAPI
    connection by the hot paths (dialect.Raw).
    """
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE")):
            seen.append((statement, parameters))

    run_prepared = Raw.execute

    def record_prepared(raw, statement, params=None):
        sql = statement.postgresql if raw.is_postgresql else statement.sqlite
        seen.append((sql, params or {}))
        return run_prepared(raw, statement, params)

    monkeypatch.setattr(Raw, "execute", record_prepared)
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


@pytest.fixture
def groups_history(app, history):
    """alice (with `history`) in 3 groups of 200 members, each group with 400 day totals and
    her 2,000 expired holds counted against it."""
    with app.app_context():
        old = datetime(2025, 1, 1, tzinfo=UTC)
        others = [User(uuid=f"{i:032x}", username=f"member{i}", is_active=True, created_at=old,
                       quota=Quota()) for i in range(200)]
        teams = [Group(uuid=f"{i:031x}e", name=f"team{i}", daily_limit=10**6, created_at=old)
                 for i in range(3)]
        db.session.add_all(others + teams)
        db.session.flush()
        holds = db.session.scalars(db.select(Reservation.id)).all()
        for team in teams:
            db.session.add_all(Membership(group_id=team.id, user_id=u.id, created_at=old)
                               for u in others + [db.session.get(User, history.user.id)])
            db.session.add_all(GroupUsageDay(group_id=team.id, day=date(2025, 1, 1) +
                                             timedelta(days=i), tokens=5) for i in range(400))
            db.session.add_all(ReservationGroup(reservation_id=r, group_id=team.id, tokens=1,
                                                expires_at=old + timedelta(minutes=5))
                               for r in holds)
        db.session.commit()
    return history


def full_scans(app, statements):
    """Return the plan lines of the statements (SELECT, INSERT ... SELECT) that read a whole table."""
    selects = [(sql, params) for sql, params in statements
               if sql.lstrip().upper().startswith("SELECT")
               or (sql.lstrip().upper().startswith("INSERT") and " SELECT " in sql.upper())]
    with app.app_context(), db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # On tiny tables a sequential scan is cheapest; discourage it, so one left
            # in a plan means no index can serve the query.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            lines = [row[0] for sql, params in selects
                     for row in conn.exec_driver_sql("EXPLAIN " + sql, params)]
            return [line for line in lines if "Seq Scan" in line]
        lines = [row[-1] for sql, params in selects
                 for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
        return [line for line in lines if line.startswith("SCAN") and "CONSTANT ROW" not in line]


@pytest.mark.parametrize("path, body", [
    ("/api/chat-quota/check/", {"tokens": 5}),
    ("/api/chat-quota/consume/", {"tokens": 5, "idempotency_key": "k1"}),
    ("/api/chat-quota/reservations/", {"tokens": 5, "idempotency_key": "k2"}),
])
def test_admission_never_scans_history(app, client, service, history, path, body, monkeypatch):
    call = lambda: client.post(path, json={"user_uuid": history.uuid, **body}, headers=service.headers)
    statements = statements_of(app, call, monkeypatch)
    assert full_scans(app, statements) == []
    assert len(statements) <= 9, [s for s, _ in statements]


def test_usage_read_is_a_fixed_number_of_indexed_statements(app, client, history, monkeypatch):
    statements = statements_of(app, lambda: client.get("/api/chat-quota/usage/", headers=history.headers),
                               monkeypatch)
    assert full_scans(app, statements) == []
    assert len(statements) <= 4


@pytest.mark.parametrize("path, body", [
    ("/api/chat-quota/check/", {"tokens": 5}),
    ("/api/chat-quota/consume/", {"tokens": 5, "model": "m", "idempotency_key": "k1"}),
    ("/api/chat-quota/reservations/", {"tokens": 5, "model": "m", "idempotency_key": "k2"}),
])
def test_admission_with_groups_never_scans_history(app, client, service, groups_history, path,
                                                   body, monkeypatch):
    call = lambda: client.post(path, json={"user_uuid": groups_history.uuid, **body},
                               headers=service.headers)
    statements = statements_of(app, call, monkeypatch)
    assert full_scans(app, statements) == []
    assert len(statements) <= 11, [s for s, _ in statements]


@pytest.mark.parametrize("action", ["commit", "release"])
def test_ending_a_hold_of_a_user_in_groups_never_scans_history(app, client, service,
                                                               groups_history, action,
                                                               monkeypatch):
    held = client.post("/api/chat-quota/reservations/", headers=service.headers,
                       json={"user_uuid": groups_history.uuid, "tokens": 5, "model": "m"})
    body = {"tokens": 3} if action == "commit" else {}
    call = lambda: client.post(f"/api/chat-quota/reservations/{held.json['uuid']}/{action}/",
                               json=body, headers=service.headers)
    statements = statements_of(app, call, monkeypatch)
    assert full_scans(app, statements) == []
    assert len(statements) <= 13, [s for s, _ in statements]
