"""Dashboard alerts: the notice on /me/, and the staff pages for thresholds and webhooks."""

import re

import pytest
from sqlalchemy import select

from chatquota.extensions import db
from chatquota.models import Webhook
from chatquota.services import alerts, limits, metering

from .dashboard_helpers import session_csrf, sign_in
from .receiver import Receiver

SECRET = "a-secret-of-24-characters"


def use(app, account, tokens):
    with app.app_context():
        metering.consume(db.engine, app.config["TZ"], user_uuid=account.uuid, tokens=tokens,
                         enforce=False)


def stored(app) -> list[Webhook]:
    with app.app_context():
        return db.session.scalars(select(Webhook).order_by(Webhook.id)).all()


@pytest.fixture
def staff_browser(client, staff):
    sign_in(client, staff)
    return client


def add(client, **form):
    data = {"url": "https://hooks.example.com/x", "format": "json", "secret": SECRET,
            "events": "quota.threshold", "csrf_token": session_csrf(client), **form}
    return client.post("/admin/webhooks/", data=data)


def test_me_shows_a_notice_at_or_past_a_threshold(app, client, alice, fixed_clock):
    fixed_clock.set(2026, 11, 30, 12)
    with app.app_context():
        limits.set_quota(db.session, None, alice.uuid, {"daily_limit": 100, "weekly_limit": 90})
    sign_in(client, alice)
    use(app, alice, 40)
    assert "notice" not in client.get("/me/").text
    use(app, alice, 45)
    page = client.get("/me/").text
    assert "You have used 85% of your daily limit; it resets" in page
    assert "You have used 94% of your weekly limit; it resets" in page  # past 80, not 100
    assert '<p class="notice full"' not in page
    assert "2026-12-01 00:00 UTC" in page
    use(app, alice, 15)
    page = client.get("/me/").text
    assert "You have used 100% of your daily limit" in page
    assert '<p class="notice full" role="status">You have used 111% of your weekly' in page


def test_no_notice_without_thresholds_or_limits(app, alice, bob):
    with app.app_context():
        limits.set_quota(db.session, None, alice.uuid, {"daily_limit": 100})
        alerts.set_thresholds(db.session, None, [])
    use(app, alice, 95)
    use(app, bob, 10**6)  # unlimited
    for account in (alice, bob):
        browser = app.test_client()
        sign_in(browser, account)
        assert "You have used" not in browser.get("/me/").text


@pytest.mark.parametrize("path", ["/admin/webhooks/", f"/admin/webhooks/{'0' * 32}/"])
def test_webhook_pages_are_for_staff(client, support, path):
    assert client.get(path).status_code == 302  # signed out: to the sign-in page
    sign_in(client, support)
    assert client.get(path).status_code == 403
    assert "Webhooks" not in client.get("/admin/").text  # not in the menu either


def test_staff_see_the_menu_entry_and_an_empty_list(staff_browser):
    page = staff_browser.get("/admin/").text
    assert 'href="/admin/webhooks/">Webhooks</a>' in page
    page = staff_browser.get("/admin/webhooks/").text
    assert "No webhooks yet" in page
    assert 'name="thresholds" value="80, 100"' in page
    assert re.search(r'name="secret" value="[0-9a-f]{32}"', page)  # a fresh random one


def test_add_edit_test_and_delete_a_webhook(app, staff_browser):
    with Receiver() as receiver:
        response = add(staff_browser, url=receiver.url("/mm"), format="slack")
        assert response.status_code == 302
        [made] = stored(app)
        assert response.headers["Location"] == f"/admin/webhooks/{made.uuid}/?saved=added"
        assert (made.format, made.secret, made.event_types) == ("slack", SECRET,
                                                                ["quota.threshold"])
        page = staff_browser.get(response.headers["Location"]).text
        assert "Webhook added." in page and SECRET not in page

        csrf = session_csrf(staff_browser)
        edited = staff_browser.post(f"/admin/webhooks/{made.uuid}/", data={
            "url": receiver.url("/other"), "format": "slack", "secret": "", "csrf_token": csrf})
        assert edited.status_code == 302
        [after] = stored(app)
        assert (after.url, after.secret, after.event_types) == (receiver.url("/other"), SECRET, [])

        tested = staff_browser.post(f"/admin/webhooks/{made.uuid}/test/",
                                    data={"csrf_token": csrf})
        assert tested.status_code == 302
        [got] = receiver.wait_for(1)
        assert got.path == "/other" and got.verifies(SECRET)
        page = staff_browser.get(tested.headers["Location"]).text
        assert "Test event sent" in page and "HTTP 200" in page
        assert '<span class="state delivered">delivered</span>' in page

    deleted = staff_browser.post(f"/admin/webhooks/{made.uuid}/delete/", data={"csrf_token": csrf})
    assert deleted.headers["Location"] == "/admin/webhooks/?saved=deleted"
    assert stored(app) == []
    assert staff_browser.get(f"/admin/webhooks/{made.uuid}/").status_code == 404


@pytest.mark.parametrize("form, message", [
    ({"url": "ftp://files.example.com/"}, "Not a valid URL."),
    ({"secret": "short"}, "Length must be between 16 and 200."),
    ({"format": "xml"}, "Must be one of: json, slack."),
])
def test_bad_input_changes_nothing(app, staff_browser, form, message):
    response = add(staff_browser, **form)
    assert response.status_code == 400
    assert message in response.text and "Nothing was added" in response.text
    assert stored(app) == []


def test_thresholds_form(app, staff_browser):
    csrf = session_csrf(staff_browser)
    saved = staff_browser.post("/admin/webhooks/thresholds/",
                               data={"thresholds": "90%, 50", "csrf_token": csrf})
    assert saved.headers["Location"] == "/admin/webhooks/?saved=thresholds"
    with app.app_context():
        assert alerts.get_thresholds(db.session) == (50, 90)
    bad = staff_browser.post("/admin/webhooks/thresholds/",
                             data={"thresholds": "50, lots", "csrf_token": csrf})
    assert bad.status_code == 400 and "Nothing was changed" in bad.text
    assert 'value="50, lots"' in bad.text
    with app.app_context():
        assert alerts.get_thresholds(db.session) == (50, 90)
    staff_browser.post("/admin/webhooks/thresholds/", data={"thresholds": "", "csrf_token": csrf})
    with app.app_context():
        assert alerts.get_thresholds(db.session) == ()


def test_forms_need_the_csrf_token(app, staff_browser):
    response = staff_browser.post("/admin/webhooks/", data={"url": "https://x.org/",
                                                            "secret": SECRET})
    assert response.status_code == 400
    assert stored(app) == []
