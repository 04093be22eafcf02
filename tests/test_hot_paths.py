"""The optimised hot paths still answer exactly: report snapshot, writer lock."""

import fcntl
import os
from datetime import UTC, date, datetime, timedelta

import pytest

from chatquota.dialect import write_transaction
from chatquota.extensions import connection, db
from chatquota.models import Reservation, Setting, UsageDay
from chatquota.services import limits
from chatquota.services.usage import quota_report

from .databases import sqlite_only


def _hold(session, user, tokens, state="active", expires=timedelta(minutes=5), now=None):
    session.add(Reservation(uuid=os.urandom(16).hex(), user_id=user.id, tokens=tokens,
                            state=state, created_at=now, expires_at=now + expires))


def test_report_sums_each_window_and_live_holds_only(app, alice, bob, fixed_clock):
    now = fixed_clock.set(2026, 11, 18, 12)  # a Wednesday
    with app.app_context():
        s = db.session
        limits.set_defaults(s, None, {"daily": 500, "monthly": 9000})
        for user, day, tokens in [
            (alice.user, date(2026, 11, 18), 10),   # today
            (alice.user, date(2026, 11, 16), 20),   # Monday: this week
            (alice.user, date(2026, 11, 15), 40),   # Sunday: last week, this month
            (alice.user, date(2026, 10, 31), 80),   # last month
            (alice.user, date(2026, 12, 1), 160),   # next month: outside every window
            (bob.user, date(2026, 11, 18), 1000),   # someone else
        ]:
            s.add(UsageDay(user_id=user.id, day=day, tokens=tokens))
        _hold(s, alice.user, 3, now=now)
        _hold(s, alice.user, 5, now=now, expires=timedelta(seconds=-1))
        _hold(s, alice.user, 7, state="committed", now=now)
        _hold(s, bob.user, 11, now=now)
        s.commit()
        report = quota_report(connection(), s.merge(alice.user), app.config["TZ"])
    fields = report.fields()
    assert (fields["daily_usage"], fields["weekly_usage"], fields["monthly_usage"]) == (10, 30, 70)
    assert (fields["daily_system_default"], fields["weekly_system_default"],
            fields["monthly_system_default"]) == (500, -1, 9000)
    assert (fields["daily_remaining"], fields["weekly_remaining"]) == (490, None)
    assert report.held == 3
    assert report.now == datetime(2026, 11, 18, 12, tzinfo=UTC)


def test_report_of_a_user_without_usage_is_zero(app, alice):
    with app.app_context():
        db.session.query(Setting).delete()
        db.session.commit()
        report = quota_report(connection(), db.session.merge(alice.user), app.config["TZ"])
    assert [p.usage for p in report.periods] == [0, 0, 0]
    assert report.held == 0 and [p.system_default for p in report.periods] == [-1, -1, -1]


@sqlite_only
def test_write_transaction_holds_the_writer_lock_file(app, tmp_path):
    lock_path = str(tmp_path / "test.sqlite3") + "-lock"

    def lock_is_free():
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with app.app_context():
        with write_transaction(db.session):
            assert not lock_is_free()
        assert lock_is_free()
        with pytest.raises(RuntimeError):
            with write_transaction(db.session):
                raise RuntimeError("rolled back")
        assert lock_is_free()
