"""Concurrent administrative changes stay consistent on the suite's backend.

On SQLite the write lock serialises them anyway; on PostgreSQL (READ
COMMITTED) they pass only because the services lock the rows they decide on.
"""

import pytest
from sqlalchemy import func, select

from chatquota.extensions import db
from chatquota.models import User
from chatquota.services import accounts, audit, limits
from chatquota.services.errors import Conflict

from .races import run_together


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
