"""/api/webhooks/: staff manage webhooks (audited, secrets write-only), test them, read the log."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from chatquota.extensions import db
from chatquota.models import AuditEntry
from chatquota.services import webhooks

from .live import free_port
from .receiver import Receiver
from .test_costs import full_scans, statements_of

URL = "/api/webhooks/"
SECRET = "a-secret-of-24-characters"


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def create(client, staff, **body):
    body = {"url": "https://hooks.example.com/services/T0/B0/XYZ", "secret": SECRET, **body}
    response = client.post(URL, json=body, headers=staff.headers)
    assert response.status_code == 201, response.json
    return response.json


def test_create_list_retrieve_never_show_the_secret(client, staff):
    made = create(client, staff, format="slack")
    assert set(made) == {"uuid", "url", "format", "events", "created_at", "updated_at"}
    assert (made["format"], made["events"]) == ("slack", ["quota.threshold"])
    listed = client.get(URL, headers=staff.headers)
    assert listed.status_code == 200 and listed.json == [made]
    assert listed.headers["X-Result-Count"] == "1"
    assert client.get(f"{URL}{made['uuid']}/", headers=staff.headers).json == made
    assert SECRET not in listed.text


def test_defaults_are_json_and_every_event(client, staff):
    made = create(client, staff)
    assert (made["format"], made["events"]) == ("json", ["quota.threshold"])


def test_update_changes_given_fields_and_audits_without_secrets(app, client, staff):
    made = create(client, staff)
    response = client.patch(f"{URL}{made['uuid']}/", headers=staff.headers, json={
        "url": "http://10.0.0.5:8065/hooks/abc", "secret": "another-secret-value",
        "events": []})
    assert response.status_code == 200
    assert (response.json["url"], response.json["format"], response.json["events"]) == (
        "http://10.0.0.5:8065/hooks/abc", "json", [])
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    changes = [(e.action, e.field, json.loads(e.old_value), json.loads(e.new_value))
               for e in entries if e.action.startswith("webhook.")]
    assert changes == [
        ("webhook.create", "webhook", None, {"url": "https://hooks.example.com/...",
                                             "format": "json", "events": ["quota.threshold"]}),
        ("webhook.update", "url", "https://hooks.example.com/...", "http://10.0.0.5:8065/..."),
        ("webhook.update", "secret", "(hidden)", "(hidden)"),
        ("webhook.update", "events", ["quota.threshold"], []),
    ]
    assert all(e.target == f"webhook {made['uuid']}" for e in entries if "webhook" in e.action)
    every_value = " ".join(f"{e.old_value} {e.new_value}" for e in entries)
    assert SECRET not in every_value and "XYZ" not in every_value and "abc" not in every_value


def test_delete(app, client, staff):
    made = create(client, staff)
    response = client.delete(f"{URL}{made['uuid']}/", headers=staff.headers)
    assert response.status_code == 204 and response.data == b""
    assert client.get(f"{URL}{made['uuid']}/", headers=staff.headers).status_code == 404
    assert client.delete(f"{URL}{made['uuid']}/", headers=staff.headers).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.action).where(
            AuditEntry.action == "webhook.delete")) == "webhook.delete"


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "example.com/hook"}, "url"),
    ({"url": "https://" + "a" * 2000 + ".com/"}, "url"),
    ({"secret": "short"}, "secret"),
    ({"secret": None}, "secret"),
    ({"format": "xml"}, "format"),
    ({"events": ["quota.exceeded"]}, "events"),
    ({"events": "quota.threshold"}, "events"),
    ({"name": "mine"}, "name"),
])
def test_bad_webhooks_are_a_400_naming_the_field(client, staff, body, field):
    full = {"url": "https://example.com/hook", "secret": SECRET, **body}
    response = client.post(URL, json=full, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == [field]
    assert client.get(URL, headers=staff.headers).json == []


def test_url_and_secret_are_required(client, staff):
    response = client.post(URL, json={}, headers=staff.headers)
    assert response.status_code == 400
    assert set(response.json) == {"url", "secret"}


def test_empty_update_is_a_400(client, staff):
    made = create(client, staff)
    response = client.patch(f"{URL}{made['uuid']}/", json={}, headers=staff.headers)
    assert response.status_code == 400 and "non_field_errors" in response.json


def test_unknown_or_malformed_uuid(client, staff):
    assert client.get(f"{URL}{'0' * 32}/", headers=staff.headers).json == {
        "detail": "Webhook not found."}
    response = client.get(f"{URL}nope/deliveries/", headers=staff.headers)
    assert response.status_code == 400 and list(response.json) == ["webhook_uuid"]


@pytest.mark.parametrize("who", ["support", "service", "alice"])
def test_only_staff(client, request, staff, who):
    made = create(client, staff)
    headers = request.getfixturevalue(who).headers
    assert client.get(URL, headers=headers).status_code == 403
    assert client.post(URL, json={"url": "https://x.org/", "secret": SECRET},
                       headers=headers).status_code == 403
    assert client.post(f"{URL}{made['uuid']}/test/", headers=headers).status_code == 403
    assert client.get(f"{URL}{made['uuid']}/deliveries/", headers=headers).status_code == 403
    assert client.delete(f"{URL}{made['uuid']}/", headers=headers).status_code == 403
    assert client.get(URL).status_code == 401


def test_test_event_is_sent_signed_and_logged(client, staff, receiver):
    made = create(client, staff, url=receiver.url("/in"))
    response = client.post(f"{URL}{made['uuid']}/test/", headers=staff.headers)
    assert response.status_code == 200
    delivery = response.json
    assert (delivery["type"], delivery["state"], delivery["attempts"]) == (
        "webhook.test", "delivered", 1)
    assert delivery["log"][0]["status_code"] == 200 and delivery["log"][0]["error"] is None
    [got] = receiver.wait_for(1)
    assert got.verifies(SECRET)
    assert got.headers["X-Chatquota-Event-Id"] == delivery["event_id"]
    assert got.headers["Content-Type"] == "application/json"
    assert got.json() == delivery["event"] == {
        "id": delivery["event_id"], "type": "webhook.test", "created_at": got.json()["created_at"]}
    log = client.get(f"{URL}{made['uuid']}/deliveries/", headers=staff.headers)
    assert log.status_code == 200 and log.json == [delivery]


def test_a_slack_test_event_is_text(client, staff, receiver):
    made = create(client, staff, url=receiver.url("/slack"), format="slack")
    client.post(f"{URL}{made['uuid']}/test/", headers=staff.headers)
    [got] = receiver.wait_for(1)
    assert got.json() == {"text": "chatquota test message: this webhook works."}
    assert got.verifies(SECRET)


def test_a_failing_test_says_why(client, staff, receiver):
    receiver.statuses = [503]
    made = create(client, staff, url=receiver.url())
    delivery = client.post(f"{URL}{made['uuid']}/test/", headers=staff.headers).json
    assert (delivery["state"], delivery["last_status_code"]) == ("failed", 503)
    nobody = create(client, staff, url=f"http://127.0.0.1:{free_port()}/hook")
    refused = client.post(f"{URL}{nobody['uuid']}/test/", headers=staff.headers).json
    assert refused["state"] == "failed" and refused["last_status_code"] is None
    assert refused["last_error"].startswith("ConnectError")
    assert refused["log"][0]["error"] == refused["last_error"]


def test_deliveries_are_paginated_newest_first(client, staff, receiver):
    made = create(client, staff, url=receiver.url())
    sent = [client.post(f"{URL}{made['uuid']}/test/", headers=staff.headers).json["event_id"]
            for _ in range(3)]
    page = client.get(f"{URL}{made['uuid']}/deliveries/?page_size=2", headers=staff.headers)
    assert [d["event_id"] for d in page.json] == sent[:0:-1]
    assert page.headers["X-Result-Count"] == "3" and 'rel="next"' in page.headers["Link"]
    last = client.get(f"{URL}{made['uuid']}/deliveries/?page_size=2&page=2", headers=staff.headers)
    assert [d["event_id"] for d in last.json] == sent[:1]


def test_the_log_reads_through_indexes(app, client, staff, receiver, monkeypatch):
    made = create(client, staff, url=receiver.url())
    client.post(f"{URL}{made['uuid']}/test/", headers=staff.headers)
    statements = statements_of(
        app, lambda: client.get(f"{URL}{made['uuid']}/deliveries/", headers=staff.headers),
        monkeypatch)
    assert full_scans(app, [(sql, params) for sql, params in statements
                            if "webhook_deliveries" in sql or "webhook_attempts" in sql]) == []


def test_add_webhook_from_the_command_line(app, runner):
    result = runner.invoke(args=["add-webhook", "https://chat.example.com/hooks/abc", "--secret",
                                 SECRET, "--format", "slack"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        made = webhooks.get_webhook(db.session, result.stdout.strip())
        assert (made.url, made.secret, made.format, made.event_types) == (
            "https://chat.example.com/hooks/abc", SECRET, "slack", ["quota.threshold"])
    bad = runner.invoke(args=["add-webhook", "gopher://x.org/", "--secret", SECRET])
    assert bad.exit_code == 1 and bad.stderr == "Error: url: Not a valid URL.\n"
    weak = runner.invoke(args=["add-webhook", "https://x.org/", "--secret", "short"])
    assert weak.exit_code == 1 and weak.stderr.startswith("Error: secret: ")


def readme_receiver(port: int) -> str:
    """Return the README's Python receiver, listening on `port`."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### What a receiver gets", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert '("127.0.0.1", 9000)' in code
    return code.replace('("127.0.0.1", 9000)', f'("127.0.0.1", {port})')


def test_the_readme_receiver_accepts_what_chatquota_signs(client, staff, tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", readme_receiver(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the README's receiver did not start"
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/chatquota"
        right = create(client, staff, url=url, secret="the-webhook-secret-you-chose")
        wrong = create(client, staff, url=url, secret="some-other-secret-value")
        ok = client.post(f"{URL}{right['uuid']}/test/", headers=staff.headers).json
        refused = client.post(f"{URL}{wrong['uuid']}/test/", headers=staff.headers).json
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert (ok["state"], ok["last_status_code"]) == ("delivered", 204)
    assert (refused["state"], refused["last_status_code"]) == ("failed", 401)
    assert "webhook.test None None None" in output
