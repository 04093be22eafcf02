"""/api/users/: accounts and their tokens."""

import uuid as uuidlib

import pytest

from chatquota.extensions import db
from chatquota.models import AuditEntry

USERS = "/api/users/"


def audit_actions(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [(e.actor, e.action, e.field) for e in db.session.query(AuditEntry)
                .order_by(AuditEntry.id) if e.actor != "cli"]


@pytest.mark.parametrize("who", ["staff", "support"])
def test_staff_and_support_list_users_with_search(client, request, alice, bob, who):
    response = client.get(USERS, query_string={"search": "LIC"},
                          headers=request.getfixturevalue(who).headers)
    assert response.status_code == 200
    assert response.json == [{
        "uuid": alice.uuid, "username": "alice", "is_active": True, "is_staff": False,
        "is_support": False, "is_service": False,
        "created_at": response.json[0]["created_at"]}]
    assert response.headers["X-Result-Count"] == "1"


@pytest.mark.parametrize("who", ["alice", "service"])
def test_others_may_not_list_or_read_users(client, request, bob, who):
    headers = request.getfixturevalue(who).headers
    assert client.get(USERS, headers=headers).status_code == 403
    assert client.get(f"{USERS}{bob.uuid}/", headers=headers).status_code == 403
    assert client.get(f"{USERS}{bob.uuid}/tokens/", headers=headers).status_code == 403


def test_anonymous_gets_401_everywhere(client, alice):
    for url in (USERS, f"{USERS}me/", f"{USERS}{alice.uuid}/", f"{USERS}{alice.uuid}/tokens/"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("who", ["staff", "support", "service", "alice"])
def test_everyone_reads_me(client, request, who):
    account = request.getfixturevalue(who)
    response = client.get(f"{USERS}me/", headers=account.headers)
    assert response.status_code == 200
    assert response.json["uuid"] == account.uuid
    assert response.json["username"] == account.user.username


def test_staff_creates_a_user_and_it_is_audited(app, client, staff):
    body = {"username": "carol", "uuid": "A1B2C3D4-E5F6-7890-ABCD-EF1234567890",
            "is_support": True}
    response = client.post(USERS, json=body, headers=staff.headers)
    assert response.status_code == 201
    assert response.json["uuid"] == "a1b2c3d4e5f67890abcdef1234567890"
    assert (response.json["is_support"], response.json["is_staff"]) == (True, False)
    got = client.get(f"{USERS}{response.json['uuid']}/", headers=staff.headers)
    assert got.json == response.json
    assert audit_actions(app) == [("staff", "user.create", "user")]
    quota = client.get("/api/chat-quota/usage/", query_string={"user_uuid": body["uuid"]},
                       headers=staff.headers).json
    assert quota["daily_limit"] is None


@pytest.mark.parametrize("body, field", [
    ({}, "username"), ({"username": ""}, "username"), ({"username": "   "}, "username"),
    ({"username": "x" * 151}, "username"), ({"username": "alice"}, "username"),
    ({"username": "z", "uuid": "nope"}, "uuid"),
    ({"username": "z", "is_staff": "maybe"}, "is_staff"),
    ({"username": "z", "password": "x"}, "password"),
])
def test_bad_create_is_400(client, staff, alice, body, field):
    response = client.post(USERS, json=body, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == [field]
    assert client.get(USERS, headers=staff.headers).headers["X-Result-Count"] == "2"


def test_create_strips_the_username_before_checking_it(client, staff, alice):
    longest = "x" * 150
    for sent, stored in ((" carol\t", "carol"), (longest + " ", longest)):
        response = client.post(USERS, json={"username": sent}, headers=staff.headers)
        assert (response.status_code, response.json["username"]) == (201, stored)
    response = client.post(USERS, json={"username": " alice "}, headers=staff.headers)
    assert response.json == {"username": ["A user with this username already exists."]}


def test_create_with_taken_uuid_is_400(client, staff, alice):
    response = client.post(USERS, json={"username": "z", "uuid": alice.uuid}, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"uuid": ["A user with this uuid already exists."]}


@pytest.mark.parametrize("who", ["support", "service", "alice"])
def test_only_staff_create_and_update(client, request, bob, who):
    headers = request.getfixturevalue(who).headers
    assert client.post(USERS, json={"username": "z"}, headers=headers).status_code == 403
    response = client.patch(f"{USERS}{bob.uuid}/", json={"is_active": False}, headers=headers)
    assert response.status_code == 403
    assert client.get(f"{USERS}me/", headers=bob.headers).status_code == 200


def test_unknown_and_malformed_uuid(client, staff):
    missing = uuidlib.uuid4().hex
    calls = [("get", f"{USERS}{missing}/"), ("patch", f"{USERS}{missing}/"),
             ("get", f"{USERS}{missing}/tokens/"), ("post", f"{USERS}{missing}/tokens/")]
    for method, url in calls:
        response = getattr(client, method)(url, json={}, headers=staff.headers)
        assert response.status_code == 404, (method, url)
        assert response.json == {"detail": "User not found."}
    response = client.get(f"{USERS}not-a-uuid/", headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"user_uuid": ["Must be a valid UUID."]}


def test_deactivating_a_user_stops_their_tokens_and_keeps_history(app, client, staff, alice):
    client.post("/api/chat-quota/consume/", json={"user_uuid": alice.uuid, "tokens": 7},
                headers=staff.headers)
    response = client.patch(f"{USERS}{alice.uuid}/", json={"is_active": False},
                            headers=staff.headers)
    assert response.status_code == 200 and response.json["is_active"] is False
    denied = client.get("/api/chat-quota/usage/", headers=alice.headers)
    assert denied.status_code == 401
    usage = client.get("/api/chat-quota/usage/", query_string={"user_uuid": alice.uuid},
                       headers=staff.headers).json
    assert usage["daily_usage"] == 7
    client.patch(f"{USERS}{alice.uuid}/", json={"is_active": True}, headers=staff.headers)
    assert client.get("/api/chat-quota/usage/", headers=alice.headers).status_code == 200


def test_roles_change_and_each_change_is_audited(app, client, staff, bob):
    response = client.patch(f"{USERS}{bob.uuid}/", json={"is_support": True, "is_service": False},
                            headers=staff.headers)
    assert response.status_code == 200
    assert response.json["is_support"] is True
    assert client.get("/api/chat-quota/quotas/", headers=bob.headers).status_code == 200
    assert audit_actions(app) == [("staff", "user.update", "is_support")]


@pytest.mark.parametrize("body, field", [
    ({"is_active": "sometimes"}, "is_active"), ({"username": "x"}, "username"),
    ({"uuid": "x"}, "uuid"),
])
def test_bad_update_is_400(client, staff, bob, body, field):
    response = client.patch(f"{USERS}{bob.uuid}/", json=body, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == [field]


def test_the_last_active_staff_user_cannot_be_removed(app, client, staff, make_account):
    for body in ({"is_active": False}, {"is_staff": False}):
        response = client.patch(f"{USERS}{staff.uuid}/", json=body, headers=staff.headers)
        assert response.status_code == 409
        assert response.json == {"detail": "This change would leave no active staff user."}
    assert client.get(f"{USERS}me/", headers=staff.headers).json["is_staff"] is True
    assert audit_actions(app) == []
    make_account("second", is_staff=True)
    response = client.patch(f"{USERS}{staff.uuid}/", json={"is_staff": False},
                            headers=staff.headers)
    assert response.status_code == 200


def test_issue_list_and_revoke_tokens(app, client, staff, support, bob):
    tokens_url = f"{USERS}{bob.uuid}/tokens/"
    response = client.post(tokens_url, json={"name": "laptop"}, headers=staff.headers)
    assert response.status_code == 201
    new = response.json
    assert set(new) == {"uuid", "prefix", "name", "created_at", "revoked_at", "key"}
    assert new["key"].startswith(new["prefix"]) and new["revoked_at"] is None
    assert response.headers["Cache-Control"] == "no-store"  # no cache keeps the key
    key_headers = {"Authorization": f"Token {new['key']}"}
    assert client.get(f"{USERS}me/", headers=key_headers).json["uuid"] == bob.uuid

    listed = client.get(tokens_url, headers=support.headers)
    assert listed.status_code == 200 and listed.headers["X-Result-Count"] == "2"
    assert listed.json[0]["uuid"] == new["uuid"]
    assert all("key" not in t for t in listed.json)
    one = client.get(f"{tokens_url}{new['uuid']}/", headers=support.headers)
    assert one.json == {k: v for k, v in new.items() if k != "key"}

    revoked = client.delete(f"{tokens_url}{new['uuid']}/", headers=staff.headers)
    assert revoked.status_code == 204 and revoked.data == b""
    assert client.get(f"{USERS}me/", headers=key_headers).status_code == 401
    assert client.get(f"{USERS}me/", headers=bob.headers).status_code == 200
    assert client.delete(f"{tokens_url}{new['uuid']}/", headers=staff.headers).status_code == 204
    assert client.get(f"{tokens_url}{new['uuid']}/", headers=staff.headers).json["revoked_at"]
    assert audit_actions(app) == [("staff", "token.create", "token"),
                                  ("staff", "token.revoke", "token")]


def test_support_may_not_issue_or_revoke(client, support, bob):
    tokens_url = f"{USERS}{bob.uuid}/tokens/"
    assert client.post(tokens_url, json={}, headers=support.headers).status_code == 403
    token_uuid = client.get(tokens_url, headers=support.headers).json[0]["uuid"]
    response = client.delete(f"{tokens_url}{token_uuid}/", headers=support.headers)
    assert response.status_code == 403
    assert client.get(f"{USERS}me/", headers=bob.headers).status_code == 200


def test_token_of_another_user_or_unknown_is_404(client, staff, alice, bob):
    token_uuid = client.get(f"{USERS}{alice.uuid}/tokens/", headers=staff.headers).json[0]["uuid"]
    response = client.delete(f"{USERS}{bob.uuid}/tokens/{token_uuid}/", headers=staff.headers)
    assert response.status_code == 404
    assert response.json == {"detail": "Token not found."}
    assert client.get(f"{USERS}me/", headers=alice.headers).status_code == 200
    response = client.delete(f"{USERS}{bob.uuid}/tokens/xyz/", headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"token_uuid": ["Must be a valid UUID."]}


@pytest.mark.parametrize("body, field", [({"name": "x" * 151}, "name"), ({"key": "mine"}, "key")])
def test_bad_token_request_is_400(client, staff, bob, body, field):
    response = client.post(f"{USERS}{bob.uuid}/tokens/", json=body, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == [field]


def test_wrong_methods_are_405(client, staff, bob):
    assert client.delete(f"{USERS}{bob.uuid}/", headers=staff.headers).status_code == 405
    assert client.put(USERS, json={}, headers=staff.headers).status_code == 405
