"""Dashboard pages for groups and model weights, and group bars on /me/."""

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from chatquota.extensions import db
from chatquota.models import AuditEntry, Group, Membership, ModelWeight
from chatquota.services import groups, limits, metering, weights

from .dashboard_helpers import session_csrf, sign_in


def use(app, account, tokens: int, **kwargs):
    with app.app_context():
        return metering.consume(db.engine, app.config["TZ"], user_uuid=account.uuid,
                                tokens=tokens, enforce=False, **kwargs)


def rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def physics(app, alice, bob):
    """Group 'physics' (daily limit 100) with alice and bob."""
    with app.app_context():
        uuid = groups.create_group(db.session, None, "physics", {"daily_limit": 100}).uuid
        for member in (alice, bob):
            groups.add_member(db.session, None, uuid, member.uuid)
    return uuid


def test_the_staff_walkthrough_ends_with_a_member_refused_by_name(app, client, staff, alice,
                                                                  bob, fixed_clock):
    """Create a group, add members, set its limit and a model's weights; see the refusal."""
    sign_in(client, staff)
    csrf = session_csrf(client)
    created = client.post("/admin/groups/", data={"csrf_token": csrf, "name": "physics"})
    assert created.status_code == 302
    group_url = created.headers["Location"].split("?")[0]
    assert "Group created." in client.get(created.headers["Location"]).get_data(as_text=True)
    for name in ("alice", "bob"):
        added = client.post(f"{group_url}members/", data={"csrf_token": csrf, "username": name})
        assert added.status_code == 302
    limits_saved = client.post(group_url, data={
        "csrf_token": csrf, "daily_mode": "number", "daily_value": "1,000",
        "weekly_mode": "default", "monthly_mode": "unlimited"})
    assert limits_saved.status_code == 302
    weighted = client.post("/admin/model-weights/", data={
        "csrf_token": csrf, "model": "org/big-70b", "input_weight": "1", "output_weight": "4"})
    assert weighted.status_code == 302
    assert "Weights of org/big-70b saved." in client.get(weighted.headers["Location"]).get_data(
        as_text=True)
    event = use(app, alice, 300, model="org/big-70b", input_tokens=100,
                output_tokens=200).event
    assert event.charged_tokens == 900
    use(app, bob, 100)
    page = client.get(group_url).get_data(as_text=True)
    assert "1,000 / 1,000 (100%)" in page and 'class="usage full"' in page
    assert ">alice</a>" in page and ">bob</a>" in page
    user_page = client.get(f"/admin/users/{bob.uuid}/").get_data(as_text=True)
    assert ("New requests are refused now: Daily token limit of group &#39;physics&#39; "
            "exceeded.") in user_page
    member = app.test_client()
    sign_in(member, bob)
    me = member.get("/me/").get_data(as_text=True)
    assert "Daily token limit of group &#39;physics&#39; exceeded." in me
    assert "Group physics" in me and "1,000 / 1,000 (100%)" in me


def test_groups_page_shows_bars_members_and_search(app, client, support, alice, physics,
                                                   fixed_clock):
    use(app, alice, 85)
    sign_in(client, support)
    page = client.get("/admin/groups/").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td><a [^>]*>physics</a>.*?</tr>", page, re.S).group(0)
    assert "2 members" in row and 'class="usage warn"' in row and "85 / 100 (85%)" in row
    assert "Group default (Unlimited)" in row and "Create group" not in page  # support
    assert "No group matches" in client.get("/admin/groups/?search=chem").get_data(as_text=True)


def test_support_set_group_limits_but_not_members(app, client, support, alice, physics):
    sign_in(client, support)
    csrf = session_csrf(client)
    page = client.get(f"/admin/groups/{physics}/").get_data(as_text=True)
    assert "Save limits" in page and "Add member" not in page and "Remove" not in page
    saved = client.post(f"/admin/groups/{physics}/", data={
        "csrf_token": csrf, "daily_mode": "default", "weekly_mode": "number",
        "weekly_value": "500", "monthly_mode": "unlimited"})
    assert saved.status_code == 302
    with app.app_context():
        group = db.session.scalar(select(Group))
        assert (group.daily_limit, group.weekly_limit, group.monthly_limit) == (None, 500, -1)
    for path, data in [("/admin/groups/", {"name": "x"}),
                       (f"/admin/groups/{physics}/members/", {"username": "alice"}),
                       (f"/admin/groups/{physics}/members/{alice.uuid}/remove/", {}),
                       (f"/admin/groups/{physics}/name/", {"name": "x"}),
                       ("/admin/model-weights/", {"model": "m", "input_weight": "1",
                                                  "output_weight": "1"})]:
        assert client.post(path, data={"csrf_token": csrf, **data}).status_code == 403


def test_group_form_errors_change_nothing(app, client, staff, alice, physics):
    sign_in(client, staff)
    csrf = session_csrf(client)
    before = (rows(app, Group), rows(app, Membership), rows(app, AuditEntry))
    cases = [
        ("/admin/groups/", {"name": "physics"}, "A group with this name already exists."),
        ("/admin/groups/", {"name": "  "}, "Length must be between 1 and 150."),
        (f"/admin/groups/{physics}/members/", {"username": "nobody"},
         "User &#39;nobody&#39; not found."),
        (f"/admin/groups/{physics}/members/", {"username": "alice"},
         "This user is already a member of this group."),
        (f"/admin/groups/{physics}/name/", {"name": ""}, "Length must be between 1 and 150."),
        (f"/admin/groups/{physics}/", {"daily_mode": "number", "daily_value": "-5",
                                       "weekly_mode": "default", "monthly_mode": "default"},
         "Nothing was changed"),
    ]
    for path, data, message in cases:
        response = client.post(path, data={"csrf_token": csrf, **data})
        assert response.status_code == 400, path
        assert message in response.get_data(as_text=True), (path, message)
    assert (rows(app, Group), rows(app, Membership), rows(app, AuditEntry)) == before


def test_staff_remove_a_member_and_stale_or_unknown_pages_are_404(app, client, staff, alice,
                                                                  physics):
    sign_in(client, staff)
    csrf = session_csrf(client)
    removed = client.post(f"/admin/groups/{physics}/members/{alice.uuid}/remove/",
                          data={"csrf_token": csrf})
    assert removed.status_code == 302
    assert "Member removed." in client.get(removed.headers["Location"]).get_data(as_text=True)
    again = client.post(f"/admin/groups/{physics}/members/{alice.uuid}/remove/",
                        data={"csrf_token": csrf})
    assert again.status_code == 404
    assert client.get("/admin/groups/nope/").status_code == 404
    assert client.get(f"/admin/groups/{'0' * 32}/").status_code == 404
    assert client.post(f"/admin/groups/{'0' * 32}/members/",
                       data={"csrf_token": csrf, "username": "alice"}).status_code == 404


def test_group_defaults_are_set_beside_the_users(app, client, staff):
    sign_in(client, staff)
    response = client.post("/admin/group-defaults/", data={
        "csrf_token": session_csrf(client), "daily_mode": "number", "daily_value": "2000",
        "weekly_mode": "unlimited", "monthly_mode": "unlimited"})
    assert response.status_code == 302
    with app.app_context():
        assert limits.get_defaults(db.session, limits.GROUP)["daily"] == 2000
        assert limits.get_defaults(db.session)["daily"] == -1
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count("Defaults saved.") == 1 and 'value="2000"' in page


def test_model_weights_page_lists_and_validates(app, client, staff, support):
    with app.app_context():
        weights.set_weights(db.session, None, "small", Decimal("0.5"), Decimal(1))
    reader = app.test_client()
    sign_in(reader, support)
    page = reader.get("/admin/model-weights/").get_data(as_text=True)
    assert ">small<" in page and ">0.5<" in page and "Save weights" not in page
    sign_in(client, staff)
    response = client.post("/admin/model-weights/", data={
        "csrf_token": session_csrf(client), "model": "big", "input_weight": "-1",
        "output_weight": "0.1234567"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "A valid number is required." in page
    assert "Ensure that there are no more than 6 decimal places." in page
    assert 'value="big"' in page  # the submitted values are kept
    assert rows(app, ModelWeight) == 1


def test_me_shows_a_bar_per_group(app, client, alice, physics, fixed_clock):
    with app.app_context():
        chemistry = groups.create_group(db.session, None, "chemistry").uuid
        groups.add_member(db.session, None, chemistry, alice.uuid)
    use(app, alice, 40)
    sign_in(client, alice)
    page = client.get("/me/").get_data(as_text=True)
    assert "Group chemistry" in page and "Group physics" in page
    assert "40 / 100 (40%)" in page and "40 used, unlimited" in page
    assert "refused" not in page
