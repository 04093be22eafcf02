"""GET/PUT /api/chat-quota/defaults/: the three system defaults."""

import pytest

from chatquota.extensions import db
from chatquota.models import AuditEntry

URL = "/api/chat-quota/defaults/"
UNSET = {"daily_limit": -1, "weekly_limit": -1, "monthly_limit": -1}


@pytest.mark.parametrize("who", ["staff", "support"])
def test_staff_and_support_read_defaults(client, request, who):
    response = client.get(URL, headers=request.getfixturevalue(who).headers)
    assert response.status_code == 200
    assert response.json == UNSET


@pytest.mark.parametrize("who", ["alice", "service"])
def test_others_may_not_read_defaults(client, request, who):
    response = client.get(URL, headers=request.getfixturevalue(who).headers)
    assert response.status_code == 403


def test_anonymous_gets_401(client):
    assert client.get(URL).status_code == 401
    assert client.put(URL, json={"daily_limit": 5}).status_code == 401


def test_put_changes_given_fields_keeps_rest_and_audits(app, client, staff):
    response = client.put(URL, json={"daily_limit": 1000, "monthly_limit": "50000"},
                          headers=staff.headers)
    assert response.status_code == 200
    assert response.json == {"daily_limit": 1000, "weekly_limit": -1, "monthly_limit": 50000}
    assert client.get(URL, headers=staff.headers).json == response.json
    usage = client.get("/api/chat-quota/usage/", headers=staff.headers).json
    assert usage["daily_system_default"] == 1000
    with app.app_context():
        rows = db.session.query(AuditEntry).filter_by(action="default.update").all()
        assert {(r.actor, r.field, r.old_value, r.new_value) for r in rows} == {
            ("staff", "daily_default", "-1", "1000"), ("staff", "monthly_default", "-1", "50000")}


@pytest.mark.parametrize("who", ["support", "alice", "service"])
def test_only_staff_may_put(client, request, who):
    headers = request.getfixturevalue(who).headers
    response = client.put(URL, json={"daily_limit": 5}, headers=headers)
    assert response.status_code == 403
    assert client.get(URL, headers=request.getfixturevalue("staff").headers).json == UNSET


@pytest.mark.parametrize("body, field", [
    ({"daily_limit": -2}, "daily_limit"),
    ({"weekly_limit": 2**53}, "weekly_limit"),
    ({"monthly_limit": 1.5}, "monthly_limit"),
    ({"daily_limit": True}, "daily_limit"),
    ({"daily_limit": None}, "daily_limit"),
    ({"daily_limit": "lots"}, "daily_limit"),
    ({"hourly_limit": 5}, "hourly_limit"),
    ({}, "non_field_errors"),
])
def test_bad_put_is_400_and_changes_nothing(client, staff, body, field):
    response = client.put(URL, json=body, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == [field]
    assert client.get(URL, headers=staff.headers).json == UNSET


def test_put_of_maximum_and_unlimited_is_accepted(client, staff):
    body = {"daily_limit": 2**53 - 1, "weekly_limit": 0, "monthly_limit": -1}
    response = client.put(URL, json=body, headers=staff.headers)
    assert response.status_code == 200
    assert response.json == body
