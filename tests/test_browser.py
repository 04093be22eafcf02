"""End to end: headless Chromium drives the dashboard and Swagger UI on a real gunicorn.

Uses Debian's `chromium` (never a downloaded browser) through Playwright's
Python package. Set CHATQUOTA_SCREENSHOT=docs/screenshot-users.png to also
save the users page the test sees.
"""

import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from chatquota import clock, create_app, deliverer
from chatquota.extensions import db
from chatquota.periods import PERIODS
from chatquota.services import accounts, groups, limits, metering, webhooks, weights

from .live import LiveServer, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)",
)

# name -> (daily, weekly, monthly limits; None = system default), tokens used today
USERS = {
    "alice": ((100, 1000, 5000), 42),
    "bob": ((100, 500, None), 86),
    "carol": ((50, 200, 1000), 50),
    "dave": ((-1, -1, -1), 1234),
    "erin": ((None, None, None), 850),
}


def _use(app, user_uuid: str, tokens: int, days_ago: int, monkeypatch):
    instant = clock.now() - timedelta(days=days_ago)
    with monkeypatch.context() as m:
        m.setattr(clock, "now", lambda: instant)
        metering.consume(db.engine, app.config["TZ"], user_uuid=user_uuid, tokens=tokens,
                         model="demo-model", enforce=False)


def seed(database_url: str, monkeypatch) -> tuple[str, dict[str, str]]:
    """Create staff `admin`, users at every level and some history; return key and uuids."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x"})
    uuids = {}
    with app.app_context():
        db.create_all()
        limits.set_defaults(db.session, None, {"daily": 1000, "weekly": 5000, "monthly": 20000})
        admin = accounts.create_user(db.session, None, "admin", is_staff=True)
        _token, key = accounts.issue_token(db.session, None, admin)
        for name, ((daily, weekly, monthly), used) in USERS.items():
            user = accounts.create_user(db.session, None, name)
            limits.set_quota(db.session, None, user.uuid, {
                "daily_limit": daily, "weekly_limit": weekly, "monthly_limit": monthly})
            _use(app, user.uuid, used, 0, monkeypatch)
            uuids[name] = user.uuid
        frank = accounts.create_user(db.session, None, "frank")
        limits.set_quota(db.session, None, frank.uuid, {f"{p}_limit": -1 for p in PERIODS})
        for days_ago in range(1, 30):
            _use(app, frank.uuid, 400 + (days_ago * 577) % 900, days_ago, monkeypatch)
        db.engine.dispose()
    return key, uuids


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One seeded database behind one gunicorn for the module; yields (server, key, uuids)."""
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'browser.sqlite3'}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        key, uuids = seed(url, monkeypatch)
    with LiveServer(url, workers=2, log_path=folder / "gunicorn.log") as server:
        yield server, key, uuids


def fills(page) -> dict[str, str]:
    """Return the computed fill colour of the bars of each level on the page."""
    return page.evaluate("""() => Object.fromEntries(["ok", "warn", "full"].map(level => {
        const el = document.querySelector(`.usage.${level} .fill`);
        return [level, el && getComputedStyle(el).fill];
    }))""")


def test_staff_finds_a_user_and_changes_a_limit(site, browser):
    server, key, uuids = site
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(server.url + "/admin/")
    assert "/sign-in/" in page.url
    page.fill("#token", key)
    page.click("form button[type=submit]")
    page.wait_for_url(server.url + "/admin/")
    colours = fills(page)
    assert len(set(colours.values())) == 3 and None not in colours.values(), colours
    if os.environ.get("CHATQUOTA_SCREENSHOT"):
        page.screenshot(path=os.environ["CHATQUOTA_SCREENSHOT"], full_page=True)

    page.fill("input[name=search]", "car")
    page.press("input[name=search]", "Enter")
    page.wait_for_url("**search=car**")
    assert page.locator("table.users tbody tr").count() == 1
    assert "full" in page.locator("table.users tbody tr .usage").first.get_attribute("class")
    page.click("table.users a:text-is('carol')")

    page.check("input[name=daily_mode][value=number]")
    page.fill("input[name=daily_value]", "200")
    page.click("text=Save limits")
    page.wait_for_selector("text=Limits saved.")
    daily = page.locator(".bars .usage").first
    assert daily.get_attribute("class") == "usage ok"
    assert "50 / 200 (25%)" in daily.inner_text()
    assert page.locator("time[data-countdown]").first.inner_text().startswith("in ")

    api = requests.get(f"{server.url}/api/chat-quota/usage/?user_uuid={uuids['carol']}",
                       headers={"Authorization": f"Token {key}"}, timeout=10)
    assert api.json()["daily_limit"] == 200 and api.json()["daily_remaining"] == 150
    assert errors == []


def test_swagger_ui_works_offline_with_a_token(site, browser):
    server, key, _uuids = site
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    elsewhere = []
    page.on("request", lambda r: None if r.url.startswith(server.url)
            else elsewhere.append(r.url))
    errors = []  # a CSP violation is a console error
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(server.url + "/api/docs/")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= 20  # every operation is listed
    page.click("button.authorize")
    page.fill(".modal-ux input", f"Token {key}")
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")

    page.click("[data-path='/api/chat-quota/usage/'] >> xpath=..")
    page.click("button.try-out__btn")
    page.click("button.execute")
    status = page.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert '"daily_limit"' in page.locator(".live-responses-table .microlight").first.inner_text()
    assert elsewhere == []  # no CDN: every asset comes from chatquota itself
    assert errors == []


PHONE = {"width": 390, "height": 844}


def test_pages_fit_a_phone(tmp_path, monkeypatch, browser):
    url = f"sqlite:///{tmp_path / 'phone.sqlite3'}"
    key, uuids = seed(url, monkeypatch)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x"})
    with app.app_context():  # long names, and a boolean change for the audit log
        long = accounts.create_user(db.session, None,
                                    "a-rather-long-username-of-the-north-east-region-team")
        accounts.update_user(db.session, None, uuids["bob"], {"is_active": False})
        team = groups.create_group(db.session, None,
                                   "a-rather-long-group-name-of-the-north-east-region-physics-lab",
                                   {"daily_limit": 100})
        for member in (uuids["carol"], long.uuid):
            groups.add_member(db.session, None, team.uuid, member)
        weights.set_weights(db.session, None,
                            "meta-llama/Llama-3.1-405B-Instruct-Turbo-with-a-long-suffix",
                            Decimal("0.125"), Decimal("12.5"))
        hook = webhooks.create_webhook(  # a long URL, and a failed test in its log
            db.session, None, url=f"http://127.0.0.1:{free_port()}/services/T0123456/B0123456/"
            + "x" * 48, secret="s" * 32, format="slack", events=["quota.threshold"]).uuid
        deliverer.send_test(db.session, app.config, hook)
        db.engine.dispose()
    with LiveServer(url, workers=1) as server:
        page = browser.new_page(viewport=PHONE)
        page.goto(server.url + "/sign-in/")
        widths = {"/sign-in/": page.evaluate("document.documentElement.scrollWidth")}
        page.fill("#token", key)
        page.click("form button[type=submit]")
        page.wait_for_url(server.url + "/admin/")
        for path in ("/admin/", f"/admin/users/{uuids['carol']}/", "/admin/audit/?page_size=50",
                     "/admin/defaults/", "/me/", "/admin/groups/", f"/admin/groups/{team.uuid}/",
                     "/admin/model-weights/", "/admin/webhooks/", f"/admin/webhooks/{hook}/"):
            page.goto(server.url + path)
            widths[path] = page.evaluate("document.documentElement.scrollWidth")
        assert all(width <= PHONE["width"] for width in widths.values()), widths

        page.goto(server.url + "/admin/audit/")
        change = page.locator("table.audit tr", has=page.locator("td[data-label=Field]",
                                                                 has_text=re.compile("^is_active$")))
        assert change.locator("td[data-label=From]").inner_text() == "true"
        assert change.locator("td[data-label=To]").inner_text() == "false"
