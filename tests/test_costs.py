"""Admission and usage reads touch a bounded number of rows, whatever the history.

Every statement they run is checked with SQLite's query planner: each table is
reached through an index (SEARCH), never read whole (SCAN), and the statement
count per call is fixed.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event

from chatquota.extensions import db
from chatquota.models import Reservation, UsageDay, UsageEvent


@pytest.fixture
def history(app, alice):
    """alice with 3,000 old events, 400 day totals and 2,000 expired holds."""
    with app.app_context():
        old = datetime(2025, 1, 1, tzinfo=UTC)
        db.session.add_all(UsageEvent(uuid=f"{i:032x}", user_id=alice.user.id, tokens=1, enforced=True,
                                      day=date(2025, 1, 1), created_at=old) for i in range(3000))
        db.session.add_all(UsageDay(user_id=alice.user.id, day=date(2025, 1, 1) + timedelta(days=i),
                                    tokens=5) for i in range(400))
        db.session.add_all(Reservation(uuid=f"{i:031x}f", user_id=alice.user.id, tokens=1, state="active",
                                       created_at=old, expires_at=old + timedelta(minutes=5))
                           for i in range(2000))
        db.session.commit()
    return alice


def statements_of(app, call):
    """Run `call` and return the SQL statements (with parameters) it executed."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE")):
            seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def plan_details(app, statements):
    with app.app_context(), db.engine.connect() as conn:
        return [row[-1] for sql, params in statements if sql.lstrip().upper().startswith("SELECT")
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.mark.parametrize("path, body", [
    ("/api/chat-quota/check/", {"tokens": 5}),
    ("/api/chat-quota/consume/", {"tokens": 5, "idempotency_key": "k1"}),
    ("/api/chat-quota/reservations/", {"tokens": 5, "idempotency_key": "k2"}),
])
def test_admission_never_scans_history(app, client, service, history, path, body):
    call = lambda: client.post(path, json={"user_uuid": history.uuid, **body}, headers=service.headers)
    statements = statements_of(app, call)
    details = plan_details(app, statements)
    scans = [d for d in details if d.startswith("SCAN") and "CONSTANT ROW" not in d]
    assert scans == [], details
    assert len(statements) <= 9, [s for s, _ in statements]


def test_usage_read_is_a_fixed_number_of_indexed_statements(app, client, history):
    statements = statements_of(app, lambda: client.get("/api/chat-quota/usage/", headers=history.headers))
    details = plan_details(app, statements)
    scans = [d for d in details if d.startswith("SCAN") and "CONSTANT ROW" not in d]
    assert scans == [], details
    assert len(statements) <= 4
