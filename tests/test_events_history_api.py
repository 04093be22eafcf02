"""GET /api/chat-quota/events/ and /api/chat-quota/history/."""

import uuid as uuidlib
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from chatquota.extensions import db
from chatquota.models import UsageDay
from chatquota.services.history import MAX_TOTAL, bound

from .dashboard_helpers import sign_in
from .usage_helpers import spend

EVENTS = "/api/chat-quota/events/"
HISTORY = "/api/chat-quota/history/"


@pytest.fixture
def usage(app, fixed_clock, alice, bob):
    """alice: 10 (Nov 28, gpt-a), 20 (Nov 29 23:00, gpt-b), 30 (Nov 30 09:00, gpt-a).

    bob: 5 today (Nov 30 09:00). Now is Nov 30 12:00 UTC.
    """
    fixed_clock.set(2026, 11, 28, 8)
    spend(app, alice.uuid, 10, "gpt-a")
    fixed_clock.set(2026, 11, 29, 23)
    spend(app, alice.uuid, 20, "gpt-b")
    fixed_clock.set(2026, 11, 30, 9)
    spend(app, alice.uuid, 30, "gpt-a")
    spend(app, bob.uuid, 5)
    fixed_clock.set(2026, 11, 30, 12)


def tokens(response) -> list[int]:
    return [e["tokens"] for e in response.json]


def test_user_sees_own_events_newest_first(client, usage, alice):
    response = client.get(EVENTS, headers=alice.headers)
    assert response.status_code == 200
    assert tokens(response) == [30, 20, 10]
    assert response.headers["X-Result-Count"] == "3"
    first = response.json[0]
    assert first["user_uuid"] == alice.uuid and first["model"] == "gpt-a"
    assert first["created_at"] == "2026-11-30T09:00:00+00:00"
    assert set(first) == {"uuid", "user_uuid", "tokens", "input_tokens", "output_tokens",
                          "model", "charged_tokens", "enforced", "idempotency_key", "created_at"}


def test_user_may_name_self_but_not_others(client, usage, alice, bob):
    assert tokens(client.get(EVENTS, query_string={"user_uuid": alice.uuid.upper()},
                             headers=alice.headers)) == [30, 20, 10]
    response = client.get(EVENTS, query_string={"user_uuid": bob.uuid}, headers=alice.headers)
    assert response.status_code == 403


@pytest.mark.parametrize("who", ["staff", "support", "service"])
def test_privileged_read_anyones_and_everybodys(client, request, usage, bob, who):
    headers = request.getfixturevalue(who).headers
    assert tokens(client.get(EVENTS, query_string={"user_uuid": bob.uuid},
                             headers=headers)) == [5]
    assert sorted(tokens(client.get(EVENTS, headers=headers))) == [5, 10, 20, 30]


def test_unknown_and_malformed_uuid(client, usage, staff):
    response = client.get(EVENTS, query_string={"user_uuid": uuidlib.uuid4().hex},
                          headers=staff.headers)
    assert response.status_code == 404
    assert response.json == {"detail": "User not found."}
    response = client.get(EVENTS, query_string={"user_uuid": "nope"}, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"user_uuid": ["Must be a valid UUID."]}


def test_anonymous_gets_401(client):
    assert client.get(EVENTS).status_code == 401
    assert client.get(HISTORY).status_code == 401


@pytest.mark.parametrize("query, expected", [
    ({"since": "2026-11-29"}, [30, 20]),
    ({"until": "2026-11-29"}, [20, 10]),
    ({"since": "2026-11-29", "until": "2026-11-29"}, [20]),
    ({"since": "2026-11-29T23:00:00Z"}, [30, 20]),
    ({"since": "2026-11-29T23:00:01+00:00"}, [30]),
    ({"until": "2026-11-30T09:00:00"}, [30, 20, 10]),
    ({"until": "2026-11-30T09:59:59+01:00"}, [20, 10]),
    ({"model": "gpt-a"}, [30, 10]),
    ({"model": "gpt-a", "since": "2026-11-29"}, [30]),
    ({"model": "nope"}, []),
    ({"since": "2026-12-01", "until": "2026-11-01"}, []),
])
def test_filters(client, usage, alice, query, expected):
    response = client.get(EVENTS, query_string=query, headers=alice.headers)
    assert response.status_code == 200
    assert tokens(response) == expected


@pytest.mark.parametrize("field, value", [
    ("since", "yesterday"), ("until", "2026-13-01"), ("since", "2026-11-31"),
    ("until", "2026-11-30T25:00"), ("since", ""),
])
def test_bad_dates_are_400_naming_the_field(client, usage, alice, field, value):
    response = client.get(EVENTS, query_string={field: value}, headers=alice.headers)
    assert response.status_code == 400
    assert response.json == {field: ["Enter a valid ISO 8601 date or date-time."]}


@pytest.mark.parametrize("field, value", [
    ("until", "9999-12-31"), ("since", "0001-01-01T00:00:00+01:00"),
    ("until", "9999-12-31T23:59:59-01:00"), ("since", "0001-01-01"),
])
def test_dates_at_the_ends_of_the_calendar_are_400(client, usage, alice, field, value):
    response = client.get(EVENTS, query_string={field: value}, headers=alice.headers)
    assert response.status_code == 400
    assert response.json == {field: ["Enter a date between 0002-01-01 and 9998-12-31."]}


def test_events_paginate(client, usage, staff):
    response = client.get(EVENTS, query_string={"page_size": 3, "page": 2}, headers=staff.headers)
    assert response.status_code == 200
    assert len(response.json) == 1
    assert response.headers["X-Result-Count"] == "4"
    assert 'page=1>; rel="prev"' in response.headers["Link"]


def test_bounds_read_dates_as_local_days():
    berlin = ZoneInfo("Europe/Berlin")
    assert bound(date(2026, 11, 30), berlin, upper=False) == datetime(2026, 11, 29, 23, tzinfo=UTC)
    assert bound(date(2026, 11, 30), berlin, upper=True) == datetime(2026, 11, 30, 23, tzinfo=UTC)
    naive = bound(datetime(2026, 7, 1, 12), berlin, upper=False)
    assert naive.astimezone(UTC) == datetime(2026, 7, 1, 10, tzinfo=UTC)
    aware = datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert bound(aware, berlin, upper=True) == aware


def test_history_own_with_zero_days(client, usage, alice):
    response = client.get(HISTORY, query_string={"days": 4}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json == {
        "user_uuid": alice.uuid, "group_uuid": None,
        "start": "2026-11-27", "end": "2026-11-30", "total": 60,
        "days": [{"date": "2026-11-27", "tokens": 0}, {"date": "2026-11-28", "tokens": 10},
                 {"date": "2026-11-29", "tokens": 20}, {"date": "2026-11-30", "tokens": 30}],
    }


def test_history_defaults_to_30_days(client, usage, alice):
    body = client.get(HISTORY, headers=alice.headers).json
    assert len(body["days"]) == 30
    assert (body["start"], body["end"], body["total"]) == ("2026-11-01", "2026-11-30", 60)


@pytest.mark.parametrize("who", ["staff", "support", "service"])
def test_history_deployment_wide_for_privileged(client, request, usage, who):
    body = client.get(HISTORY, query_string={"days": 2},
                      headers=request.getfixturevalue(who).headers).json
    assert body["user_uuid"] is None
    assert body["days"] == [{"date": "2026-11-29", "tokens": 20},
                            {"date": "2026-11-30", "tokens": 35}]


def test_history_of_another_user(client, usage, staff, alice, bob):
    body = client.get(HISTORY, query_string={"days": 1, "user_uuid": bob.uuid},
                      headers=staff.headers).json
    assert (body["user_uuid"], body["total"]) == (bob.uuid, 5)
    response = client.get(HISTORY, query_string={"user_uuid": bob.uuid}, headers=alice.headers)
    assert response.status_code == 403
    response = client.get(HISTORY, query_string={"user_uuid": uuidlib.uuid4().hex},
                          headers=staff.headers)
    assert response.status_code == 404


@pytest.mark.parametrize("days", ["0", "367", "-1", "abc", "1.5", "9" * 5000])
def test_history_bad_days_is_400(client, alice, days):
    response = client.get(HISTORY, query_string={"days": days}, headers=alice.headers)
    assert response.status_code == 400
    assert list(response.json) == ["days"]


def test_history_allows_366_days(client, usage, alice):
    body = client.get(HISTORY, query_string={"days": 366}, headers=alice.headers).json
    assert len(body["days"]) == 366 and body["start"] == "2025-11-30"


@pytest.fixture
def huge(app, fixed_clock, make_account):
    """Five users whose day totals sum past 2**63 today and to just below 2**53 two days ago.

    Written as day totals directly: no limit lets one event be that large.
    """
    users = [make_account(f"big{i}") for i in range(5)]
    with app.app_context():
        db.session.add_all(UsageDay(user_id=u.user.id, day=date(2026, 11, 30), tokens=2**62)
                           for u in users)
        db.session.add_all([UsageDay(user_id=users[0].user.id, day=date(2026, 11, 28),
                                     tokens=2**52 + 1),
                            UsageDay(user_id=users[1].user.id, day=date(2026, 11, 28),
                                     tokens=2**52 - 3)])
        db.session.commit()
    return users


def test_deployment_wide_totals_saturate_instead_of_overflowing(client, staff, huge):
    response = client.get(f"{HISTORY}?days=3", headers=staff.headers)
    assert response.status_code == 200
    assert [d["tokens"] for d in response.json["days"]] == [2**53 - 2, 0, MAX_TOTAL]
    assert response.json["total"] == MAX_TOTAL == 2**53 - 1
    own = client.get(f"{HISTORY}?days=1&user_uuid={huge[0].uuid}", headers=staff.headers)
    assert own.json["days"] == [{"date": "2026-11-30", "tokens": MAX_TOTAL}]


def test_the_dashboard_chart_saturates_too(client, staff, huge):
    sign_in(client, staff)
    page = client.get("/admin/").get_data(as_text=True)
    assert f"{MAX_TOTAL:,} tokens in 30 days" in page
