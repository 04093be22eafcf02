"""The groups API: groups and members, group usage and limits, group defaults, filters."""

import uuid as uuidlib

import pytest

from chatquota.extensions import db
from chatquota.models import AuditEntry, Group, Membership

from .usage_helpers import spend

GROUPS = "/api/groups/"
USAGE = "/api/chat-quota/group-usage/"
SET_QUOTA = "/api/chat-quota/set_group_quota/"
DEFAULTS = "/api/chat-quota/group-defaults/"


def audit_actions(app) -> list[tuple[str, str, str, str, object, object]]:
    with app.app_context():
        return [(e.actor, e.action, e.target, e.field, e.old_value, e.new_value)
                for e in db.session.query(AuditEntry).order_by(AuditEntry.id)
                if e.action.startswith(("group", "membership"))]


def count(app, model) -> int:
    with app.app_context():
        return db.session.query(model).count()


@pytest.fixture
def physics(client, staff, alice):
    """Group 'physics' (daily limit 100) with alice as its member; returns its uuid."""
    response = client.post(GROUPS, json={"name": "physics", "daily_limit": 100},
                           headers=staff.headers)
    assert response.status_code == 201
    uuid = response.json["uuid"]
    assert client.post(f"{GROUPS}{uuid}/members/", json={"user_uuid": alice.uuid},
                       headers=staff.headers).status_code == 201
    return uuid


def test_staff_create_a_group(app, client, staff, fixed_clock):
    response = client.post(GROUPS, json={"name": "  physics ", "weekly_limit": "500"},
                           headers=staff.headers)
    assert response.status_code == 201
    body = response.json
    assert body == {"uuid": body["uuid"], "name": "physics", "daily_limit": None,
                    "weekly_limit": 500, "monthly_limit": None, "member_count": 0,
                    "created_at": "2026-11-30T12:00:00+00:00"}
    assert len(body["uuid"]) == 32
    assert audit_actions(app) == [("staff", "group.create", "physics", "group", "null",
                                   '{"name": "physics", "daily_limit": null, '
                                   '"weekly_limit": 500, "monthly_limit": null}')]


@pytest.mark.parametrize("body, errors", [
    ({}, {"name": ["Missing data for required field."]}),
    ({"name": "   "}, {"name": ["Length must be between 1 and 150."]}),
    ({"name": "x" * 151}, {"name": ["Length must be between 1 and 150."]}),
    ({"name": "x", "daily_limit": -2}, {"daily_limit": [
        "Must be greater than or equal to -1 and less than or equal to 9007199254740991."]}),
    ({"name": "x", "weekly_limit": 1.5}, {"weekly_limit": ["A valid integer is required."]}),
    ({"name": "x", "members": []}, {"members": ["Unknown field."]}),
])
def test_invalid_groups_are_a_400_naming_the_field(app, client, staff, body, errors):
    response = client.post(GROUPS, json=body, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == errors
    assert count(app, Group) == 0


def test_a_taken_name_is_a_400_and_writes_nothing(app, client, staff, physics):
    before = audit_actions(app)
    response = client.post(GROUPS, json={"name": "physics"}, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"name": ["A group with this name already exists."]}
    assert count(app, Group) == 1 and audit_actions(app) == before


@pytest.mark.parametrize("who", ["support", "service", "alice"])
def test_only_staff_manage_groups(client, request, physics, bob, who):
    headers = request.getfixturevalue(who).headers
    assert client.post(GROUPS, json={"name": "x"}, headers=headers).status_code == 403
    assert client.patch(f"{GROUPS}{physics}/", json={"name": "x"},
                        headers=headers).status_code == 403
    assert client.post(f"{GROUPS}{physics}/members/", json={"user_uuid": bob.uuid},
                       headers=headers).status_code == 403
    assert client.delete(f"{GROUPS}{physics}/members/{bob.uuid}/",
                         headers=headers).status_code == 403


def test_staff_support_and_service_list_every_group_members_their_own(
        client, staff, support, service, alice, bob, physics):
    client.post(GROUPS, json={"name": "Chemistry"}, headers=staff.headers)
    for reader in (staff, support, service):
        response = client.get(GROUPS, headers=reader.headers)
        assert [g["name"] for g in response.json] == ["Chemistry", "physics"]
        assert response.headers["X-Result-Count"] == "2"
    assert [g["name"] for g in client.get(GROUPS, headers=alice.headers).json] == ["physics"]
    assert client.get(GROUPS, headers=bob.headers).json == []
    found = client.get(GROUPS, query_string={"search": "CHEM"}, headers=staff.headers).json
    assert [g["name"] for g in found] == ["Chemistry"]
    page = client.get(GROUPS, query_string={"page_size": 1, "page": 2}, headers=staff.headers)
    assert [g["name"] for g in page.json] == ["physics"] and 'rel="prev"' in page.headers["Link"]


def test_a_group_is_read_by_privileged_roles_and_its_members(client, support, alice, bob,
                                                             physics):
    for reader in (support, alice):
        response = client.get(f"{GROUPS}{physics}/", headers=reader.headers)
        assert response.status_code == 200
        assert (response.json["name"], response.json["member_count"]) == ("physics", 1)
    assert client.get(f"{GROUPS}{physics}/", headers=bob.headers).status_code == 403
    # Not a member: 403 whether or not the group exists.
    assert client.get(f"{GROUPS}{uuidlib.uuid4().hex}/", headers=bob.headers).status_code == 403
    assert client.get(f"{GROUPS}{uuidlib.uuid4().hex}/", headers=support.headers).status_code == 404
    response = client.get(f"{GROUPS}nope/", headers=support.headers)
    assert response.status_code == 400
    assert response.json == {"group_uuid": ["Must be a valid UUID."]}


def test_staff_rename_a_group(app, client, staff, physics):
    response = client.patch(f"{GROUPS}{physics.upper()}/", json={"name": "Physics 2"},
                            headers=staff.headers)
    assert response.status_code == 200 and response.json["name"] == "Physics 2"
    client.post(GROUPS, json={"name": "chemistry"}, headers=staff.headers)
    response = client.patch(f"{GROUPS}{physics}/", json={"name": "chemistry"},
                            headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"name": ["A group with this name already exists."]}
    assert client.patch(f"{GROUPS}{uuidlib.uuid4().hex}/", json={"name": "x"},
                        headers=staff.headers).status_code == 404
    assert ("staff", "group.update", "physics", "name", '"physics"', '"Physics 2"') in \
        audit_actions(app)


def test_members_are_added_listed_and_removed(app, client, staff, support, alice, bob, physics,
                                              fixed_clock):
    response = client.post(f"{GROUPS}{physics}/members/", json={"user_uuid": bob.uuid.upper()},
                           headers=staff.headers)
    assert response.status_code == 201
    assert response.json == {"user_uuid": bob.uuid, "username": "bob", "is_active": True,
                             "joined_at": "2026-11-30T12:00:00+00:00"}
    listed = client.get(f"{GROUPS}{physics}/members/", headers=support.headers)
    assert [m["username"] for m in listed.json] == ["alice", "bob"]
    assert listed.headers["X-Result-Count"] == "2"
    response = client.delete(f"{GROUPS}{physics}/members/{bob.uuid}/", headers=staff.headers)
    assert response.status_code == 204 and response.data == b""
    assert [m["username"] for m in client.get(f"{GROUPS}{physics}/members/",
                                              headers=staff.headers).json] == ["alice"]
    assert audit_actions(app)[-2:] == [
        ("staff", "membership.create", "physics", "member", "null", '"bob"'),
        ("staff", "membership.delete", "physics", "member", '"bob"', "null")]


def test_member_errors_are_precise_and_write_nothing(app, client, staff, alice, bob, physics):
    before = (count(app, Membership), audit_actions(app))
    members = f"{GROUPS}{physics}/members/"
    cases = [
        (client.post(members, json={"user_uuid": alice.uuid}, headers=staff.headers), 409,
         {"detail": "This user is already a member of this group."}),
        (client.post(members, json={"user_uuid": uuidlib.uuid4().hex}, headers=staff.headers),
         404, {"detail": "User not found."}),
        (client.post(f"{GROUPS}{uuidlib.uuid4().hex}/members/", json={"user_uuid": bob.uuid},
                     headers=staff.headers), 404, {"detail": "Group not found."}),
        (client.post(members, json={}, headers=staff.headers), 400,
         {"user_uuid": ["Missing data for required field."]}),
        (client.delete(f"{members}{bob.uuid}/", headers=staff.headers), 404,
         {"detail": "This user is not a member of this group."}),
        (client.delete(f"{members}bad/", headers=staff.headers), 400,
         {"user_uuid": ["Must be a valid UUID."]}),
        (client.get(members, headers=alice.headers), 403,
         {"detail": "You do not have permission to perform this action."}),
    ]
    for response, status, body in cases:
        assert (response.status_code, response.json) == (status, body)
    assert (count(app, Membership), audit_actions(app)) == before


def test_group_usage_is_the_15_fields_for_members_and_privileged_roles(
        app, client, support, service, alice, bob, physics, fixed_clock):
    spend(app, alice.uuid, 30)
    spend(app, bob.uuid, 7)
    for reader in (alice, support, service):
        response = client.get(USAGE, query_string={"group_uuid": physics},
                              headers=reader.headers)
        assert response.status_code == 200
        body = response.json
        assert len(body) == 15
        assert (body["daily_limit"], body["daily_usage"], body["daily_remaining"],
                body["daily_system_default"], body["daily_reset_at"]) == (
            100, 30, 70, -1, "2026-12-01T00:00:00Z")
        assert (body["monthly_limit"], body["monthly_remaining"]) == (None, None)


def test_group_usage_errors(client, staff, bob, physics):
    assert client.get(USAGE, query_string={"group_uuid": physics},
                      headers=bob.headers).status_code == 403
    assert client.get(USAGE, query_string={"group_uuid": uuidlib.uuid4().hex},
                      headers=bob.headers).status_code == 403
    response = client.get(USAGE, query_string={"group_uuid": uuidlib.uuid4().hex},
                          headers=staff.headers)
    assert (response.status_code, response.json) == (404, {"detail": "Group not found."})
    response = client.get(USAGE, headers=staff.headers)
    assert (response.status_code, response.json) == (
        400, {"group_uuid": ["Missing data for required field."]})
    assert client.get(USAGE, query_string={"group_uuid": "x"},
                      headers=staff.headers).status_code == 400


@pytest.mark.parametrize("who", ["staff", "support"])
def test_set_group_quota_keeps_omitted_and_resets_null(app, client, request, physics, who):
    headers = request.getfixturevalue(who).headers
    response = client.post(SET_QUOTA, json={"group_uuid": physics, "weekly_limit": 700},
                           headers=headers)
    assert response.status_code == 200 and response.data == b""
    assert response.mimetype == "application/json"
    body = client.get(USAGE, query_string={"group_uuid": physics}, headers=headers).json
    assert (body["daily_limit"], body["weekly_limit"]) == (100, 700)
    client.post(SET_QUOTA, json={"group_uuid": physics, "daily_limit": None}, headers=headers)
    body = client.get(USAGE, query_string={"group_uuid": physics}, headers=headers).json
    assert (body["daily_limit"], body["weekly_limit"]) == (None, 700)
    assert audit_actions(app)[-2:] == [
        (who, "group_quota.update", "physics", "weekly_limit", "null", "700"),
        (who, "group_quota.update", "physics", "daily_limit", "100", "null")]


@pytest.mark.parametrize("body, status, errors", [
    ({"daily_limit": 5}, 400, {"group_uuid": ["Missing data for required field."]}),
    ({"group_uuid": "nope"}, 400, {"group_uuid": ["Must be a valid UUID."]}),
    ({"GROUP": True, "daily_limit": "lots"}, 400,
     {"daily_limit": ["A valid integer is required."]}),
    ({"GROUP": True, "monthly_limit": 2**53}, 400, {"monthly_limit": [
        "Must be greater than or equal to -1 and less than or equal to 9007199254740991."]}),
    ({"GROUP": True, "daily_limit": True}, 400, {"daily_limit": ["A valid integer is required."]}),
    ({"group_uuid": uuidlib.uuid4().hex, "daily_limit": 5}, 404, {"detail": "Group not found."}),
])
def test_set_group_quota_errors_change_nothing(app, client, staff, physics, body, status, errors):
    if body.pop("GROUP", False):
        body["group_uuid"] = physics
    before = audit_actions(app)
    response = client.post(SET_QUOTA, json=body, headers=staff.headers)
    assert (response.status_code, response.json) == (status, errors)
    assert audit_actions(app) == before


@pytest.mark.parametrize("who", ["service", "alice"])
def test_set_group_quota_is_for_staff_and_support(client, request, physics, who):
    response = client.post(SET_QUOTA, json={"group_uuid": physics, "daily_limit": 5},
                           headers=request.getfixturevalue(who).headers)
    assert response.status_code == 403


def test_group_defaults_are_their_own(app, client, staff, support, alice, physics):
    assert client.get(DEFAULTS, headers=support.headers).json == {
        "daily_limit": -1, "weekly_limit": -1, "monthly_limit": -1}
    response = client.put(DEFAULTS, json={"weekly_limit": 1000}, headers=staff.headers)
    assert response.status_code == 200 and response.json["weekly_limit"] == 1000
    assert client.get("/api/chat-quota/defaults/", headers=staff.headers).json[
        "weekly_limit"] == -1
    body = client.get(USAGE, query_string={"group_uuid": physics}, headers=alice.headers).json
    assert (body["weekly_system_default"], body["weekly_remaining"]) == (1000, 1000)
    assert client.put(DEFAULTS, json={"weekly_limit": 1},
                      headers=support.headers).status_code == 403
    assert client.get(DEFAULTS, headers=alice.headers).status_code == 403
    assert client.put(DEFAULTS, json={}, headers=staff.headers).status_code == 400
    with app.app_context():
        entry = db.session.query(AuditEntry).filter_by(field="group_weekly_default").one()
    assert (entry.action, entry.old_value, entry.new_value) == ("default.update", "-1", "1000")


def test_quotas_overview_filters_by_group(client, staff, support, alice, bob, physics):
    rows = client.get("/api/chat-quota/quotas/", query_string={"group_uuid": physics},
                      headers=support.headers)
    assert rows.status_code == 200 and [r["username"] for r in rows.json] == ["alice"]
    assert rows.headers["X-Result-Count"] == "1"
    assert len(client.get("/api/chat-quota/quotas/", headers=staff.headers).json) == 4
    response = client.get("/api/chat-quota/quotas/",
                          query_string={"group_uuid": uuidlib.uuid4().hex}, headers=staff.headers)
    assert response.status_code == 404


def test_history_of_a_group(app, client, staff, alice, bob, physics, fixed_clock):
    spend(app, alice.uuid, 30)
    spend(app, bob.uuid, 5)
    fixed_clock.set(2026, 11, 29, 9)
    spend(app, alice.uuid, 20)
    fixed_clock.set(2026, 11, 30, 12)
    for reader in (staff, alice):
        response = client.get("/api/chat-quota/history/",
                              query_string={"group_uuid": physics, "days": 2},
                              headers=reader.headers)
        assert response.status_code == 200
        assert response.json == {"user_uuid": None, "group_uuid": physics, "start": "2026-11-29",
                                 "end": "2026-11-30", "total": 50,
                                 "days": [{"date": "2026-11-29", "tokens": 20},
                                          {"date": "2026-11-30", "tokens": 30}]}
    assert client.get("/api/chat-quota/history/", query_string={"group_uuid": physics},
                      headers=bob.headers).status_code == 403
    response = client.get("/api/chat-quota/history/",
                          query_string={"group_uuid": physics, "user_uuid": alice.uuid},
                          headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"non_field_errors": ["Give user_uuid or group_uuid, not both."]}


def test_audit_lists_group_changes_by_action(client, staff, physics):
    response = client.get("/api/chat-quota/audit/", query_string={"action": "membership.create"},
                          headers=staff.headers)
    assert [(e["target"], e["new_value"]) for e in response.json] == [("physics", "alice")]
