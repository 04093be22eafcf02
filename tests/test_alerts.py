"""The alerts' outbox: which usage writes an alert, once per threshold, subject and period."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from chatquota.extensions import db
from chatquota.models import Alert, AuditEntry
from chatquota.services import alerts, limits, metering, reservations

from .test_costs import statements_of

URL = "/api/chat-quota/alert-thresholds/"


def consume(app, account, tokens, enforce=True):
    with app.app_context():
        return metering.consume(db.engine, app.config["TZ"], user_uuid=account.uuid,
                                tokens=tokens, enforce=enforce)


def written(app):
    """Return the alerts as (period, threshold, usage, limit) tuples, oldest first."""
    with app.app_context():
        rows = db.session.scalars(select(Alert).order_by(Alert.id)).all()
        return [(a.period, a.threshold, a.usage, a.effective_limit) for a in rows]


def set_limits(app, account, **changes):
    with app.app_context():
        limits.set_quota(db.session, None, account.uuid,
                         {f"{period}_limit": value for period, value in changes.items()})


@pytest.mark.parametrize("before, after, limit, found", [
    (0, 79, 100, []),
    (79, 80, 100, [80]),          # reaching a threshold crosses it
    (80, 99, 100, []),            # already past 80: only crossings count
    (0, 100, 100, [80, 100]),     # one event across two thresholds
    (99, 250, 100, [100]),
    (5, 6, 7, [80]),              # 80 % of 7 is 5.6: integer arithmetic, no rounding
    (0, 5, 7, []),
    (0, 10, 0, []),               # a limit of 0 blocks on purpose: no alert
    (0, 10, -1, []),              # unlimited: no alert
])
def test_crossed_thresholds(before, after, limit, found):
    assert alerts.crossed((80, 100), before, after, limit) == found


def test_thresholds_are_stored_as_one_integer():
    assert alerts.pack([100, 80, 80]) == 80100
    assert alerts.unpack(50080100) == (50, 80, 100)
    assert alerts.unpack(alerts.pack([1, 999, 500, 2, 3, 4])) == (1, 2, 3, 4, 500, 999)
    assert alerts.unpack(0) == ()


def test_consume_writes_one_alert_per_crossed_threshold(app, alice, fixed_clock):
    fixed_clock.set(2026, 11, 18, 12)  # a Wednesday
    set_limits(app, alice, daily=100, weekly=1000)
    consume(app, alice, 79)
    assert written(app) == []
    consume(app, alice, 1)
    assert written(app) == [("daily", 80, 80, 100)]
    consume(app, alice, 20)
    consume(app, alice, 5, enforce=False)  # past 100 %: nothing more to cross
    assert written(app) == [("daily", 80, 80, 100), ("daily", 100, 100, 100)]
    with app.app_context():
        alert = db.session.scalars(select(Alert).order_by(Alert.id)).first()
    assert (alert.subject, alert.subject_id, alert.subject_uuid) == ("user", alice.user.id,
                                                                    alice.uuid)
    assert alert.period_start == date(2026, 11, 18)
    assert alert.reset_at == datetime(2026, 11, 19, tzinfo=UTC)
    assert alert.created_at == fixed_clock.instant
    assert len(alert.uuid) == 32 and alert.dispatched_at is None


def test_one_event_crossing_several_thresholds_and_periods(app, alice, fixed_clock):
    fixed_clock.set(2026, 11, 18, 12)
    set_limits(app, alice, daily=100, weekly=120, monthly=1000)
    consume(app, alice, 100)
    assert written(app) == [("daily", 80, 100, 100), ("daily", 100, 100, 100),
                            ("weekly", 80, 100, 120)]


def test_unlimited_and_zero_limits_never_alert(app, alice, bob):
    set_limits(app, alice, daily=0)
    consume(app, alice, 50, enforce=False)
    consume(app, bob, 10**9, enforce=False)  # every period unlimited by default
    assert written(app) == []


def test_a_threshold_alerts_once_per_period(app, alice, fixed_clock):
    fixed_clock.set(2026, 11, 18, 12)
    set_limits(app, alice, daily=100)
    consume(app, alice, 85)
    set_limits(app, alice, daily=1000)  # raised, then crossed again the same day
    consume(app, alice, 800)
    assert written(app) == [("daily", 80, 85, 100)]
    fixed_clock.set(2026, 11, 19, 0, 30)  # a new day: a new period
    consume(app, alice, 800)
    assert written(app) == [("daily", 80, 85, 100), ("daily", 80, 800, 1000)]


def test_refused_consume_writes_nothing(app, limited):
    consume(app, limited, 70)
    with pytest.raises(Exception):
        consume(app, limited, 31)
    assert written(app) == []


def test_reservation_commit_writes_the_alert(app, limited):
    with app.app_context():
        tz = app.config["TZ"]
        held = reservations.reserve(db.engine, tz, user_uuid=limited.uuid, tokens=90,
                                    ttl_seconds=60)
        assert written(app) == []  # a hold is not usage
        reservations.commit(db.engine, tz, held.reservation.uuid, tokens=85)
    assert written(app) == [("daily", 80, 85, 100)]


def test_retried_consume_writes_no_second_alert(client, service, limited, app):
    body = {"user_uuid": limited.uuid, "tokens": 90, "idempotency_key": "k"}
    for status in (201, 200):
        response = client.post("/api/chat-quota/consume/", json=body, headers=service.headers)
        assert response.status_code == status
    assert written(app) == [("daily", 80, 90, 100)]


def test_nothing_crossed_costs_no_statement(app, client, service, limited, monkeypatch):
    def call(tokens, key):
        return lambda: client.post("/api/chat-quota/consume/", headers=service.headers, json={
            "user_uuid": limited.uuid, "tokens": tokens, "idempotency_key": key})

    quiet = statements_of(app, call(10, "a"), monkeypatch)
    monkeypatch.undo()  # statements_of patches Raw.execute; the next call patches it afresh
    crossing = statements_of(app, call(75, "b"), monkeypatch)
    assert not [sql for sql, _ in quiet if "alerts" in sql]
    assert len([sql for sql, _ in crossing if sql.startswith("INSERT INTO alerts")]) == 1
    assert len(crossing) == len(quiet) + 1


def test_thresholds_default_and_replace(app, client, staff, support):
    assert client.get(URL, headers=support.headers).json == {"thresholds": [80, 100]}
    response = client.put(URL, json={"thresholds": [100, 50, "90", 50]}, headers=staff.headers)
    assert response.status_code == 200
    assert response.json == {"thresholds": [50, 90, 100]}
    assert client.get(URL, headers=staff.headers).json == {"thresholds": [50, 90, 100]}
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).filter_by(action="thresholds.update")).one()
        assert (entry.actor, entry.target, entry.field) == ("staff", "system", "alert_thresholds")
        assert (entry.old_value, entry.new_value) == ("[80, 100]", "[50, 90, 100]")


def test_no_thresholds_no_alerts(app, client, staff, limited):
    assert client.put(URL, json={"thresholds": []}, headers=staff.headers).json == {
        "thresholds": []}
    consume(app, limited, 100)
    assert written(app) == []


@pytest.mark.parametrize("body, field", [
    ({"thresholds": [0]}, "thresholds"),
    ({"thresholds": [1000]}, "thresholds"),
    ({"thresholds": [80.5]}, "thresholds"),
    ({"thresholds": [1, 2, 3, 4, 5, 6, 7]}, "thresholds"),
    ({"thresholds": 80}, "thresholds"),
    ({}, "thresholds"),
    ({"thresholds": [80], "period": "daily"}, "period"),
])
def test_bad_thresholds_are_a_400_and_change_nothing(client, staff, body, field):
    response = client.put(URL, json=body, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == [field]
    assert client.get(URL, headers=staff.headers).json == {"thresholds": [80, 100]}


@pytest.mark.parametrize("who, method, status", [
    ("alice", "get", 403), ("service", "get", 403), ("support", "put", 403), ("alice", "put", 403),
])
def test_thresholds_roles(client, request, who, method, status):
    headers = request.getfixturevalue(who).headers
    response = getattr(client, method)(URL, json={"thresholds": [50]}, headers=headers)
    assert response.status_code == status


def test_thresholds_from_the_command_line(app, runner):
    result = runner.invoke(args=["set-alert-thresholds", "90", "75"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "75%, 90%" in result.stderr
    with app.app_context():
        assert alerts.get_thresholds(db.session) == (75, 90)
    assert runner.invoke(args=["set-alert-thresholds", "none"]).exit_code == 0
    with app.app_context():
        assert alerts.get_thresholds(db.session) == ()
    bad = runner.invoke(args=["set-alert-thresholds", "120%"])
    assert bad.exit_code != 0 and "thresholds" in bad.output
