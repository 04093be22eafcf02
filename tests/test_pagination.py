"""Waldur-style pagination, shown on /api/users/ and checked on every list."""

import pytest

LISTS = ["/api/users/", "/api/chat-quota/quotas/", "/api/chat-quota/events/",
         "/api/chat-quota/audit/"]


@pytest.fixture
def twelve_users(staff, make_account):
    for i in range(11):
        make_account(f"user{i:02}")
    return staff


def links(response) -> dict[str, str]:
    """Parse a Link header into {rel: url}."""
    parts = [p.strip() for p in response.headers.get("Link", "").split(",") if p.strip()]
    return {p.split('rel="')[1].rstrip('"'): p.split(">")[0].lstrip("<") for p in parts}


def test_first_page_has_default_size_count_and_next(client, twelve_users):
    response = client.get("/api/users/", headers=twelve_users.headers)
    assert response.status_code == 200
    assert isinstance(response.json, list) and len(response.json) == 10
    assert response.headers["X-Result-Count"] == "12"
    rels = links(response)
    assert rels["next"] == "http://localhost/api/users/?page=2"
    assert rels["last"] == "http://localhost/api/users/?page=2"
    assert "prev" not in rels


def test_last_page_has_rest_and_prev(client, twelve_users):
    response = client.get("/api/users/?page=2", headers=twelve_users.headers)
    assert [u["username"] for u in response.json] == ["user09", "user10"]
    rels = links(response)
    assert rels["prev"] == "http://localhost/api/users/?page=1"
    assert "next" not in rels


def test_links_keep_other_query_parameters(client, twelve_users):
    response = client.get("/api/users/?search=user&page_size=3&page=2",
                          headers=twelve_users.headers)
    assert response.headers["X-Result-Count"] == "11"
    assert [u["username"] for u in response.json] == ["user03", "user04", "user05"]
    rels = links(response)
    assert rels["next"] == "http://localhost/api/users/?search=user&page_size=3&page=3"
    assert rels["prev"] == "http://localhost/api/users/?search=user&page_size=3&page=1"
    assert rels["last"] == "http://localhost/api/users/?search=user&page_size=3&page=4"


def test_page_size_200_is_allowed(client, twelve_users):
    response = client.get("/api/users/?page_size=200", headers=twelve_users.headers)
    assert response.status_code == 200
    assert len(response.json) == 12


@pytest.mark.parametrize("url", LISTS)
def test_page_past_the_end_is_404(client, staff, url):
    response = client.get(f"{url}?page=99", headers=staff.headers)
    assert response.status_code == 404
    assert response.json == {"detail": "Invalid page."}


@pytest.mark.parametrize("query, field", [
    ("page=0", "page"), ("page=abc", "page"), ("page=1.5", "page"),
    ("page_size=201", "page_size"), ("page_size=0", "page_size"), ("page_size=x", "page_size"),
])
@pytest.mark.parametrize("url", LISTS)
def test_bad_page_parameters_are_400(client, staff, url, query, field):
    response = client.get(f"{url}?{query}", headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == [field]


def test_empty_list_first_page_is_empty_array(client, staff):
    response = client.get("/api/chat-quota/events/", headers=staff.headers)
    assert response.status_code == 200
    assert response.json == []
    assert response.headers["X-Result-Count"] == "0"
    assert set(links(response)) == {"first", "last"}


def test_openapi_documents_page_parameters_and_headers(app):
    spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    paths = LISTS + ["/api/users/{user_uuid}/tokens/"]
    for path in paths:
        operation = spec["paths"][path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"page", "page_size"} <= names, path
        assert set(operation["responses"]["200"]["headers"]) == {"X-Result-Count", "Link"}
