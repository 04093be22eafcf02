"""check/ and consume/: admission, refusals, enforce, idempotency (SPEC §4)."""

import pytest

from chatquota.extensions import db
from chatquota.models import UsageDay, UsageEvent

CHECK = "/api/chat-quota/check/"
CONSUME = "/api/chat-quota/consume/"


def consume(client, caller, **body):
    return client.post(CONSUME, json=body, headers=caller.headers)


def events(app):
    with app.app_context():
        return db.session.scalars(db.select(UsageEvent)).all()


def test_consume_records_event_and_returns_new_usage(app, client, service, limited, fixed_clock):
    response = consume(client, service, user_uuid=limited.uuid, input_tokens=10,
                       output_tokens=30, model="gpt-x")
    assert response.status_code == 201
    event, usage = response.json["event"], response.json["usage"]
    assert event["tokens"] == 40 and event["input_tokens"] == 10 and event["output_tokens"] == 30
    assert event["user_uuid"] == limited.uuid and event["model"] == "gpt-x" and event["enforced"]
    assert (usage["daily_usage"], usage["daily_remaining"]) == (40, 60)
    assert len(events(app)) == 1


def test_refusal_is_429_with_retry_after_and_records_nothing(app, client, service, limited, fixed_clock):
    assert consume(client, service, user_uuid=limited.uuid, tokens=70).status_code == 201
    response = consume(client, service, user_uuid=limited.uuid, tokens=31)
    assert response.status_code == 429
    assert response.json == {"detail": "Daily token limit exceeded.", "period": "daily",
                             "scope": "user", "reset_at": "2026-12-01T00:00:00Z",
                             "remaining": 30}
    assert response.headers["Retry-After"] == str(12 * 3600)
    assert len(events(app)) == 1
    assert consume(client, service, user_uuid=limited.uuid, tokens=30).status_code == 201


def test_enforce_false_always_records(client, service, limited):
    consume(client, service, user_uuid=limited.uuid, tokens=100)
    response = consume(client, service, user_uuid=limited.uuid, tokens=500, enforce=False)
    assert response.status_code == 201
    assert response.json["usage"]["daily_usage"] == 600
    assert response.json["usage"]["daily_remaining"] == 0
    assert response.json["event"]["enforced"] is False


def test_check_is_read_only(app, client, limited):
    response = client.post(CHECK, json={"tokens": 100}, headers=limited.headers)
    assert response.status_code == 200
    assert response.json["allowed"] is True and response.json["held"] == 0
    assert response.json["daily_remaining"] == 100
    response = client.post(CHECK, json={"tokens": 101}, headers=limited.headers)
    assert response.status_code == 429 and response.json["period"] == "daily"
    assert events(app) == []


def test_check_with_empty_body_checks_zero_tokens(client, alice):
    response = client.post(CHECK, headers=alice.headers)
    assert response.status_code == 200 and response.json["tokens"] == 0


def test_idempotent_retry_returns_first_result(app, client, service, limited):
    first = consume(client, service, user_uuid=limited.uuid, tokens=10, idempotency_key="req-1")
    again = consume(client, service, user_uuid=limited.uuid, tokens=10, idempotency_key="req-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["event"] == first.json["event"]
    assert again.json["usage"]["daily_usage"] == 10
    assert len(events(app)) == 1


def test_same_key_different_body_is_409(app, client, service, limited):
    consume(client, service, user_uuid=limited.uuid, tokens=10, idempotency_key="req-1")
    response = consume(client, service, user_uuid=limited.uuid, tokens=11, idempotency_key="req-1")
    assert response.status_code == 409
    assert response.json == {"detail": "This idempotency_key was already used with a different request."}
    assert len(events(app)) == 1


def test_keys_are_per_user(app, client, service, limited, bob):
    consume(client, service, user_uuid=limited.uuid, tokens=10, idempotency_key="k")
    assert consume(client, service, user_uuid=bob.uuid, tokens=10, idempotency_key="k").status_code == 201
    assert len(events(app)) == 2


def test_refused_call_can_be_retried_with_its_key(client, service, limited):
    assert consume(client, service, user_uuid=limited.uuid, tokens=101, idempotency_key="k").status_code == 429
    assert consume(client, service, user_uuid=limited.uuid, tokens=100, idempotency_key="k").status_code == 201


@pytest.mark.parametrize("body, expected", [
    ({"user_uuid": None}, {"user_uuid": ["Field may not be null."]}),
    ({"tokens": 1}, {"user_uuid": ["Missing data for required field."]}),
    ({"user_uuid": "U"}, {"tokens": ["Give tokens, or input_tokens and/or output_tokens."]}),
    ({"user_uuid": "U", "tokens": -1}, {"tokens": ["Must be greater than or equal to 0 and less than or equal to 9007199254740991."]}),
    ({"user_uuid": "U", "tokens": 1.5}, {"tokens": ["A valid integer is required."]}),
    ({"user_uuid": "U", "tokens": 5, "input_tokens": 2, "output_tokens": 2},
     {"tokens": ["Must equal input_tokens + output_tokens."]}),
    ({"user_uuid": "U", "input_tokens": 2**53 - 1, "output_tokens": 1},
     {"tokens": ["Ensure this value is less than or equal to 9007199254740991."]}),
    ({"user_uuid": "U", "tokens": 1, "model": ""}, {"model": ["Length must be between 1 and 200."]}),
    ({"user_uuid": "U", "tokens": 1, "enforce": "maybe"}, {"enforce": ["Must be a valid boolean."]}),
    ({"user_uuid": "U", "tokens": 1, "enforce": 0}, {"enforce": ["Must be a valid boolean."]}),
    ({"user_uuid": "U", "tokens": 1, "enforce": "false"}, {"enforce": ["Must be a valid boolean."]}),
    ({"user_uuid": "U", "tokens": 1, "idempotency_key": "k" * 201},
     {"idempotency_key": ["Length must be between 1 and 200."]}),
])
def test_consume_validation(app, client, service, alice, body, expected):
    if body.get("user_uuid") == "U":
        body["user_uuid"] = alice.uuid
    response = consume(client, service, **body)
    assert response.status_code == 400
    assert response.json == expected
    assert events(app) == []


def test_consume_for_unknown_user_is_404(client, service):
    response = consume(client, service, user_uuid="2" * 32, tokens=1)
    assert (response.status_code, response.json) == (404, {"detail": "User not found."})


def test_day_totals_follow_events(app, client, service, alice):
    for tokens in (5, 7, 11):
        consume(client, service, user_uuid=alice.uuid, tokens=tokens)
    with app.app_context():
        days = db.session.scalars(db.select(UsageDay)).all()
    assert [(d.tokens,) for d in days] == [(23,)]


def test_admission_sees_a_limit_changed_after_the_caller_was_loaded(app, session, limited):
    """A limit committed by another process between auth and admission is honoured."""
    from chatquota.services import accounts, metering
    from chatquota.services.errors import QuotaExceeded

    tz = app.config["TZ"]
    stale = accounts.get_user(session, limited.uuid)  # e.g. loaded by authentication
    assert stale.quota.daily_limit == 100
    with db.engine.connect() as other:  # another connection, as another worker would be
        other.execute(db.text("UPDATE quotas SET daily_limit = 0 WHERE user_id = :id"),
                      {"id": limited.user.id})
        other.commit()
    with pytest.raises(QuotaExceeded):
        metering.consume(session.get_bind(), tz, user_uuid=limited.uuid, tokens=1)


def test_usage_never_passes_the_largest_exact_integer(app, client, service, alice):
    big = {"user_uuid": alice.uuid, "tokens": 2**53 - 1, "enforce": False}
    assert consume(client, service, **big).status_code == 201
    response = consume(client, service, **big)
    assert response.status_code == 400
    assert response.json == {"tokens": ["This would take usage past 9007199254740991 tokens in a period."]}
    assert len(events(app)) == 1
