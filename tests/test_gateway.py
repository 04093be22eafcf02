"""The gateway with Flask's test client in front and a real (scripted) upstream behind it.

What is charged, what the upstream is asked, what the client sees, and what
happens on refusals and on every kind of failure.
"""

import json
import time

import pytest
from sqlalchemy import func, select

from chatquota import create_app
from chatquota.extensions import db
from chatquota.models import Reservation, UsageEvent, User
from chatquota.services import accounts, limits

from .conftest import Account
from .upstream import TEMPLATE_TOKENS, FakeUpstream

CHAT = "/v1/chat/completions"
OVERHEAD = 10


@pytest.fixture
def upstream():
    server = FakeUpstream()
    yield server
    server.close()


@pytest.fixture
def gateway_app(database_url):
    """Make apps with a gateway to an upstream URL; their connections close afterwards."""
    made = []

    def make(upstream_url, **config):
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
                          "UPSTREAM_URL": upstream_url, "GATEWAY_PROMPT_OVERHEAD": OVERHEAD,
                          **config})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["chatquota.gateway"].router.close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def gw(gateway_app, upstream):
    return gateway_app(upstream.url)


def account(app, name, **roles) -> Account:
    with app.app_context():
        user = accounts.create_user(db.session, None, name, **roles)
        _token, key = accounts.issue_token(db.session, None, user)
        account = Account(user, key)
        account.headers = {"Authorization": f"Bearer {key}"}
        return account


def limit(app, user, daily):
    with app.app_context():
        limits.set_quota(db.session, None, user.uuid, {"daily_limit": daily})


def events(app):
    with app.app_context():
        return db.session.execute(select(
            UsageEvent.tokens, UsageEvent.input_tokens, UsageEvent.output_tokens,
            UsageEvent.model, User.username).join(User).order_by(UsageEvent.id)).all()


def live_holds(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Reservation.state == "active"))


def ask(client, who, content="hello there my friend", **body):
    body = {"model": "tiny", "messages": [{"role": "user", "content": content}], **body}
    return client.post(CHAT, json=body, headers=who.headers)


def sse(response) -> list:
    """The data payloads of a streamed response, JSON-decoded but for [DONE]."""
    out = []
    for block in response.get_data(as_text=True).split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[6:]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_a_whole_reply_is_charged_its_reported_usage(gw, upstream):
    alice = account(gw, "alice")
    response = ask(gw.test_client(), alice, max_tokens=7)
    assert response.status_code == 200
    assert response.json["choices"][0]["message"]["content"] == "word " * 6 + "word"
    assert response.json["usage"] == {"prompt_tokens": 4 + TEMPLATE_TOKENS,
                                      "completion_tokens": 7, "total_tokens": 31}
    assert events(gw) == [(31, 24, 7, "tiny", "alice")]
    assert live_holds(gw) == 0


def test_the_cap_sent_upstream_is_lowered_to_what_the_quota_leaves(gw, upstream):
    alice = account(gw, "alice")
    limit(gw, alice, 150)
    response = ask(gw.test_client(), alice, max_tokens=1000)
    assert response.status_code == 200
    sent = upstream.requests[-1][2]
    messages = json.dumps(sent["messages"])
    # held: the prompt's bound (about its bytes plus the overhead), and the rest as the cap
    assert 0 < sent["max_tokens"] < 150 - OVERHEAD - len("hello there my friend")
    assert len(messages) > 0
    assert events(gw)[0][0] <= 150


def test_a_refusal_is_openai_shaped_and_nothing_reaches_the_upstream(gw, upstream):
    alice = account(gw, "alice")
    limit(gw, alice, 5)
    response = ask(gw.test_client(), alice)
    assert response.status_code == 429
    assert response.headers["x-should-retry"] == "false"
    assert int(response.headers["Retry-After"]) > 0
    error = response.json["error"]
    assert error["type"] == "insufficient_quota" and error["code"] == "daily_limit_exceeded"
    assert error["message"].startswith("Daily token limit exceeded; resets at ")
    assert error["param"] is None
    assert upstream.requests == [] and events(gw) == [] and live_holds(gw) == 0


def test_a_stream_hides_the_usage_chunk_from_a_client_that_did_not_ask(gw, upstream):
    alice = account(gw, "alice")
    response = ask(gw.test_client(), alice, max_tokens=5, stream=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    chunks = sse(response)
    assert chunks[-1] == "[DONE]"
    assert not any("usage" in c for c in chunks if isinstance(c, dict))
    assert sum(1 for c in chunks if isinstance(c, dict) and c["choices"]
               and c["choices"][0].get("delta", {}).get("content")) == 5
    assert upstream.requests[-1][2]["stream_options"] == {"include_usage": True}
    assert events(gw) == [(24 + 5, 24, 5, "tiny", "alice")]


def test_a_stream_shows_usage_to_a_client_that_asked(gw, upstream):
    alice = account(gw, "alice")
    response = ask(gw.test_client(), alice, max_tokens=5, stream=True,
                   stream_options={"include_usage": True})
    usage = [c["usage"] for c in sse(response) if isinstance(c, dict) and c.get("usage")]
    assert usage == [{"prompt_tokens": 24, "completion_tokens": 5, "total_tokens": 29}]
    assert events(gw)[0][:3] == (29, 24, 5)


def test_a_stream_without_usage_is_charged_what_was_relayed(gateway_app):
    upstream = FakeUpstream(usage_on_stream=False)  # as llama-cpp-python's server
    app = gateway_app(upstream.url)
    try:
        alice = account(app, "alice")
        response = ask(app.test_client(), alice, max_tokens=6, stream=True)
        assert len([c for c in sse(response) if isinstance(c, dict) and c["choices"]]) == 7
        (charged, prompt, completion, _model, _who), = events(app)
        assert completion == 6  # one token per content chunk
        # nothing learnt yet: the prompt's bound (its size plus the overhead) is charged
        assert prompt >= len("hello there my friend") + OVERHEAD
        assert charged == prompt + completion
    finally:
        upstream.close()


def test_a_client_that_goes_away_stops_the_upstream_and_pays_for_what_it_got(gateway_app):
    upstream = FakeUpstream(token_seconds=0.05)
    app = gateway_app(upstream.url)
    try:
        alice = account(app, "alice")
        response = app.test_client().post(CHAT, headers=alice.headers, buffered=False, json={
            "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 40,
            "stream": True})
        received = response.iter_encoded()
        for _ in range(3):
            next(received)
        response.close()  # the client disconnects
        (_charged, _prompt, completion, _model, _who), = events(app)
        assert completion == 3
        assert live_holds(app) == 0
        deadline = time.monotonic() + 5
        while not upstream.streams_aborted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.streams_aborted == 1 and upstream.streams_finished == 0
    finally:
        upstream.close()


def test_an_unreachable_upstream_is_502_and_charges_nothing(gateway_app):
    app = gateway_app("http://127.0.0.1:9/v1")
    alice = account(app, "alice")
    response = ask(app.test_client(), alice)
    assert response.status_code == 502
    assert response.json["error"]["code"] == "upstream_unreachable"
    assert events(app) == [] and live_holds(app) == 0


def test_a_slow_upstream_is_504_and_charges_nothing(gateway_app):
    upstream = FakeUpstream(slow_seconds=3)
    app = gateway_app(upstream.url, UPSTREAM_TIMEOUT=1)
    try:
        alice = account(app, "alice")
        response = app.test_client().post(CHAT, headers=alice.headers, json={
            "model": "slow", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 504
        assert response.json["error"]["code"] == "upstream_timeout"
        assert events(app) == [] and live_holds(app) == 0
    finally:
        upstream.close()


def test_an_upstream_error_is_passed_through_and_charges_nothing(gw, upstream):
    alice = account(gw, "alice")
    response = gw.test_client().post(CHAT, headers=alice.headers, json={
        "model": "broken", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert response.json == {"error": {"message": "bad model settings", "type": "x"}}
    assert events(gw) == [] and live_holds(gw) == 0


def test_a_broken_stream_is_charged_what_arrived(gw, upstream):
    alice = account(gw, "alice")
    response = gw.test_client().post(CHAT, headers=alice.headers, json={
        "model": "cut", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    chunks = sse(response)
    assert chunks[-1]["error"]["code"] == "upstream_error"
    assert events(gw)[0][2] == 3


def test_a_service_account_charges_the_user_named_by_header_or_body(gw, upstream):
    service = account(gw, "backend", is_service=True)
    alice, bob = account(gw, "alice"), account(gw, "bob")
    client = gw.test_client()
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    assert client.post(CHAT, json=body, headers={**service.headers,
                                                 "X-Chatquota-User": "alice"}).status_code == 200
    assert client.post(CHAT, json={**body, "user": bob.uuid},
                       headers=service.headers).status_code == 200
    assert client.post(CHAT, json=body, headers=service.headers).status_code == 200
    # an ordinary user cannot charge someone else
    assert client.post(CHAT, json={**body, "user": "bob"}, headers=alice.headers).status_code == 200
    assert [row[4] for row in events(gw)] == ["alice", "bob", "backend", "alice"]


def test_an_unknown_or_deactivated_end_user_is_refused(gw, upstream):
    service = account(gw, "backend", is_service=True)
    carol = account(gw, "carol")
    with gw.app_context():
        accounts.update_user(db.session, None, carol.uuid, {"is_active": False})
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    client = gw.test_client()
    unknown = client.post(CHAT, json={**body, "user": "nobody"}, headers=service.headers)
    assert unknown.status_code == 403 and unknown.json["error"]["code"] == "unknown_user"
    inactive = client.post(CHAT, json={**body, "user": "carol"}, headers=service.headers)
    assert inactive.status_code == 403 and inactive.json["error"]["code"] == "user_inactive"
    assert upstream.requests == [] and events(gw) == []


def test_unknown_users_are_created_on_first_sight_when_enabled(gateway_app, upstream):
    app = gateway_app(upstream.url, GATEWAY_CREATE_USERS=True,
                      GATEWAY_USER_HEADER="X-OpenWebUI-User-Email")
    service = account(app, "openwebui", is_service=True)
    limits_before = None
    with app.app_context():
        limits.set_defaults(db.session, None, {"daily": 1000})
        limits_before = limits.get_defaults(db.session)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    headers = {**service.headers, "X-OpenWebUI-User-Email": "dana@example.org"}
    client = app.test_client()
    assert client.post(CHAT, json=body, headers=headers).status_code == 200
    assert client.post(CHAT, json=body, headers=headers).status_code == 200
    uuid = "3f2a1b9c-1111-4222-8333-944455556666"
    assert client.post(CHAT, json={**body, "user": uuid}, headers=service.headers).status_code == 200
    with app.app_context():
        dana = accounts.get_user_by_name(db.session, "dana@example.org")
        assert dana.quota.daily_limit is None and limits_before["daily"] == 1000
        assert accounts.get_user(db.session, uuid.replace("-", "")).username == uuid
    assert [row[4] for row in events(app)] == ["dana@example.org"] * 2 + [uuid]


@pytest.mark.parametrize("headers, status", [
    ({}, 401), ({"Authorization": "Bearer nope"}, 401), ({"Authorization": "Basic x"}, 401)])
def test_a_call_without_a_valid_key_is_401(gw, upstream, headers, status):
    response = gw.test_client().post(CHAT, json={"model": "tiny", "messages": []}, headers=headers)
    assert response.status_code == status
    assert response.json["error"]["code"] == "invalid_api_key"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_token_scheme_works_too(gw, upstream):
    alice = account(gw, "alice")
    response = gw.test_client().post(CHAT, headers={"Authorization": f"Token {alice.key}"}, json={
        "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    assert response.status_code == 200


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "tiny"}, "messages"),
    ({"model": "tiny", "messages": []}, "messages"),
    ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
     "max_tokens"),
    ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "9"},
     "max_tokens"),
    ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "n": 1000}, "n"),
    ({"model": "x" * 201, "messages": [{"role": "user", "content": "hi"}]}, "model"),
])
def test_a_malformed_request_is_400_and_charges_nothing(gw, upstream, body, param):
    alice = account(gw, "alice")
    response = gw.test_client().post(CHAT, json=body, headers=alice.headers)
    assert response.status_code == 400
    assert response.json["error"]["type"] == "invalid_request_error"
    assert response.json["error"]["param"] == param
    assert upstream.requests == [] and events(gw) == [] and live_holds(gw) == 0


def test_a_body_that_is_not_json_is_400(gw, upstream):
    alice = account(gw, "alice")
    response = gw.test_client().post(CHAT, data="{nope", headers=alice.headers,
                                     content_type="application/json")
    assert response.status_code == 400 and "JSON object" in response.json["error"]["message"]


def test_prompts_larger_than_api_bodies_are_accepted(gw, upstream):
    alice = account(gw, "alice")
    big = "word " * 30_000  # 150 kB: over the API's 64 KiB, under the gateway's 16 MiB
    response = ask(gw.test_client(), alice, content=big, max_tokens=1)
    assert response.status_code == 200


def test_embeddings_and_completions_are_charged_their_usage(gw, upstream):
    alice = account(gw, "alice")
    client = gw.test_client()
    embedded = client.post("/v1/embeddings", headers=alice.headers,
                           json={"model": "tiny", "input": ["one two", "three"]})
    assert embedded.status_code == 200
    completed = client.post("/v1/completions", headers=alice.headers,
                            json={"model": "tiny", "prompt": "once upon a", "max_tokens": 4})
    assert completed.status_code == 200
    assert [row[:3] for row in events(gw)] == [(3, 3, 0), (7, 3, 4)]


def test_models_are_listed_from_the_upstream(gw, upstream):
    alice = account(gw, "alice")
    response = gw.test_client().get("/v1/models", headers=alice.headers)
    assert response.status_code == 200
    assert [m["id"] for m in response.json["data"]] == ["tiny", "other"]
    assert gw.test_client().get("/v1/models").status_code == 401


def test_without_an_upstream_there_is_no_gateway(client):
    assert client.post(CHAT, json={}).status_code == 404


def test_a_full_worker_answers_503_instead_of_taking_the_api_s_threads(gateway_app, upstream):
    app = gateway_app(upstream.url, THREADS=4, GATEWAY_RESERVED_THREADS=3)
    alice = account(app, "alice")
    client = app.test_client()
    open_stream = client.post(CHAT, headers=alice.headers, buffered=False, json={
        "model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    busy = ask(client, alice)
    assert busy.status_code == 503 and busy.json["error"]["code"] == "gateway_busy"
    open_stream.close()
    assert ask(client, alice, max_tokens=1).status_code == 200
