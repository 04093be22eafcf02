"""GET /api/chat-quota/audit/: who changed what, newest first."""

import uuid as uuidlib

import pytest

URL = "/api/chat-quota/audit/"


@pytest.fixture
def changes(fixed_clock, client, staff, alice, bob, runner):
    """After the accounts (created at 12:00): a default, two quota changes (API
    and CLI) and a deactivation, an hour apart."""
    fixed_clock.set(2026, 11, 30, 14)
    client.put("/api/chat-quota/defaults/", json={"daily_limit": 100}, headers=staff.headers)
    fixed_clock.set(2026, 11, 30, 15)
    client.post("/api/chat-quota/set_quota/", json={"user_uuid": alice.uuid, "daily_limit": 5},
                headers=staff.headers)
    fixed_clock.set(2026, 11, 30, 16)
    assert runner.invoke(args=["set-quota", "bob", "--weekly", "-1"]).exit_code == 0
    fixed_clock.set(2026, 11, 30, 17)
    client.patch(f"/api/users/{alice.uuid}/", json={"is_active": False}, headers=staff.headers)


def test_newest_first_with_decoded_values(client, changes, staff, alice, bob):
    response = client.get(URL, query_string={"page_size": 4}, headers=staff.headers)
    assert response.status_code == 200
    assert response.json == [
        {"created_at": "2026-11-30T17:00:00+00:00", "actor": "staff", "action": "user.update",
         "target": "alice", "user_uuid": alice.uuid, "field": "is_active",
         "old_value": True, "new_value": False},
        {"created_at": "2026-11-30T16:00:00+00:00", "actor": "cli", "action": "quota.update",
         "target": "bob", "user_uuid": bob.uuid, "field": "weekly_limit",
         "old_value": None, "new_value": -1},
        {"created_at": "2026-11-30T15:00:00+00:00", "actor": "staff", "action": "quota.update",
         "target": "alice", "user_uuid": alice.uuid, "field": "daily_limit",
         "old_value": None, "new_value": 5},
        {"created_at": "2026-11-30T14:00:00+00:00", "actor": "staff", "action": "default.update",
         "target": "system", "user_uuid": None, "field": "daily_default",
         "old_value": -1, "new_value": 100},
    ]


def test_filter_by_target_user(client, changes, support, alice):
    response = client.get(URL, query_string={"user_uuid": alice.uuid}, headers=support.headers)
    assert response.status_code == 200
    assert [(e["action"], e["field"]) for e in response.json] == [
        ("user.update", "is_active"), ("quota.update", "daily_limit"),
        ("token.create", "token"), ("user.create", "user")]


def test_filter_by_action(client, changes, staff):
    response = client.get(URL, query_string={"action": "quota.update"}, headers=staff.headers)
    assert [e["target"] for e in response.json] == ["bob", "alice"]
    assert response.headers["X-Result-Count"] == "2"
    response = client.get(URL, query_string={"action": "nothing.happened"}, headers=staff.headers)
    assert response.status_code == 200 and response.json == []


def test_user_creation_records_the_new_state(client, staff, alice):
    response = client.get(URL, query_string={"user_uuid": alice.uuid, "action": "user.create"},
                          headers=staff.headers)
    (entry,) = response.json
    assert entry["actor"] == "cli" and entry["old_value"] is None
    assert entry["new_value"] == {"username": "alice", "is_active": True, "is_staff": False,
                                  "is_support": False, "is_service": False}


@pytest.mark.parametrize("who", ["alice", "service"])
def test_other_roles_are_refused(client, request, who):
    response = client.get(URL, headers=request.getfixturevalue(who).headers)
    assert response.status_code == 403


def test_anonymous_gets_401(client):
    assert client.get(URL).status_code == 401


def test_unknown_and_malformed_user_uuid(client, staff):
    response = client.get(URL, query_string={"user_uuid": uuidlib.uuid4().hex},
                          headers=staff.headers)
    assert response.status_code == 404
    response = client.get(URL, query_string={"user_uuid": "12-34"}, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"user_uuid": ["Must be a valid UUID."]}


def test_too_long_action_is_400(client, staff):
    response = client.get(URL, query_string={"action": "x" * 65}, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == ["action"]
