"""Authentication and the role matrix of SPEC §3, over HTTP."""

import pytest

from chatquota.extensions import db
from chatquota.services import accounts

USAGE = "/api/chat-quota/usage/"
SET_QUOTA = "/api/chat-quota/set_quota/"


def assert_401(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert set(response.json) == {"detail"}


def test_no_header(client):
    response = client.get(USAGE)
    assert_401(response)
    assert response.json["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize("header", ["Bearer abcdefabcdefabcdefabcdef", "Token", "Token ",
                                    "Basic dXNlcjpwYXNz", "Token a b", "Token nosuchkey"])
def test_bad_credentials(client, header):
    assert_401(client.get(USAGE, headers={"Authorization": header}))


def test_scheme_is_case_insensitive(client, alice):
    response = client.get(USAGE, headers={"Authorization": f"token {alice.key}"})
    assert response.status_code == 200


def test_revoked_token(app, client, alice):
    with app.app_context():
        token = db.session.scalars(db.select(accounts.ApiToken)).one()
        accounts.revoke_token(db.session, None, alice.user, token.uuid)
    assert_401(client.get(USAGE, headers=alice.headers))


def test_inactive_user(app, client, alice):
    with app.app_context():
        user = accounts.get_user(db.session, alice.uuid)
        user.is_active = False
        db.session.commit()
    assert_401(client.get(USAGE, headers=alice.headers))


def test_only_the_hash_is_stored(app, alice):
    with app.app_context():
        token = db.session.scalars(db.select(accounts.ApiToken)).one()
    assert token.key_hash == accounts.hash_key(alice.key)
    assert alice.key not in (token.key_hash, token.prefix)
    assert len(alice.key) >= 40  # 256 random bits, url-safe


@pytest.mark.parametrize("who, own, other, set_quota", [
    ("alice", 200, 403, 403),
    ("support", 200, 200, 200),
    ("service", 200, 200, 403),
    ("staff", 200, 200, 200),
])
def test_role_matrix(request, client, bob, who, own, other, set_quota):
    caller = request.getfixturevalue(who)
    assert client.get(USAGE, headers=caller.headers).status_code == own
    assert client.get(USAGE, query_string={"user_uuid": caller.uuid},
                      headers=caller.headers).status_code == own
    assert client.get(USAGE, query_string={"user_uuid": bob.uuid},
                      headers=caller.headers).status_code == other
    response = client.post(SET_QUOTA, json={"user_uuid": bob.uuid, "daily_limit": 5},
                           headers=caller.headers)
    assert response.status_code == set_quota


@pytest.mark.parametrize("who, check_other, consume", [
    ("alice", 403, 403), ("support", 403, 403), ("service", 200, 201), ("staff", 200, 201),
])
def test_metering_matrix(request, client, bob, who, check_other, consume):
    caller = request.getfixturevalue(who)
    assert client.post("/api/chat-quota/check/", json={},
                       headers=caller.headers).status_code == 200
    assert client.post("/api/chat-quota/check/", json={"user_uuid": bob.uuid},
                       headers=caller.headers).status_code == check_other
    assert client.post("/api/chat-quota/consume/", json={"user_uuid": bob.uuid, "tokens": 1},
                       headers=caller.headers).status_code == consume


def test_forbidden_is_checked_before_validation(client, alice):
    response = client.post(SET_QUOTA, json={"daily_limit": "junk"}, headers=alice.headers)
    assert response.status_code == 403
    assert response.json == {"detail": "You do not have permission to perform this action."}


def test_ordinary_user_cannot_probe_for_unknown_users(client, alice):
    response = client.get(USAGE, query_string={"user_uuid": "0" * 32}, headers=alice.headers)
    assert response.status_code == 403
