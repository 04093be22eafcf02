"""Dashboard pages: what they show, the limit forms, bad input, through Flask's test client."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from chatquota.dashboard import forms, present
from chatquota.extensions import db
from chatquota.models import AuditEntry, Quota, Setting
from chatquota.periods import windows
from chatquota.services import limits, metering, reservations
from chatquota.services.usage import PeriodUsage

from .dashboard_helpers import session_csrf, sign_in


def use(app, account, tokens: int):
    with app.app_context():
        metering.consume(db.engine, app.config["TZ"], user_uuid=account.uuid, tokens=tokens,
                         model="gpt-test", enforce=False)


def quota_of(app, account) -> tuple:
    with app.app_context():
        q = db.session.get(Quota, account.user.id)
        return q.daily_limit, q.weekly_limit, q.monthly_limit


def audit_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEntry))


def row_of(page: str, username: str) -> str:
    """Return the users-table row of `username`."""
    return re.search(rf"<tr>\s*<td><a [^>]*>{username}</a>.*?</tr>", page, re.S).group(0)


@pytest.fixture
def levels(app, make_account):
    """Users at different levels: 40 %, 85 %, 100 %, unlimited, and on the system default."""
    with app.app_context():
        limits.set_defaults(db.session, None, {"daily": 1000, "weekly": 5000, "monthly": 20000})
    made = {}
    for name, daily, used in [("low", 100, 40), ("high", 100, 85), ("full", 50, 50),
                              ("free", -1, 7), ("plain", None, 300)]:
        made[name] = make_account(name)
        with app.app_context():
            limits.set_quota(db.session, None, made[name].uuid, {"daily_limit": daily})
        use(app, made[name], used)
    return made


def test_users_page_shows_bars_by_level(client, staff, levels):
    sign_in(client, staff)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'class="usage ok"' in row_of(page, "low")
    assert 'class="usage warn"' in row_of(page, "high")
    assert 'class="usage full"' in row_of(page, "full")
    assert 'class="usage unlimited"' in row_of(page, "free")
    assert ">Unlimited<" in row_of(page, "free")
    assert "System default (1,000)" in row_of(page, "plain")
    assert "300 / 1,000 (30%)" in row_of(page, "plain")
    assert "Weekly" in page and "<svg" in page
    assert "482 tokens in 30 days" in page  # the all-users chart


def test_users_page_searches_sorts_and_paginates(client, staff, levels):
    sign_in(client, staff)
    found = client.get("/admin/?search=IG").get_data(as_text=True)
    assert ">high<" in found and ">low<" not in found
    assert "No user matches" in client.get("/admin/?search=nobody").get_data(as_text=True)
    ordered = client.get("/admin/?ordering=-daily_usage").get_data(as_text=True)
    names = re.findall(r'<td><a href="/admin/users/[0-9a-f]{32}/">(\w+)</a>', ordered)
    assert names[:5] == ["plain", "high", "full", "low", "free"]
    first = client.get("/admin/?page_size=2").get_data(as_text=True)
    assert "Page 1 of 3" in first and 'rel="next"' in first
    third = client.get("/admin/?page_size=2&page=3").get_data(as_text=True)
    assert re.findall(r'/">(\w+)</a></td>', third) == ["plain", "staff"]


@pytest.mark.parametrize("query", ["page=abc", "page=0", "page_size=100000", "ordering=evil"])
def test_users_page_ignores_malformed_arguments(client, staff, query):
    sign_in(client, staff)
    assert client.get(f"/admin/?{query}").status_code == 200


def test_nul_characters_get_a_400_page(client, staff):
    sign_in(client, staff)
    response = client.get("/admin/?search=%00")
    assert response.status_code == 400
    assert "Null characters are not allowed." in response.get_data(as_text=True)


def test_user_page_shows_limits_events_and_holds(app, client, staff, levels):
    sign_in(client, staff)
    with app.app_context():
        reservations.reserve(db.engine, app.config["TZ"], user_uuid=levels["low"].uuid,
                             tokens=12, ttl_seconds=600, model="held-model")
    page = client.get(f"/admin/users/{levels['low'].uuid}/").get_data(as_text=True)
    assert "held-model" in page and "12 tokens are held" in page
    assert "gpt-test" in page and "(1 of 1)" in page
    assert "System default (5,000)" in page  # the weekly choice names its fallback
    assert re.search(r'name="daily_mode" value="number" checked', page)
    assert 'name="daily_value" value="100"' in page


@pytest.mark.parametrize("path", ["/admin/users/" + "0" * 32 + "/", "/admin/users/not-a-uuid/"])
def test_unknown_user_page_is_a_404_page(client, staff, path):
    sign_in(client, staff)
    response = client.get(path)
    assert response.status_code == 404 and "text/html" in response.content_type


def test_setting_limits_saves_all_three_and_audits(app, client, staff, alice):
    sign_in(client, staff)
    response = client.post(f"/admin/users/{alice.uuid}/", data={
        "csrf_token": session_csrf(client), "daily_mode": "number", "daily_value": "10,000",
        "weekly_mode": "unlimited", "monthly_mode": "default", "monthly_value": "999"})
    assert response.status_code == 302
    assert quota_of(app, alice) == (10000, -1, None)
    assert "Limits saved." in client.get(response.headers["Location"]).get_data(as_text=True)
    usage = client.get(f"/api/chat-quota/usage/?user_uuid={alice.uuid}", headers=staff.headers)
    assert usage.json["daily_limit"] == 10000 and usage.json["weekly_remaining"] is None
    audit = client.get("/admin/audit/").get_data(as_text=True)
    assert "daily_limit" in audit and "10,000" in audit and "weekly_limit" in audit


def test_audit_shows_booleans_as_true_and_false(app, client, staff, alice):
    client.patch(f"/api/users/{alice.uuid}/", json={"is_active": False}, headers=staff.headers)
    sign_in(client, staff)
    audit = client.get("/admin/audit/").get_data(as_text=True)
    assert ('<td data-label="Field">is_active</td><td data-label="From">true</td>'
            '<td data-label="To">false</td>') in audit


@pytest.mark.parametrize("field, value, message", [
    ("daily_value", "abc", "A valid integer is required."),
    ("daily_value", "", "Enter a number of tokens."),
    ("daily_value", "-5", "greater than or equal to 0"),
    ("daily_value", "1.5", "A valid integer is required."),
    ("daily_value", str(2**53), "less than or equal to"),
    ("daily_value", "1,5", "A valid integer is required."),
    ("daily_mode", "bogus", "Choose one of the options."),
])
def test_bad_limit_input_re_renders_and_changes_nothing(app, client, staff, alice,
                                                        field, value, message):
    sign_in(client, staff)
    before, audited = quota_of(app, alice), audit_count(app)
    form = {"csrf_token": session_csrf(client), "daily_mode": "number", "daily_value": "1",
            "weekly_mode": "unlimited", "monthly_mode": "number", "monthly_value": "700"}
    response = client.post(f"/admin/users/{alice.uuid}/", data=form | {field: value})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page and "Nothing was changed" in page
    assert 'name="monthly_value" value="700"' in page  # the submitted values are kept
    assert quota_of(app, alice) == before and audit_count(app) == audited


def test_staff_changes_defaults(app, client, staff):
    sign_in(client, staff)
    response = client.post("/admin/defaults/", data={
        "csrf_token": session_csrf(client), "daily_mode": "number", "daily_value": "500",
        "weekly_mode": "unlimited", "monthly_mode": "number", "monthly_value": "9000"})
    assert response.status_code == 302
    with app.app_context():
        assert limits.get_defaults(db.session) == {"daily": 500, "weekly": -1, "monthly": 9000}
    assert "Defaults saved." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_bad_defaults_change_nothing(app, client, staff):
    sign_in(client, staff)
    response = client.post("/admin/defaults/", data={
        "csrf_token": session_csrf(client), "daily_mode": "default",
        "weekly_mode": "number", "weekly_value": "x", "monthly_mode": "unlimited"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and page.count('role="alert"') == 3
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Setting)) == 0


def test_me_shows_own_bars_and_reset_countdown(app, client, limited, fixed_clock):
    use(app, limited, 90)
    sign_in(client, limited)
    page = client.get("/me/").get_data(as_text=True)
    assert "90 / 100 (90%)" in page and 'class="usage warn"' in page
    assert '<time datetime="2026-12-01T00:00:00+00:00" data-countdown>2026-12-01 00:00 UTC' in page
    assert "countdown.js" in page


def test_pages_send_security_headers(client, staff):
    sign_in(client, staff)
    response = client.get("/admin/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    script = client.get("/dashboard/static/countdown.js")
    assert script.status_code == 200
    script.close()


@pytest.mark.parametrize("limit, used, level, width", [
    (100, 79, "ok", 79.0), (100, 80, "warn", 80.0), (100, 100, "full", 100.0),
    (100, 250, "full", 100.0), (0, 0, "full", 100.0), (-1, 10**9, "unlimited", 0.0),
])
def test_bar_levels(limit, used, level, width):
    window = windows(datetime(2026, 1, 1, tzinfo=UTC), ZoneInfo("UTC"))[0]
    bar = present.bar(PeriodUsage(window, limit, 5, used))
    assert (bar.level, bar.width) == (level, width)


def test_form_initial_values():
    form = forms.initial({"daily": None, "weekly": -1, "monthly": 5})
    assert form.modes == {"daily": "default", "weekly": "unlimited", "monthly": "number"}
    assert form.values["monthly"] == "5"


def test_usage_is_shown_per_model_on_the_user_page_and_on_me(app, client, staff, alice,
                                                              fixed_clock):
    with app.app_context():
        for model, tokens, days_ago in [("llama-70b", 300, 0), ("llama-70b", 200, 3),
                                        ("qwen-7b", 50, 1), (None, 7, 2), ("old", 9, 40)]:
            fixed_clock.instant = datetime(2026, 11, 30, 12, tzinfo=UTC) - timedelta(days=days_ago)
            metering.consume(db.engine, app.config["TZ"], user_uuid=alice.uuid, model=model,
                             tokens=tokens, input_tokens=tokens - 5, output_tokens=5,
                             enforce=False)
    fixed_clock.set(2026, 11, 30, 12)
    sign_in(client, staff)
    page = client.get(f"/admin/users/{alice.uuid}/").get_data(as_text=True)
    table = page[page.index("By model, last 30 days"):page.index("Recent events")]
    rows = re.findall(r'data-label="Model">([^<]*)</td><td class="num" data-label="Calls">(\d+)'
                      r'</td>.*?data-label="Charged">([\d,]+)</td>', table)
    assert rows == [("llama-70b", "2", "500"), ("qwen-7b", "1", "50"), ("—", "1", "7")]
    own = app.test_client()
    sign_in(own, alice)
    assert "llama-70b" in own.get("/me/").get_data(as_text=True)
