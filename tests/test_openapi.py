"""The OpenAPI document: valid, complete, truthful about the seed endpoints; Swagger UI offline."""

import json
import re

import pytest
import yaml
from flask_smorest.spec.plugins import FlaskPlugin
from openapi_spec_validator import validate

from chatquota.openapi import document

META_ENDPOINTS = {"docs.schema", "docs.swagger_ui", "docs.swagger_ui_asset", "docs.static"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def doc(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def test_document_is_valid_openapi(doc):
    validate(doc)
    assert doc["openapi"].startswith("3.")


def test_yaml_is_the_same_document(client, doc):
    response = client.get("/api/schema/?format=yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert yaml.safe_load(response.text) == doc


def test_unknown_format_is_a_400(client):
    response = client.get("/api/schema/?format=xml")
    assert response.status_code == 400
    assert response.json == {"format": ["Must be one of: json, yaml."]}


def test_cli_prints_the_served_document(runner, doc):
    result = runner.invoke(args=["openapi"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == doc
    result = runner.invoke(args=["openapi", "--format", "yaml"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == doc


def test_cli_refuses_unknown_format(runner):
    result = runner.invoke(args=["openapi", "--format", "xml"])
    assert result.exit_code != 0


def test_every_api_route_is_documented_and_nothing_else(app, doc):
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in META_ENDPOINTS:
            continue
        if rule.rule.startswith("/api/") or rule.rule == "/health/":
            path = FlaskPlugin.flaskpath2openapi(rule.rule)
            methods = {m.lower() for m in rule.methods - IGNORED_METHODS}
            routes.setdefault(path, set()).update(methods)
    documented = {path: set(item) - {"parameters"} for path, item in doc["paths"].items()}
    assert documented == routes


def test_meta_routes_are_not_in_the_document(doc):
    assert not any(path.startswith(("/api/schema", "/api/docs")) for path in doc["paths"])


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def test_operation_ids_are_unique_snake_case(doc):
    ids = [operation["operationId"] for _, _, operation in _operations(doc)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids


def test_token_security_everywhere_but_health(doc):
    assert doc["components"]["securitySchemes"]["Token"] == {
        "type": "apiKey", "in": "header", "name": "Authorization", "description": "Token <key>"}
    for path, method, operation in _operations(doc):
        expected = [] if path == "/health/" else [{"Token": []}]
        assert operation["security"] == expected, (method, path)
        if path != "/health/":
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_no_catch_all_response(doc):
    for path, method, operation in _operations(doc):
        assert "default" not in operation["responses"], (method, path)
        assert all(code.isdigit() for code in operation["responses"]), (method, path)


def test_error_bodies_are_the_ones_errors_py_sends(doc):
    schemas, responses = doc["components"]["schemas"], doc["components"]["responses"]
    assert schemas["Error"]["properties"] == {"detail": {"type": "string"}}
    assert schemas["ValidationError"]["additionalProperties"] == {
        "type": "array", "items": {"type": "string"}}
    bad_request = responses["BadRequest"]["content"]["application/json"]["schema"]
    assert bad_request == {"oneOf": [{"$ref": "#/components/schemas/ValidationError"},
                                     {"$ref": "#/components/schemas/Error"}]}
    assert "WWW-Authenticate" in responses["Unauthorized"]["headers"]
    for name in ("Unauthorized", "Forbidden", "NotFound", "PayloadTooLarge", "UnsupportedMediaType"):
        assert responses[name]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}


def test_refusals_document_body_and_retry_after(doc):
    refusals = [(path, op["responses"]["429"]) for path, _, op in _operations(doc)
                if "429" in op["responses"]]
    assert {path for path, _ in refusals} >= {"/api/chat-quota/check/", "/api/chat-quota/consume/"}
    for path, response in refusals:
        response = doc["components"]["responses"][response["$ref"].rpartition("/")[2]] \
            if "$ref" in response else response
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Refusal"}, path
        assert response["headers"]["Retry-After"]["schema"]["type"] == "integer", path


def test_writes_document_body_errors(doc):
    for path, method, operation in _operations(doc):
        if method in ("post", "put", "patch"):
            assert {"400", "413", "415"} <= set(operation["responses"]), (method, path)


def test_every_operation_documents_an_unwritable_database(doc):
    for path, method, operation in _operations(doc):
        assert "503" in operation["responses"], (method, path)
    health = doc["paths"]["/health/"]["get"]["responses"]["503"]
    assert health["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Health"}


def test_usage_keeps_the_seed_contract(doc):
    operation = doc["paths"]["/api/chat-quota/usage/"]["get"]
    assert operation["operationId"] == "chat_quota_usage_retrieve"
    [param] = operation["parameters"]
    assert param["name"] == "user_uuid" and param["in"] == "query" and not param["required"]
    assert param["schema"] == {"type": "string", "format": "uuid"}
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "503"}
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TokenQuotaUsageResponse"}
    fields = doc["components"]["schemas"]["TokenQuotaUsageResponse"]["properties"]
    assert len(fields) == 15
    for period in ("daily", "weekly", "monthly"):
        assert fields[f"{period}_limit"]["type"] == "integer" and fields[f"{period}_limit"]["nullable"]
        assert fields[f"{period}_usage"]["type"] == "integer"
        assert fields[f"{period}_remaining"]["type"] == "integer"
        assert fields[f"{period}_reset_at"].items() >= {"type": "string", "format": "date-time"}.items()
        assert fields[f"{period}_system_default"]["type"] == "integer"


def test_set_quota_keeps_the_seed_contract(doc):
    operation = doc["paths"]["/api/chat-quota/set_quota/"]["post"]
    assert operation["operationId"] == "chat_quota_set_quota"
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SetTokenQuotaRequest"}
    assert "content" not in operation["responses"]["200"]  # an empty body
    assert "left out keeps" in operation["description"]
    body = doc["components"]["schemas"]["SetTokenQuotaRequest"]
    assert body["required"] == ["user_uuid"]
    assert body["properties"]["user_uuid"]["type"] == "string"
    assert body["properties"]["user_uuid"]["format"] == "uuid"
    for field in ("daily_limit", "weekly_limit", "monthly_limit"):
        assert body["properties"][field]["type"] == "integer"
        assert body["properties"][field]["nullable"] is True
        assert body["properties"][field]["minimum"] == -1


def test_roles_are_named(doc):
    assert "Role: staff or support." in doc["paths"]["/api/chat-quota/set_quota/"]["post"]["description"]


def test_schema_and_docs_need_no_token(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_document_is_built_once(app):
    assert document(app) is document(app)


def test_swagger_ui_page_points_at_the_schema_and_local_assets(client):
    response = client.get("/api/docs/")
    assert response.mimetype == "text/html"
    page = response.text
    assert '"/api/schema/"' in page
    assert "persistAuthorization" not in page  # a staff key must not linger in localStorage
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/api/docs/") for s in sources), sources
    assert "http://" not in page and "https://" not in page  # no CDN: works offline
    for source in sources:
        with client.get(source) as asset:
            assert asset.status_code == 200, source
            assert len(asset.data) > 100, source


def test_swagger_ui_page_may_not_be_framed_or_sniffed(client):
    response = client.get("/api/docs/")
    policy = dict(d.strip().split(" ", 1) for d in response.headers["Content-Security-Policy"]
                  .split(";"))
    assert policy["frame-ancestors"] == "'none'" and response.headers["X-Frame-Options"] == "DENY"
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"  # the document and "Try it out"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.text and "<style>" not in response.text  # nothing inline


@pytest.mark.parametrize("method, path, kwargs, status", [
    ("get", "/health/", {}, 200),
    ("get", "/api/schema/", {}, 200),
    ("get", "/api/chat-quota/usage/", {}, 401),
    ("get", "/api/chat-quota/usage/", {"staff": True}, 200),
    ("post", "/api/chat-quota/set_quota/", {"staff": True, "json": {}}, 400),
    ("post", "/api/chat-quota/set_quota/", {"staff": True, "data": "x" * 70000,
                                            "content_type": "application/json"}, 413),
    ("get", "/api/nope/", {}, 404),
    ("delete", "/api/chat-quota/usage/", {"staff": True}, 405),
])
def test_every_api_response_says_nosniff(client, staff, method, path, kwargs, status):
    headers = staff.headers if kwargs.pop("staff", False) else {}
    response = getattr(client, method)(path, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name, mimetypes", [
    ("swagger-ui-bundle.js", {"text/javascript", "application/javascript"}),
    ("swagger-ui-standalone-preset.js", {"text/javascript", "application/javascript"}),
    ("swagger-ui.css", {"text/css"}),
    ("favicon-32x32.png", {"image/png"}),
])
def test_swagger_ui_assets_have_their_types(client, name, mimetypes):
    with client.get(f"/api/docs/{name}") as response:
        assert response.status_code == 200
        assert response.mimetype in mimetypes


@pytest.mark.parametrize("name", ["index.html", "swagger-ui.js.map", "..%2fswagger-ui.css", "x"])
def test_only_the_listed_assets_are_served(client, name):
    response = client.get(f"/api/docs/{name}")
    assert response.status_code == 404
    assert response.json == {"detail": "Not found."}


def test_unknown_body_fields_are_a_400_naming_them(client, staff):
    response = client.post("/api/chat-quota/set_quota/", headers=staff.headers,
                           json={"user_uuid": staff.uuid, "hourly_limit": 5})
    assert response.status_code == 400
    assert response.json == {"hourly_limit": ["Unknown field."]}


@pytest.mark.parametrize("path", ["/api/chat-quota/audit/", "/api/chat-quota/quotas/",
                                  "/api/chat-quota/events/", "/api/users/"])
def test_a_page_far_past_the_end_is_a_404_not_a_500(client, staff, path):
    # Found by the contract test: the offset overflowed SQLite's 64-bit integer.
    response = client.get(f"{path}?page=61489146912365174&page_size=150", headers=staff.headers)
    assert response.status_code == 404
    assert response.json == {"detail": "Invalid page."}


def test_refusals_name_their_subject(doc):
    refusal = doc["components"]["schemas"]["Refusal"]["properties"]
    assert refusal["scope"]["enum"] == ["user", "group"]
    assert refusal["group_uuid"]["format"] == "uuid"
    assert "of group 'physics' exceeded" in refusal["detail"]["description"]


def test_how_a_report_without_a_split_is_charged_is_documented(doc):
    consume = doc["components"]["schemas"]["ConsumeRequest"]["description"]
    assert "max(input_weight, output_weight)" in consume
    weights = doc["paths"]["/api/chat-quota/model-weights/"]["post"]["description"]
    assert "only `tokens`" in weights and "Role: staff." in weights
