"""/api/chat-quota/model-weights/: staff set, readers list; events are charged by them."""

import pytest

from chatquota.extensions import db
from chatquota.models import AuditEntry, ModelWeight

URL = "/api/chat-quota/model-weights/"
MODEL = "meta-llama/Llama-3.1-70B-Instruct"


def audit_entries(app):
    with app.app_context():
        return [(e.actor, e.target, e.field, e.old_value, e.new_value)
                for e in db.session.query(AuditEntry).filter_by(action="model_weight.update")
                .order_by(AuditEntry.id)]


def test_staff_set_weights_then_replace_them(app, client, staff, support, fixed_clock):
    response = client.post(URL, json={"model": MODEL, "input_weight": 0.25,
                                      "output_weight": "4.000"}, headers=staff.headers)
    assert response.status_code == 201
    assert response.json == {"model": MODEL, "input_weight": "0.25", "output_weight": "4",
                             "updated_at": "2026-11-30T12:00:00+00:00"}
    fixed_clock.set(2026, 11, 30, 13)
    response = client.post(URL, json={"model": MODEL, "input_weight": "0.25",
                                      "output_weight": 5}, headers=staff.headers)
    assert response.status_code == 200 and response.json["output_weight"] == "5"
    listed = client.get(URL, headers=support.headers)
    assert listed.status_code == 200 and listed.headers["X-Result-Count"] == "1"
    assert listed.json == [{"model": MODEL, "input_weight": "0.25", "output_weight": "5",
                            "updated_at": "2026-11-30T13:00:00+00:00"}]
    assert audit_entries(app) == [
        ("staff", MODEL, "input_weight", "null", '"0.25"'),
        ("staff", MODEL, "output_weight", "null", '"4"'),
        ("staff", MODEL, "output_weight", '"4"', '"5"')]


@pytest.mark.parametrize("field, value, message", [
    ("input_weight", -1, "Ensure this value is between 0 and 1000000."),
    ("input_weight", 1000000.5, "Ensure this value is between 0 and 1000000."),
    ("output_weight", "0.0000001", "Ensure that there are no more than 6 decimal places."),
    ("output_weight", 1e-7, "Ensure that there are no more than 6 decimal places."),
    ("output_weight", True, "A valid number is required."),
    ("output_weight", "1e3", "A valid number is required."),
    ("output_weight", "", "A valid number is required."),
    ("output_weight", None, "Field may not be null."),
    ("model", "", "Length must be between 1 and 200."),
])
def test_invalid_weights_are_a_400_naming_the_field(app, client, staff, field, value, message):
    body = {"model": "m", "input_weight": 1, "output_weight": 1, field: value}
    response = client.post(URL, json=body, headers=staff.headers)
    assert (response.status_code, response.json) == (400, {field: [message]})
    with app.app_context():
        assert db.session.query(ModelWeight).count() == 0
    assert audit_entries(app) == []


def test_missing_fields_are_named(client, staff):
    response = client.post(URL, json={"model": "m"}, headers=staff.headers)
    assert response.json == {"input_weight": ["Missing data for required field."],
                             "output_weight": ["Missing data for required field."]}


@pytest.mark.parametrize("who, read, write", [("support", 200, 403), ("service", 403, 403),
                                              ("alice", 403, 403)])
def test_roles(client, request, who, read, write):
    headers = request.getfixturevalue(who).headers
    assert client.get(URL, headers=headers).status_code == read
    body = {"model": "m", "input_weight": 1, "output_weight": 1}
    assert client.post(URL, json=body, headers=headers).status_code == write


def test_consume_reports_raw_and_charged_tokens(client, staff, service, limited):
    client.post(URL, json={"model": MODEL, "input_weight": "0.5", "output_weight": "3"},
                headers=staff.headers)
    response = client.post("/api/chat-quota/consume/", json={
        "user_uuid": limited.uuid, "model": MODEL, "input_tokens": 9, "output_tokens": 20},
        headers=service.headers)
    assert response.status_code == 201
    event = response.json["event"]
    assert (event["tokens"], event["input_tokens"], event["output_tokens"],
            event["charged_tokens"]) == (29, 9, 20, 65)  # ceil(4.5 + 60)
    assert response.json["usage"]["daily_usage"] == 65
    refused = client.post("/api/chat-quota/consume/", json={
        "user_uuid": limited.uuid, "model": MODEL, "tokens": 12}, headers=service.headers)
    assert refused.status_code == 429 and refused.json["remaining"] == 35  # 12 * 3 = 36
    listed = client.get("/api/chat-quota/events/", headers=limited.headers).json
    assert [(e["tokens"], e["charged_tokens"]) for e in listed] == [(29, 65)]
