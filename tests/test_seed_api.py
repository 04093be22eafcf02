"""The two Waldur-compatible endpoints: fields, semantics, validation (SPEC §2, §6)."""

import json
import re

import pytest

from chatquota.extensions import db
from chatquota.models import AuditEntry, Quota
from chatquota.schemas.fields import unstorable
from chatquota.services import limits

USAGE = "/api/chat-quota/usage/"
SET_QUOTA = "/api/chat-quota/set_quota/"
FIELDS = [f"{p}_{f}" for p in ("daily", "weekly", "monthly")
          for f in ("limit", "usage", "remaining", "reset_at", "system_default")]


def quota_row(app, account):
    with app.app_context():
        return db.session.get(Quota, account.user.id)


def test_usage_returns_exactly_the_15_fields(client, alice, fixed_clock):
    response = client.get(USAGE, headers=alice.headers)
    assert response.status_code == 200
    assert list(response.json) == FIELDS
    assert response.json == {
        "daily_limit": None, "daily_usage": 0, "daily_remaining": None,
        "daily_reset_at": "2026-12-01T00:00:00Z", "daily_system_default": -1,
        "weekly_limit": None, "weekly_usage": 0, "weekly_remaining": None,
        "weekly_reset_at": "2026-12-07T00:00:00Z", "weekly_system_default": -1,
        "monthly_limit": None, "monthly_usage": 0, "monthly_remaining": None,
        "monthly_reset_at": "2026-12-01T00:00:00Z", "monthly_system_default": -1,
    }


def test_usage_reflects_defaults_limits_and_consumption(app, client, staff, alice):
    with app.app_context():
        limits.set_defaults(db.session, None, {"weekly": 1000})
    client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "daily_limit": 100}, headers=staff.headers)
    client.post("/api/chat-quota/consume/", json={"user_uuid": alice.uuid, "tokens": 30},
                headers=staff.headers)
    body = client.get(USAGE, headers=alice.headers).json
    assert (body["daily_limit"], body["daily_usage"], body["daily_remaining"]) == (100, 30, 70)
    assert (body["weekly_limit"], body["weekly_system_default"], body["weekly_remaining"]) == (None, 1000, 970)
    assert (body["monthly_limit"], body["monthly_remaining"]) == (None, None)


def test_set_quota_success_is_an_empty_200(client, staff, alice):
    response = client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "daily_limit": 10},
                           headers=staff.headers)
    assert response.status_code == 200
    assert response.data == b""
    assert response.mimetype == "application/json"


def test_omitted_field_keeps_value_and_null_resets_to_default(app, client, staff, alice):
    body = {"user_uuid": alice.uuid, "daily_limit": 10, "weekly_limit": 20, "monthly_limit": -1}
    client.post(SET_QUOTA, json=body, headers=staff.headers)
    client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "weekly_limit": None}, headers=staff.headers)
    row = quota_row(app, alice)
    assert (row.daily_limit, row.weekly_limit, row.monthly_limit) == (10, None, -1)


@pytest.mark.parametrize("value, stored", [(5.0, 5), ("100", 100), (" 7 ", 7), (0, 0),
                                           (-1, -1), (2**53 - 1, 2**53 - 1), ("3.0", 3)])
def test_integral_values_are_accepted(app, client, staff, alice, value, stored):
    response = client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "monthly_limit": value},
                           headers=staff.headers)
    assert response.status_code == 200
    assert quota_row(app, alice).monthly_limit == stored


@pytest.mark.parametrize("value, message", [
    (-2, "Must be greater than or equal to -1 and less than or equal to 9007199254740991."),
    (2**53, "Must be greater than or equal to -1 and less than or equal to 9007199254740991."),
    (5.5, "A valid integer is required."),
    (True, "A valid integer is required."),
    ("lots", "A valid integer is required."),
    ("", "A valid integer is required."),
    ([1], "A valid integer is required."),
    ({"a": 1}, "A valid integer is required."),
    ("1" * 5000, "A valid integer is required."),
])
def test_bad_limits_are_400_naming_the_field_and_change_nothing(app, client, staff, alice, value, message):
    client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "daily_limit": 7}, headers=staff.headers)
    response = client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "daily_limit": 1,
                                            "weekly_limit": value}, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"weekly_limit": [message]}
    row = quota_row(app, alice)
    assert (row.daily_limit, row.weekly_limit) == (7, None)


@pytest.mark.parametrize("body, expected", [
    ({}, {"user_uuid": ["Missing data for required field."]}),
    ({"user_uuid": "not-a-uuid"}, {"user_uuid": ["Must be a valid UUID."]}),
    ({"user_uuid": 12}, {"user_uuid": ["Must be a valid UUID."]}),
    ({"user_uuid": None}, {"user_uuid": ["Field may not be null."]}),
    ({"user_uuid": "0" * 32, "hourly_limit": 5}, {"hourly_limit": ["Unknown field."]}),
    ([1, 2], {"non_field_errors": ["Invalid input type."]}),
])
def test_bad_bodies(client, staff, body, expected):
    response = client.post(SET_QUOTA, json=body, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == expected


def test_unknown_user_is_404(client, staff):
    response = client.post(SET_QUOTA, json={"user_uuid": "1" * 32, "daily_limit": 1},
                           headers=staff.headers)
    assert response.status_code == 404
    assert response.json == {"detail": "User not found."}
    response = client.get(USAGE, query_string={"user_uuid": "1" * 32}, headers=staff.headers)
    assert response.status_code == 404


@pytest.mark.parametrize("form", [str.upper, lambda u: f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}",
                                  lambda u: "{" + u + "}", lambda u: "urn:uuid:" + u])
def test_uuid_in_any_standard_form(client, staff, alice, form):
    response = client.get(USAGE, query_string={"user_uuid": form(alice.uuid)}, headers=staff.headers)
    assert response.status_code == 200
    response = client.post(SET_QUOTA, json={"user_uuid": form(alice.uuid), "daily_limit": 3},
                           headers=staff.headers)
    assert response.status_code == 200


@pytest.mark.parametrize("text", ["xyz", "-".join("a1b2c3d4e5f67890abcdef1234567890"),
                                  "{a1b2c3d4e5f67890abcdef1234567890", "a1b2c3d4e5f67890abcdef123456789"])
def test_malformed_uuid_in_query_is_400(client, staff, text):
    response = client.get(USAGE, query_string={"user_uuid": text}, headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"user_uuid": ["Must be a valid UUID."]}


def test_every_change_is_audited_and_unchanged_values_are_not(app, client, staff, alice):
    client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "daily_limit": 10, "weekly_limit": None},
                headers=staff.headers)
    client.post(SET_QUOTA, json={"user_uuid": alice.uuid, "daily_limit": 10}, headers=staff.headers)
    with app.app_context():
        entries = db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.action == "quota.update")).all()
    assert [(e.actor, e.target, e.field, json.loads(e.old_value), json.loads(e.new_value))
            for e in entries] == [("staff", "alice", "daily_limit", None, 10)]


@pytest.mark.parametrize("data, content_type, status, detail", [
    ("{not json", "application/json", 400, "JSON parse error: the body is not valid JSON."),
    ("user_uuid=x", "application/x-www-form-urlencoded", 415,
     "Unsupported media type; send application/json."),
    ("hello", "text/plain", 415, "Unsupported media type; send application/json."),
])
def test_body_format_errors(client, staff, data, content_type, status, detail):
    response = client.post(SET_QUOTA, data=data, content_type=content_type, headers=staff.headers)
    assert response.status_code == status
    assert response.json == {"detail": detail}


def test_deeply_nested_json_is_a_parse_error_not_a_crash(client, staff):
    response = client.post(SET_QUOTA, data="[" * 5000, content_type="application/json",
                           headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"detail": "JSON parse error: the body is not valid JSON."}


def test_oversized_body_is_413(client, staff):
    body = json.dumps({"user_uuid": "0" * 32, "pad": "x" * 70000})
    response = client.post(SET_QUOTA, data=body, content_type="application/json", headers=staff.headers)
    assert response.status_code == 413
    assert "detail" in response.json


def test_unknown_route_and_wrong_method_are_json(client, staff):
    response = client.get("/api/nope/", headers=staff.headers)
    assert (response.status_code, response.json) == (404, {"detail": "Not found."})
    response = client.get(SET_QUOTA, headers=staff.headers)
    assert (response.status_code, response.json) == (405, {"detail": 'Method "GET" not allowed.'})
    response = client.delete(USAGE, headers=staff.headers)
    assert response.status_code == 405


@pytest.mark.parametrize("method, path, kwargs, field", [
    ("get", "/api/chat-quota/audit/", {"query_string": {"action": "a\x00"}}, "action"),
    ("get", "/api/chat-quota/quotas/", {"query_string": {"search": "\x00"}}, "search"),
    ("get", "/api/chat-quota/events/", {"query_string": {"model": "x\x00y"}}, "model"),
    ("post", "/api/users/", {"json": {"username": "eve\x00"}}, "username"),
    ("post", "/api/chat-quota/consume/", {"json": {"user_uuid": "0" * 32, "tokens": 1,
                                                   "model": "\x00"}}, "model"),
])
def test_nul_characters_are_refused_naming_the_field(client, staff, method, path, kwargs, field):
    response = getattr(client, method)(path, headers=staff.headers, **kwargs)
    assert response.status_code == 400
    assert response.json == {field: ["Null characters are not allowed."]}


# JSON's "\ud800" decodes to a lone surrogate, which no UTF-8 database can store.
# (Query strings and forms cannot carry one: Werkzeug decodes them as UTF-8.)
@pytest.mark.parametrize("path, body, field", [
    ("/api/users/", {"username": "eve\ud800"}, "username"),
    ("/api/users/{staff}/tokens/", {"name": "\udfff backend"}, "name"),
    ("/api/chat-quota/consume/", {"user_uuid": "{staff}", "tokens": 1, "model": "gpt\ud83d"},
     "model"),
    ("/api/chat-quota/consume/", {"user_uuid": "{staff}", "tokens": 1,
                                  "idempotency_key": "k\ud800"}, "idempotency_key"),
    ("/api/chat-quota/reservations/", {"user_uuid": "{staff}", "tokens": 1,
                                       "model": "\ud800"}, "model"),
    ("/api/chat-quota/set_quota/", {"user_uuid": "{staff}", "\ud800": 1}, "\ud800"),
])
def test_lone_surrogates_are_refused_naming_the_field(app, client, staff, path, body, field):
    body = {k: v.replace("{staff}", staff.uuid) if isinstance(v, str) else v
            for k, v in body.items()}
    before = client.get("/api/chat-quota/audit/", headers=staff.headers).headers["X-Result-Count"]
    response = client.post(path.replace("{staff}", staff.uuid), json=body, headers=staff.headers)
    assert response.status_code == 400
    [message] = response.json[field]
    assert re.fullmatch(r"Surrogate characters are not allowed: U\+D[89A-F][0-9A-F]{2}\.", message)
    after = client.get("/api/chat-quota/audit/", headers=staff.headers).headers["X-Result-Count"]
    assert after == before


@pytest.mark.parametrize("value, message", [
    ({"a": [1, {"b": "x\x00"}]}, "Null characters are not allowed."),
    ([{"\udc80": 1}], "Surrogate characters are not allowed: U+DC80."),
    (("ok", "caf\u00e9", 5, None), None),
])
def test_unstorable_looks_into_nested_keys_and_values(value, message):
    assert unstorable(value) == message


def test_characters_beyond_the_basic_plane_are_stored(client, staff):
    response = client.post("/api/users/", json={"username": "emoji \ud83d\ude00"},
                           headers=staff.headers)
    assert response.status_code == 201 and response.json["username"] == "emoji \U0001f600"


def test_nul_in_a_json_array_body_is_a_non_field_error(client, staff):
    response = client.post(SET_QUOTA, json=["\x00"], headers=staff.headers)
    assert response.status_code == 400
    assert response.json == {"non_field_errors": ["Null characters are not allowed."]}
