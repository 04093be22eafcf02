"""Behaviour that must not depend on the database backend (run the suite on both)."""

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from chatquota import clock
from chatquota.extensions import connection, db
from chatquota.models import Reservation, UsageEvent
from chatquota.services import accounts, limits, metering
from chatquota.services.errors import QuotaExceeded
from chatquota.services.usage import quota_report


def test_admission_sees_a_limit_lowered_after_the_user_was_loaded(app, alice):
    with app.app_context():
        tz = app.config["TZ"]
        limits.set_quota(db.session, None, alice.uuid, {"daily_limit": 100})
        loaded = accounts.get_user(db.session, alice.uuid)  # as a request would hold it
        with Session(db.engine) as other:  # another worker lowers the limit meanwhile
            limits.set_quota(other, None, alice.uuid, {"daily_limit": 5})
        assert loaded.quota.daily_limit == 100
        with pytest.raises(QuotaExceeded):
            metering.consume(db.engine, tz, user_uuid=alice.uuid, tokens=10)


def test_held_tokens_are_plain_integers(app, alice, fixed_clock):
    with app.app_context():
        now = clock.now()
        db.session.add(Reservation(uuid="f" * 32, user_id=alice.user.id, tokens=2**40,
                                   state="active", created_at=now,
                                   expires_at=now + timedelta(minutes=5)))
        db.session.commit()
        user = accounts.get_user(db.session, alice.uuid)
        held = quota_report(connection(), user, app.config["TZ"]).held
    assert held == 2**40 and type(held) is int


def test_datetimes_round_trip_as_aware_utc(app, alice, fixed_clock):
    fixed_clock.set(2026, 3, 29, 1, 30)
    with app.app_context():
        result = metering.consume(db.engine, app.config["TZ"], user_uuid=alice.uuid, tokens=1)
        db.session.expire_all()
        stored = db.session.get(UsageEvent, result.event.id)
        assert stored.created_at == fixed_clock.instant
        assert stored.created_at.utcoffset() == timedelta(0)
