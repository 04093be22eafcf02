"""Every user's quota: the service (SQL sorting) and GET /api/chat-quota/quotas/."""

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from chatquota.extensions import connection, db
from chatquota.services import accounts, limits
from chatquota.services.errors import InvalidValue
from chatquota.services.overview import list_quotas, parse_ordering
from chatquota.services.usage import quota_report
from .usage_helpers import spend

URL = "/api/chat-quota/quotas/"
UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
def population(app, fixed_clock, staff, make_account):
    """Users with usage yesterday, last week and today, and a mix of limits."""
    users = {name: make_account(name) for name in ("ann", "bea", "cid", "Dora")}
    fixed_clock.set(2026, 11, 2, 9)  # Monday of the week before
    spend(app, users["cid"].uuid, 500)
    fixed_clock.set(2026, 11, 29, 9)  # yesterday (Sunday)
    spend(app, users["ann"].uuid, 70)
    fixed_clock.set(2026, 11, 30, 9)  # today (Monday)
    spend(app, users["bea"].uuid, 30)
    spend(app, users["bea"].uuid, 20)
    spend(app, users["Dora"].uuid, 10)
    with app.app_context():
        limits.set_defaults(db.session, None, {"daily": 100})
        limits.set_quota(db.session, None, users["ann"].uuid, {"daily_limit": -1})
        limits.set_quota(db.session, None, users["cid"].uuid, {"monthly_limit": 400})
    fixed_clock.set(2026, 11, 30, 12)
    return users


def names(page) -> list[str]:
    return [row.username for row in page.items]


def test_rows_equal_the_per_user_report(session, population):
    page = list_quotas(session, UTC_ZONE, limit=50)
    assert page.total == 5
    for row in page.items:
        user = accounts.get_user(session, row.user_uuid)
        expected = quota_report(connection(), user, UTC_ZONE).fields()
        assert row.fields() == {"username": user.username, "user_uuid": user.uuid, **expected}


def test_usage_counts_only_current_windows(session, population):
    rows = {r.username: r.fields() for r in list_quotas(session, UTC_ZONE, limit=50).items}
    assert (rows["bea"]["daily_usage"], rows["bea"]["weekly_usage"],
            rows["bea"]["monthly_usage"]) == (50, 50, 50)
    assert (rows["ann"]["daily_usage"], rows["ann"]["weekly_usage"],
            rows["ann"]["monthly_usage"]) == (0, 0, 70)
    assert rows["cid"]["monthly_usage"] == 500 and rows["cid"]["weekly_usage"] == 0
    assert rows["cid"]["monthly_remaining"] == 0
    assert rows["ann"]["daily_remaining"] is None and rows["bea"]["daily_remaining"] == 50


@pytest.mark.parametrize("ordering, expected", [
    (None, ["ann", "bea", "cid", "Dora", "staff"]),
    ("-daily_usage", ["bea", "Dora", "ann", "cid", "staff"]),
    ("monthly_usage", ["staff", "Dora", "bea", "ann", "cid"]),
    ("daily_remaining", ["bea", "Dora", "cid", "staff", "ann"]),
    ("-daily_remaining", ["ann", "cid", "staff", "Dora", "bea"]),
    ("monthly_remaining", ["cid", "ann", "bea", "Dora", "staff"]),
    ("-monthly_limit,username", ["ann", "bea", "Dora", "staff", "cid"]),
    ("daily_limit", ["ann", "bea", "cid", "Dora", "staff"]),
    ("-username", ["staff", "Dora", "cid", "bea", "ann"]),
])
def test_ordering_is_done_in_sql_over_all_users(session, population, ordering, expected):
    assert names(list_quotas(session, UTC_ZONE, ordering=ordering, limit=50)) == expected


def test_sorting_spans_pages(session, population):
    first = list_quotas(session, UTC_ZONE, ordering="-daily_usage", offset=0, limit=2)
    second = list_quotas(session, UTC_ZONE, ordering="-daily_usage", offset=2, limit=2)
    assert names(first) + names(second) == ["bea", "Dora", "ann", "cid"]
    assert first.total == second.total == 5


def test_search_is_case_insensitive_and_literal(session, population, make_account):
    make_account("x_y%z")
    assert names(list_quotas(session, UTC_ZONE, search="DOR")) == ["Dora"]
    assert names(list_quotas(session, UTC_ZONE, search="_")) == ["x_y%z"]
    assert names(list_quotas(session, UTC_ZONE, search="%")) == ["x_y%z"]
    assert list_quotas(session, UTC_ZONE, search="nobody").total == 0


def test_unknown_ordering_field_is_refused():
    with pytest.raises(InvalidValue) as err:
        parse_ordering("-daily_usage,password")
    assert err.value.field == "ordering" and "'password'" in err.value.message


def test_query_count_does_not_grow_with_events_or_page(app, session, population):
    def statements():
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            list_quotas(session, UTC_ZONE, ordering="-monthly_usage", limit=50)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return [s for s in seen if s.lstrip().upper().startswith("SELECT")]

    before = statements()
    for _ in range(20):
        spend(app, population["ann"].uuid, 1)
    after = statements()
    assert len(before) == len(after) == 3  # defaults, count, the page
    assert all("usage_events" not in s for s in after)


def test_api_lists_quotas_sorted_and_paginated(client, population, staff):
    response = client.get(f"{URL}?ordering=-daily_usage&page_size=2", headers=staff.headers)
    assert response.status_code == 200
    assert response.headers["X-Result-Count"] == "5"
    assert [r["username"] for r in response.json] == ["bea", "Dora"]
    row = response.json[0]
    assert list(row)[:2] == ["username", "user_uuid"] and len(row) == 17
    assert row["user_uuid"] == population["bea"].uuid
    assert row["daily_reset_at"] == "2026-12-01T00:00:00Z"
    assert 'page=2>; rel="next"' in response.headers["Link"]


def test_api_search(client, population, support):
    response = client.get(f"{URL}?search=EA", headers=support.headers)
    assert response.status_code == 200
    assert [r["username"] for r in response.json] == ["bea"]


@pytest.mark.parametrize("who", ["alice", "service"])
def test_api_refuses_other_roles(client, request, who):
    response = client.get(URL, headers=request.getfixturevalue(who).headers)
    assert response.status_code == 403
    assert response.json == {"detail": "You do not have permission to perform this action."}


def test_api_needs_authentication(client):
    assert client.get(URL).status_code == 401


@pytest.mark.parametrize("ordering", ["password", "-", "daily_reset_at", "daily_usage,,-x"])
def test_api_unknown_ordering_is_400(client, staff, ordering):
    response = client.get(URL, query_string={"ordering": ordering}, headers=staff.headers)
    assert response.status_code == 400
    assert list(response.json) == ["ordering"]

