"""Edge cases only real HTTP produces: chunked request bodies through gunicorn.

The Flask test client always sends a Content-Length; gunicorn's chunked
reader is what decides what the app sees, so these tests speak raw HTTP to
one gunicorn for the module (CHATQUOTA_MAX_BODY_BYTES=1024).
"""

import json
import socket

import pytest
import requests

from chatquota import create_app
from chatquota.extensions import db

from .databases import TEST_DATABASE_URL, truncate_all
from .live import LiveServer, seed

LIMIT = 1024
CONSUME = "/api/chat-quota/consume/"


@pytest.fixture(scope="module")
def server(postgresql, tmp_path_factory):
    """One gunicorn with a service key and one user, on the suite's backend."""
    if postgresql is None:
        url = f"sqlite:///{tmp_path_factory.mktemp('http') / 'http.sqlite3'}"
    else:
        truncate_all(postgresql)
        url = TEST_DATABASE_URL
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
    key, (user_uuid,) = seed(app, users=1, daily_limit=10**6)
    with app.app_context():
        db.engine.dispose()
    with LiveServer(url, workers=1, CHATQUOTA_MAX_BODY_BYTES=str(LIMIT)) as live:
        live.headers, live.user_uuid = {"Authorization": f"Token {key}"}, user_uuid
        yield live


def usage(server) -> int:
    """Return the user's tokens today, read through the API."""
    response = requests.get(f"{server.url}/api/chat-quota/usage/?user_uuid={server.user_uuid}",
                            headers=server.headers, timeout=10)
    return response.json()["daily_usage"]


def chunks(text: str):
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    yield text.encode()


def raw_post(server, path: str, framed_body: bytes, content_type="application/json",
             close_early=False) -> tuple[int, bytes]:
    """POST a hand-framed chunked body over a socket; return the status and the body."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: {server.headers['Authorization']}\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + framed_body)
        if close_early:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def framed(body: bytes, size: int = 100) -> bytes:
    """Frame `body` in chunks of `size` bytes, with the last chunk and an empty trailer."""
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def consume_body(server, tokens: int, length: int) -> bytes:
    """A valid consume body padded with spaces to exactly `length` bytes."""
    body = json.dumps({"user_uuid": server.user_uuid, "tokens": tokens}).encode()
    return body + b" " * (length - len(body))


@pytest.mark.parametrize("content_type, body, status, detail", [
    ("text/plain", "hello", 415, "Unsupported media type; send application/json."),
    ("application/json", "{not json", 400, "JSON parse error: the body is not valid JSON."),
])
def test_chunked_bodies_pass_the_same_gate(server, content_type, body, status, detail):
    response = requests.post(f"{server.url}{CONSUME}", data=chunks(body),
                             headers={**server.headers, "Content-Type": content_type}, timeout=10)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_a_chunked_json_body_is_read(server):
    body = f'{{"user_uuid": "{server.user_uuid}", "tokens": 7}}'
    response = requests.post(f"{server.url}{CONSUME}", data=chunks(body),
                             headers={**server.headers, "Content-Type": "application/json"},
                             timeout=10)
    assert response.status_code == 201 and response.json()["event"]["tokens"] == 7


def test_a_chunked_body_of_exactly_the_limit_is_read(server):
    before = usage(server)
    status, body = raw_post(server, CONSUME, framed(consume_body(server, 3, LIMIT)))
    assert status == 201 and json.loads(body)["event"]["tokens"] == 3
    assert usage(server) == before + 3


@pytest.mark.parametrize("length", [LIMIT + 1, 20 * LIMIT])
def test_a_chunked_body_over_the_limit_is_413_and_records_nothing(server, length):
    # A valid body whose first LIMIT bytes are valid JSON too: cut at the
    # limit it would be recorded.
    before = usage(server)
    status, body = raw_post(server, CONSUME, framed(consume_body(server, 5, length)))
    assert (status, json.loads(body)) == (413, {"detail": "Request body too large."})
    assert usage(server) == before


def test_a_chunked_dashboard_form_over_the_limit_is_413(server):
    form = b"csrf_token=x&token=" + b"k" * LIMIT
    status, page = raw_post(server, "/sign-in/", framed(form),
                            content_type="application/x-www-form-urlencoded")
    assert status == 413 and b"<html" in page


@pytest.mark.parametrize("framing", [
    b"zz\r\n{}\r\n0\r\n\r\n",  # a chunk size that is not hex
    b"2\r\n{}}\r\n0\r\n\r\n",  # more data than the chunk size said
    b"2\r\n{}\r\n0\r\n",  # the last chunk without its terminating empty line
    b"64\r\n{\"tokens\": 1",  # the client stops in the middle of a chunk
])
def test_malformed_chunk_framing_is_400(server, framing):
    status, body = raw_post(server, CONSUME, framing, close_early=True)
    assert status == 400 and set(json.loads(body)) == {"detail"}, (status, body)
