"""Concurrent changes and admissions stay consistent on the suite's backend.

On SQLite the write lock serialises them anyway; on PostgreSQL (READ
COMMITTED) they pass only because the services lock the rows they decide on.
"""

import threading

import pytest
from sqlalchemy import func, select

from chatquota.dialect import Raw
from chatquota.extensions import db
from chatquota.models import GroupUsageDay, User
from chatquota.services import accounts, audit, groups, limits, metering
from chatquota.services.errors import Conflict, QuotaExceeded

from .conftest import app_on
from .races import MEET_SECONDS, run_together


def test_concurrent_removal_of_the_last_two_staff_users_keeps_one(app, make_account):
    first = make_account("first", is_staff=True)
    second = make_account("second", is_staff=True)
    results = run_together(
        app,
        lambda session: accounts.update_user(session, None, first.uuid, {"is_staff": False}),
        lambda session: accounts.update_user(session, None, second.uuid, {"is_active": False}),
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    assert sum(isinstance(r, User) for r in results) == 1, results
    with app.app_context():
        active_staff = select(func.count()).where(User.is_staff, User.is_active)
        assert db.session.scalar(active_staff) == 1


@pytest.mark.parametrize("initial", [None, 50])
def test_concurrent_default_changes_audit_the_value_each_replaced(app, initial):
    with app.app_context():
        if initial is not None:
            limits.set_defaults(db.session, None, {"daily": initial})
    results = run_together(
        app,
        lambda session: limits.set_defaults(session, None, {"daily": 100}),
        lambda session: limits.set_defaults(session, None, {"daily": 200}),
    )
    assert all(isinstance(r, dict) for r in results), results
    with app.app_context():
        entries = audit.list_entries(db.session, action="default.update").items[::-1]
        final = limits.get_defaults(db.session)["daily"]
    changes = [(e.old_value, e.new_value) for e in entries[-2:]]
    before = limits.UNLIMITED if initial is None else initial
    assert changes[0][0] == before
    assert changes[1][0] == changes[0][1], f"the second change audited a stale value: {changes}"
    assert final == changes[1][1]


def test_members_racing_on_two_ledgers_never_pass_a_group_limit(app, database_url, alice, bob,
                                                                monkeypatch):
    """Two members, two ledgers (as two workers have), both transactions held before COMMIT.

    Without the group's lock both would read the group's usage as 0 and admit
    60 of its 100 tokens; with it the second waits, then sees the first's 60.
    """
    with app.app_context():
        physics = groups.create_group(db.session, None, "physics", {"daily_limit": 100}).uuid
        for member in (alice, bob):
            groups.add_member(db.session, None, physics, member.uuid)
    barrier = threading.Barrier(2, timeout=MEET_SECONDS)
    commit = Raw.commit

    def meeting_commit(raw):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:  # the other is blocked: serialised
            pass
        commit(raw)

    monkeypatch.setattr(Raw, "commit", meeting_commit)
    with app_on(database_url) as other:
        results = run_together(
            app,
            lambda session: metering.consume(session.get_bind(), app.config["TZ"],
                                             user_uuid=alice.uuid, tokens=60),
            lambda session: other_consume(other, bob.uuid),
        )
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(refused) == 1, results
    assert refused[0].refusal.group_uuid == physics
    with app.app_context():
        assert db.session.scalar(select(func.sum(GroupUsageDay.tokens))) == 60


def other_consume(other_app, user_uuid: str):
    """Consume through `other_app`'s engine: another ledger on the same database."""
    with other_app.app_context():
        return metering.consume(db.engine, other_app.config["TZ"], user_uuid=user_uuid,
                                tokens=60)
