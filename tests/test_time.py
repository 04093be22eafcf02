"""Usage is always current: periods reset on calendar boundaries (clock replaced)."""

from zoneinfo import ZoneInfo

import pytest

from chatquota import create_app
from chatquota.extensions import connection, db
from chatquota.services import accounts, metering
from chatquota.services.usage import quota_report


def usage_at(client, caller):
    body = client.get("/api/chat-quota/usage/", headers=caller.headers).json
    return body["daily_usage"], body["weekly_usage"], body["monthly_usage"]


def spend(client, service, account, tokens):
    response = client.post("/api/chat-quota/consume/", json={"user_uuid": account.uuid, "tokens": tokens},
                           headers=service.headers)
    assert response.status_code == 201


def test_yesterday_never_shows_in_today(client, service, alice, fixed_clock):
    fixed_clock.set(2026, 11, 25, 23, 59, 59)  # Wednesday
    spend(client, service, alice, 40)
    assert usage_at(client, alice) == (40, 40, 40)
    fixed_clock.set(2026, 11, 26, 0, 0, 0)  # nothing written since midnight
    assert usage_at(client, alice) == (0, 40, 40)


def test_week_boundary_resets_daily_and_weekly_only(client, service, alice, fixed_clock):
    fixed_clock.set(2026, 11, 15, 20)  # Sunday
    spend(client, service, alice, 10)
    fixed_clock.set(2026, 11, 16, 8)  # Monday
    assert usage_at(client, alice) == (0, 0, 10)


def test_month_boundary_resets_month_but_not_the_running_week(client, service, alice, fixed_clock):
    fixed_clock.set(2026, 9, 29, 12)  # Tuesday
    spend(client, service, alice, 10)
    fixed_clock.set(2026, 10, 1, 12)  # Thursday, same week
    assert usage_at(client, alice) == (0, 10, 0)
    spend(client, service, alice, 5)
    assert usage_at(client, alice) == (5, 15, 5)


def test_admission_uses_the_current_day_only(client, staff, service, alice, fixed_clock):
    client.post("/api/chat-quota/set_quota/", json={"user_uuid": alice.uuid, "daily_limit": 50},
                headers=staff.headers)
    fixed_clock.set(2026, 11, 24, 18)
    spend(client, service, alice, 50)
    refused = client.post("/api/chat-quota/consume/", json={"user_uuid": alice.uuid, "tokens": 1},
                          headers=service.headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(6 * 3600)
    fixed_clock.set(2026, 11, 25, 0, 0, 1)
    spend(client, service, alice, 50)


@pytest.mark.parametrize("zone, local_midnight_utc_hour", [("Europe/Berlin", 23), ("America/New_York", 5)])
def test_days_follow_the_configured_time_zone(tmp_path, fixed_clock, zone, local_midnight_utc_hour):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/tz.db",
                      "TIMEZONE": zone, "SECRET_KEY": "x"})
    tz = ZoneInfo(zone)
    with app.app_context():
        db.create_all()
        user = accounts.create_user(db.session, None, "carol")
        fixed_clock.set(2026, 11, 30, local_midnight_utc_hour - 1, 59)
        metering.consume(db.engine, tz, user_uuid=user.uuid, tokens=7)
        assert quota_report(connection(), user, tz).periods[0].usage == 7
        fixed_clock.set(2026, 11, 30, local_midnight_utc_hour, 0)
        report = quota_report(connection(), user, tz)
        assert report.periods[0].usage == 0
        assert report.fields()["daily_reset_at"].endswith(":00") and "Z" not in report.fields()["daily_reset_at"]
        db.engine.dispose()
