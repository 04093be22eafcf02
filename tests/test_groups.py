"""Groups in metering: what is charged to whom, holds per group, membership over time."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from chatquota.extensions import connection, db
from chatquota.models import GroupUsageDay, ReservationGroup
from chatquota.services import groups, limits, metering, reservations, weights
from chatquota.services.errors import QuotaExceeded
from chatquota.services.usage import group_report

CONSUME = "/api/chat-quota/consume/"


@pytest.fixture
def physics(app):
    """A group 'physics' with a daily limit of 100."""
    with app.app_context():
        return groups.create_group(db.session, None, "physics", {"daily_limit": 100}).uuid


def join(app, group_uuid, *accounts):
    with app.app_context():
        for account in accounts:
            groups.add_member(db.session, None, group_uuid, account.uuid)


def leave(app, group_uuid, account):
    with app.app_context():
        groups.remove_member(db.session, None, group_uuid, account.uuid)


def consume(app, account, tokens, **kwargs):
    with app.app_context():
        return metering.consume(db.engine, app.config["TZ"], user_uuid=account.uuid,
                                tokens=tokens, **kwargs)


def group_usage(app, group_uuid):
    """Return the group's (daily, weekly, monthly) usage and its held tokens."""
    with app.app_context():
        report = group_report(connection(), group_uuid, app.config["TZ"]).report
    return tuple(p.usage for p in report.periods), report.held


def test_members_usage_counts_for_the_group_and_nobody_elses(app, alice, bob, physics,
                                                           fixed_clock):
    join(app, physics, alice)
    consume(app, alice, 30)
    consume(app, bob, 50)
    assert group_usage(app, physics) == ((30, 30, 30), 0)


def test_a_group_limit_refuses_every_member(app, client, service, alice, bob, physics,
                                            fixed_clock):
    join(app, physics, alice, bob)
    consume(app, alice, 70)
    response = client.post(CONSUME, json={"user_uuid": bob.uuid, "tokens": 31},
                           headers=service.headers)
    assert response.status_code == 429
    assert response.json == {"detail": "Daily token limit of group 'physics' exceeded.",
                             "period": "daily", "scope": "group", "group_uuid": physics,
                             "reset_at": "2026-12-01T00:00:00Z", "remaining": 30}
    assert response.headers["Retry-After"] == str(12 * 3600)
    assert consume(app, bob, 30).created
    check = client.post("/api/chat-quota/check/", json={"tokens": 0}, headers=alice.headers)
    assert check.status_code == 429 and check.json["scope"] == "group"


def test_unenforced_usage_is_charged_to_the_group_past_its_limit(app, alice, physics,
                                                                 fixed_clock):
    join(app, physics, alice)
    consume(app, alice, 150, enforce=False)
    assert group_usage(app, physics) == ((150, 150, 150), 0)


def test_a_user_in_several_groups_charges_each(app, alice, physics, fixed_clock):
    with app.app_context():
        chemistry = groups.create_group(db.session, None, "chemistry").uuid
    join(app, physics, alice)
    join(app, chemistry, alice)
    consume(app, alice, 40)
    assert group_usage(app, physics)[0] == group_usage(app, chemistry)[0] == (40, 40, 40)
    with app.app_context():
        groups.set_group_quota(db.session, None, chemistry, {"weekly_limit": 50})
    with pytest.raises(QuotaExceeded) as refused:
        consume(app, alice, 11)
    assert (refused.value.refusal.group_name, refused.value.refusal.period) == ("chemistry",
                                                                                "weekly")


def test_group_defaults_apply_to_null_group_limits(app, alice, fixed_clock):
    with app.app_context():
        team = groups.create_group(db.session, None, "team").uuid
        limits.set_defaults(db.session, None, {"daily": 20}, limits.GROUP)
        limits.set_defaults(db.session, None, {"daily": 1000})  # users' default: not the group's
    join(app, team, alice)
    with pytest.raises(QuotaExceeded) as refused:
        consume(app, alice, 21)
    assert refused.value.refusal.scope == "group"
    with app.app_context():
        fields = group_report(connection(), team, app.config["TZ"]).fields()
    assert (fields["daily_limit"], fields["daily_system_default"], fields["daily_remaining"]) == (
        None, 20, 20)


def test_membership_changes_within_a_period_never_rewrite_history(app, alice, bob, physics,
                                                                  fixed_clock):
    consume(app, alice, 10)                        # before joining: not the group's
    join(app, physics, alice)
    consume(app, alice, 20)                        # a member: the group's
    fixed_clock.instant += timedelta(hours=1)
    leave(app, physics, alice)
    consume(app, alice, 40)                        # after leaving: not the group's
    join(app, physics, bob)
    consume(app, bob, 5)
    assert group_usage(app, physics) == ((25, 25, 25), 0)
    join(app, physics, alice)                      # rejoining brings nothing back
    assert group_usage(app, physics) == ((25, 25, 25), 0)
    with app.app_context():
        total = db.session.scalar(select(func.sum(GroupUsageDay.tokens)))
    assert total == 25


def test_a_hold_counts_against_its_groups_until_it_ends(app, alice, bob, physics, fixed_clock):
    join(app, physics, alice, bob)
    with app.app_context():
        tz = app.config["TZ"]
        held = reservations.reserve(db.engine, tz, user_uuid=alice.uuid, tokens=60,
                                    ttl_seconds=600).reservation
        assert group_usage(app, physics) == ((0, 0, 0), 60)
        with pytest.raises(QuotaExceeded):
            metering.consume(db.engine, tz, user_uuid=bob.uuid, tokens=41)
        reservations.release(db.engine, held.uuid)
        assert group_usage(app, physics) == ((0, 0, 0), 0)
        assert db.session.scalar(select(func.count()).select_from(ReservationGroup)) == 0


def test_an_expired_hold_stops_counting_for_the_group(app, alice, physics, fixed_clock):
    join(app, physics, alice)
    with app.app_context():
        reservations.reserve(db.engine, app.config["TZ"], user_uuid=alice.uuid, tokens=60,
                             ttl_seconds=60)
    assert group_usage(app, physics)[1] == 60
    fixed_clock.instant += timedelta(seconds=60)
    assert group_usage(app, physics)[1] == 0


def test_a_hold_stays_with_a_group_the_user_leaves_and_the_commit_charges_groups_at_commit(
        app, alice, physics, fixed_clock):
    with app.app_context():
        chemistry = groups.create_group(db.session, None, "chemistry").uuid
    join(app, physics, alice)
    with app.app_context():
        tz = app.config["TZ"]
        held = reservations.reserve(db.engine, tz, user_uuid=alice.uuid, tokens=50,
                                    ttl_seconds=600).reservation
    leave(app, physics, alice)
    join(app, chemistry, alice)
    assert group_usage(app, physics) == ((0, 0, 0), 50)   # admitted against physics
    assert group_usage(app, chemistry) == ((0, 0, 0), 0)
    with app.app_context():
        done = reservations.commit(db.engine, tz, held.uuid, tokens=30)
    assert done.event.charged_tokens == 30
    assert group_usage(app, physics) == ((0, 0, 0), 0)    # the hold ended, nothing charged
    assert group_usage(app, chemistry) == ((30, 30, 30), 0)


def test_a_flexible_reservation_gets_the_groups_room(app, alice, physics, fixed_clock):
    join(app, physics, alice)
    consume(app, alice, 70)
    with app.app_context():
        held = reservations.reserve(db.engine, app.config["TZ"], user_uuid=alice.uuid,
                                    tokens=500, at_least=10, ttl_seconds=60).reservation
    assert held.tokens == 30
    assert group_usage(app, physics) == ((70, 70, 70), 30)


def test_weights_charge_users_and_groups_and_apply_to_later_events_only(app, alice, physics,
                                                                        fixed_clock):
    join(app, physics, alice)
    first = consume(app, alice, 10, model="big", input_tokens=4, output_tokens=6).event
    with app.app_context():
        weights.set_weights(db.session, None, "big", Decimal("0.5"), Decimal(3))
    second = consume(app, alice, 10, model="big", input_tokens=4, output_tokens=6).event
    third = consume(app, alice, 10, model="big").event     # no split: the higher weight
    other = consume(app, alice, 10, model="small").event   # no weights: 1
    assert [(e.tokens, e.charged_tokens) for e in (first, second, third, other)] == [
        (10, 10), (10, 20), (10, 30), (10, 10)]
    assert group_usage(app, physics)[0] == (70, 70, 70)
    with app.app_context():
        report = metering.check(connection(), db.session.merge(alice.user), 0,
                                app.config["TZ"])
    assert report.periods[0].usage == 70


def test_enforce_admits_the_charge_not_the_raw_tokens(app, alice, physics, fixed_clock):
    join(app, physics, alice)
    with app.app_context():
        weights.set_weights(db.session, None, "big", Decimal(2), Decimal(10))
    with pytest.raises(QuotaExceeded):
        consume(app, alice, 11, model="big", input_tokens=1, output_tokens=10)  # 102
    assert consume(app, alice, 10, model="big", input_tokens=0, output_tokens=10).created


def test_a_commit_is_charged_by_the_models_weights_at_commit_time(app, alice, fixed_clock):
    with app.app_context():
        tz = app.config["TZ"]
        held = reservations.reserve(db.engine, tz, user_uuid=alice.uuid, tokens=100,
                                    ttl_seconds=600, model="big").reservation
        assert held.tokens == 100  # a hold is the caller's estimate of the charge
        weights.set_weights(db.session, None, "big", Decimal("0.25"), Decimal(4))
        done = reservations.commit(db.engine, tz, held.uuid, tokens=20, input_tokens=10,
                                   output_tokens=10)
    assert (done.event.tokens, done.event.charged_tokens) == (20, 43)  # ceil(2.5 + 40)
    assert done.report.periods[0].usage == 43 and done.report.held == 0
