"""Edge cases only real HTTP produces: chunked request bodies through gunicorn."""

import pytest
import requests

from .live import LiveServer, seed


@pytest.fixture(scope="module")
def server(module_app, module_database_url):
    """One gunicorn for the module, a service key and a user limited to 100 tokens a day."""
    key, (user_uuid,) = seed(module_app, users=1, daily_limit=100)
    with LiveServer(module_database_url, workers=1) as live:
        yield live, {"Authorization": f"Token {key}"}, user_uuid


def chunks(text: str):
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    yield text.encode()


@pytest.mark.parametrize("content_type, body, status, detail", [
    ("text/plain", "hello", 415, "Unsupported media type; send application/json."),
    ("application/json", "{not json", 400, "JSON parse error: the body is not valid JSON."),
])
def test_chunked_bodies_pass_the_same_gate(server, content_type, body, status, detail):
    live, headers, user_uuid = server
    response = requests.post(f"{live.url}/api/chat-quota/consume/", data=chunks(body),
                             headers={**headers, "Content-Type": content_type}, timeout=10)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_a_chunked_json_body_is_read(server):
    live, headers, user_uuid = server
    body = f'{{"user_uuid": "{user_uuid}", "tokens": 7}}'
    response = requests.post(f"{live.url}/api/chat-quota/consume/", data=chunks(body),
                             headers={**headers, "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 201 and response.json()["event"]["tokens"] == 7
