"""Dashboard sign-in, sessions, permissions and CSRF, through Flask's test client."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from chatquota.extensions import db
from chatquota.models import ApiToken, Quota, Setting, WebSession
from chatquota.services import accounts
from chatquota.services.web_sessions import _digest

from .dashboard_helpers import csrf_of, session_csrf, set_cookie_header, sign_in

ADMIN_PAGES = ("/admin/", "/admin/defaults/", "/admin/audit/")


def session_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(WebSession))


@pytest.mark.parametrize("path", ADMIN_PAGES + ("/me/", "/admin/users/" + "0" * 32 + "/"))
def test_anonymous_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in/?next=" + path.rstrip("/"))


def test_sign_in_opens_a_session_with_a_safe_cookie(app, client, staff):
    response = sign_in(client, staff, next_path="/admin/audit/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/audit/"
    cookie = set_cookie_header(response, "chatquota_session")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    with app.app_context():
        row = db.session.scalar(select(WebSession))
        assert row.id == _digest(value) != value
        assert row.user_id == staff.user.id
    assert client.get("/admin/audit/").status_code == 200


def test_cookie_is_secure_over_https(app, staff):
    client = app.test_client()
    form = client.get("/sign-in/", base_url="https://localhost")
    response = client.post("/sign-in/", base_url="https://localhost",
                           data={"token": staff.key, "csrf_token": csrf_of(form)})
    assert "Secure" in set_cookie_header(response, "chatquota_session")


@pytest.mark.parametrize("token", ["", "cq_not-a-real-token-at-all", "x" * 300])
def test_bad_token_re_renders_the_form(app, client, staff, token):
    form = client.get("/sign-in/")
    response = client.post("/sign-in/", data={"token": token, "csrf_token": csrf_of(form)})
    assert response.status_code == 400
    assert "This token is not valid" in response.get_data(as_text=True)
    assert not any(h.startswith("chatquota_session=")
                   for h in response.headers.getlist("Set-Cookie"))
    assert session_count(app) == 0


@pytest.mark.parametrize("csrf", [None, "", "forged"])
def test_sign_in_needs_the_form_csrf_token(app, client, staff, csrf):
    client.get("/sign-in/")
    data = {"token": staff.key} | ({} if csrf is None else {"csrf_token": csrf})
    assert client.post("/sign-in/", data=data).status_code == 400
    assert session_count(app) == 0


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "admin/"])
def test_sign_in_never_redirects_off_site(client, staff, target):
    response = sign_in(client, staff, next_path=target)
    assert response.headers["Location"] == "/"


def test_ordinary_user_sees_only_me(client, alice):
    sign_in(client, alice)
    me = client.get("/me/")
    assert me.status_code == 200
    assert 'href="/admin/"' not in me.get_data(as_text=True)
    for path in ADMIN_PAGES + (f"/admin/users/{alice.uuid}/",):
        response = client.get(path)
        assert response.status_code == 403
        assert "Not allowed" in response.get_data(as_text=True)
    assert client.get("/").headers["Location"] == "/me/"


def test_service_account_is_not_an_administrator(client, service):
    sign_in(client, service)
    assert client.get("/admin/").status_code == 403


def test_ordinary_user_cannot_post_limits(app, client, alice, bob):
    sign_in(client, alice)
    response = client.post(f"/admin/users/{bob.uuid}/", data={
        "csrf_token": session_csrf(client), "daily_mode": "unlimited",
        "weekly_mode": "unlimited", "monthly_mode": "unlimited"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Quota, bob.user.id).daily_limit is None


def test_support_reads_defaults_but_cannot_change_them(app, client, support):
    sign_in(client, support)
    page = client.get("/admin/defaults/").get_data(as_text=True)
    assert "Only staff change the defaults" in page
    assert "Save defaults" not in page and 'action="/admin/defaults/"' not in page
    response = client.post("/admin/defaults/", data={
        "csrf_token": session_csrf(client), "daily_mode": "number", "daily_value": "5",
        "weekly_mode": "unlimited", "monthly_mode": "unlimited"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Setting)) == 0


def test_support_may_set_a_users_limits(app, client, support, alice):
    sign_in(client, support)
    response = client.post(f"/admin/users/{alice.uuid}/", data={
        "csrf_token": session_csrf(client), "daily_mode": "number", "daily_value": "70",
        "weekly_mode": "default", "monthly_mode": "default"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Quota, alice.user.id).daily_limit == 70


@pytest.mark.parametrize("csrf", [None, "", "wrong"])
def test_post_without_the_session_csrf_token_changes_nothing(app, client, staff, alice, csrf):
    sign_in(client, staff)
    form = {"daily_mode": "number", "daily_value": "5", "weekly_mode": "default",
            "monthly_mode": "default"} | ({} if csrf is None else {"csrf_token": csrf})
    assert client.post(f"/admin/users/{alice.uuid}/", data=form).status_code == 400
    defaults = {"daily_mode": "number", "daily_value": "5", "weekly_mode": "unlimited",
                "monthly_mode": "unlimited"} | ({} if csrf is None else {"csrf_token": csrf})
    assert client.post("/admin/defaults/", data=defaults).status_code == 400
    assert client.post("/sign-out/", data={"csrf_token": csrf or ""}).status_code == 400
    with app.app_context():
        assert db.session.get(Quota, alice.user.id).daily_limit is None
        assert db.session.scalar(select(func.count()).select_from(Setting)) == 0
    assert session_count(app) == 1


def test_another_sessions_csrf_token_is_refused(app, staff, alice):
    first, second = app.test_client(), app.test_client()
    sign_in(first, staff)
    sign_in(second, staff)
    response = second.post(f"/admin/users/{alice.uuid}/", data={
        "csrf_token": session_csrf(first), "daily_mode": "unlimited",
        "weekly_mode": "default", "monthly_mode": "default"})
    assert response.status_code == 400


def test_sign_out_ends_the_session(app, client, staff):
    response = sign_in(client, staff)
    cookie = set_cookie_header(response, "chatquota_session").split(";")[0]
    out = client.post("/sign-out/", data={"csrf_token": session_csrf(client)})
    assert out.status_code == 302 and out.headers["Location"] == "/sign-in/"
    assert "chatquota_session=;" in set_cookie_header(out, "chatquota_session")
    assert session_count(app) == 0
    replay = app.test_client()
    replay.set_cookie(*cookie.split("=", 1))
    assert replay.get("/admin/").status_code == 302


def test_revoking_the_token_ends_the_session_at_once(app, client, staff):
    sign_in(client, staff)
    assert client.get("/admin/").status_code == 200
    with app.app_context():
        token = db.session.scalar(select(WebSession)).token_id
        token_uuid = db.session.get(ApiToken, token).uuid
        accounts.revoke_token(db.session, None, staff.user, token_uuid)
    assert client.get("/admin/").headers["Location"].startswith("/sign-in/")


def test_deactivating_the_user_ends_the_session(app, client, staff):
    sign_in(client, staff)
    with app.app_context():
        user = accounts.get_user(db.session, staff.uuid)
        user.is_active = False
        db.session.commit()
    assert client.get("/me/").status_code == 302


def test_deactivation_ends_sessions_for_good(app, client, staff, alice):
    sign_in(client, alice)
    other = app.test_client()
    sign_in(other, staff)
    assert client.get("/me/").status_code == 200 and session_count(app) == 2
    response = other.patch(f"/api/users/{alice.uuid}/", json={"is_active": False},
                           headers=staff.headers)
    assert response.status_code == 200
    assert session_count(app) == 1  # the staff user's own session stays
    assert other.patch(f"/api/users/{alice.uuid}/", json={"is_active": True},
                       headers=staff.headers).status_code == 200
    assert client.get("/me/").headers["Location"].startswith("/sign-in/")


def test_a_failed_deactivation_keeps_the_sessions(app, client, staff):
    sign_in(client, staff)
    response = client.patch(f"/api/users/{staff.uuid}/", json={"is_active": False},
                            headers=staff.headers)
    assert response.status_code == 409  # the last active staff user
    assert session_count(app) == 1 and client.get("/me/").status_code == 200


def test_reactivation_drops_sessions_left_from_before(app, client, staff, alice):
    sign_in(client, alice)
    with app.app_context():  # deactivated the old way: sessions stayed behind
        user = accounts.get_user(db.session, alice.uuid)
        user.is_active = False
        db.session.commit()
        accounts.update_user(db.session, None, alice.uuid, {"is_active": True})
    assert session_count(app) == 0
    assert client.get("/me/").status_code == 302


def test_other_changes_keep_the_sessions(app, client, staff, alice):
    sign_in(client, alice)
    with app.app_context():
        accounts.update_user(db.session, None, alice.uuid, {"is_active": True, "is_support": True})
    assert session_count(app) == 1 and client.get("/me/").status_code == 200


def test_session_expires(app, client, staff, fixed_clock):
    sign_in(client, staff)
    assert client.get("/me/").status_code == 200
    fixed_clock.instant += timedelta(hours=app.config["SESSION_HOURS"], seconds=1)
    assert client.get("/me/").status_code == 302


def test_signing_in_again_replaces_the_old_session(app, client, staff, alice):
    sign_in(client, staff)
    assert client.get("/sign-in/").status_code == 302  # signed in: no form
    response = client.post("/sign-in/", data={"token": alice.key,
                                              "csrf_token": session_csrf(client)})
    assert response.status_code == 302
    assert session_count(app) == 1
    assert client.get("/admin/").status_code == 403  # now alice
