"""`copy-data`: move every table of a SQLite deployment into another, empty database."""

from datetime import timedelta
from decimal import Decimal

import flask_migrate
import pytest
from sqlalchemy import select

from chatquota import clock, create_app, deliverer
from chatquota.extensions import db
from chatquota.models import Reservation, UsageEvent, WebSession
from chatquota.services import (
    accounts,
    deliveries,
    groups,
    limits,
    metering,
    reservations,
    webhooks,
    weights,
)

from .databases import TEST_DATABASE_URL, scratch_schema
from .live import free_port


def make_app(url):
    return create_app({"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": url})


@pytest.fixture
def source(tmp_path, fixed_clock):
    """A migrated SQLite deployment with rows in every table."""
    app = make_app(f"sqlite:///{tmp_path / 'source.sqlite3'}")
    with app.app_context():
        flask_migrate.upgrade()
        s, tz = db.session, app.config["TZ"]
        limits.set_defaults(s, None, {"monthly": 10_000})
        staff = accounts.create_user(s, None, "boss", is_staff=True)
        token, _key = accounts.issue_token(s, staff, staff)
        s.add(WebSession(id="c" * 64, user_id=staff.id, token_id=token.id, csrf_token="d" * 64,
                         created_at=clock.now(), expires_at=clock.now() + timedelta(hours=8)))
        user = accounts.create_user(s, None, "ann")
        limits.set_quota(s, staff, user.uuid, {"daily_limit": 500})
        team = groups.create_group(s, staff, "physics", {"weekly_limit": 900})
        groups.add_member(s, staff, team.uuid, user.uuid)
        weights.set_weights(s, staff, "m", Decimal("0.5"), Decimal(3))
        hook = webhooks.create_webhook(s, staff, url=f"http://127.0.0.1:{free_port()}/",
                                       secret="s" * 16, format="json", events=["quota.threshold"])
        reservations.reserve(s.get_bind(), tz, user_uuid=user.uuid, tokens=5, ttl_seconds=600)
        metering.consume(s.get_bind(), tz, user_uuid=user.uuid, tokens=420, idempotency_key="k1")
        deliveries.take_due(s.get_bind(), clock.now(), 30, 8)  # the alert's delivery, claimed
        deliverer.send_test(s, app.config, hook.uuid)  # a delivery with an attempt (refused)
        fixed_clock.instant -= timedelta(days=1)
        metering.consume(s.get_bind(), tz, user_uuid=user.uuid, tokens=2, model="m", enforce=False)
        hold = Reservation(uuid="a" * 32, user_id=user.id, tokens=9, state="committed",
                           created_at=clock.now(), expires_at=clock.now() + timedelta(hours=1))
        event = UsageEvent(uuid="b" * 32, user_id=user.id, tokens=9, charged_tokens=9,
                           enforced=True, created_at=clock.now())
        s.add(event)
        s.flush()
        hold.event_id = event.id
        s.add(hold)
        s.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def target_url(request, tmp_path):
    """The URL of an empty database migrated to head."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
        yield _migrated(url)
        return
    if TEST_DATABASE_URL is None:
        pytest.skip("SQLite -> PostgreSQL needs CHATQUOTA_TEST_DATABASE_URL (e.g. `make test-pg`)")
    with scratch_schema(TEST_DATABASE_URL) as url:
        yield _migrated(url)


def _migrated(url):
    app = make_app(url)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return url


def dump(app) -> dict[str, list]:
    """Return every row of every table, in primary-key order."""
    with app.app_context():
        rows = {t.name: db.session.execute(select(t).order_by(*t.primary_key.columns)).all()
                for t in db.metadata.sorted_tables}
        db.session.remove()
        db.engine.dispose()
    return rows


def copy(app, url):
    return app.test_cli_runner().invoke(args=["copy-data", "--to", url])


def test_copy_reproduces_every_row_and_the_target_keeps_working(source, target_url):
    result = copy(source, target_url)
    assert result.exit_code == 0, result.output
    rows = dump(source)
    assert all(rows.values()), "every table must have rows for this test to mean anything"
    assert f"Copied {sum(map(len, rows.values()))} rows." in result.stderr
    target = make_app(target_url)
    assert dump(target) == rows
    with target.app_context():
        s = db.session
        newcomer = accounts.create_user(s, None, "new")  # ids continue after the copied ones
        assert newcomer.id == 3
        after = metering.consume(s.get_bind(), target.config["TZ"], user_uuid=newcomer.uuid, tokens=5)
        assert after.event.id == 4
        ann = accounts.get_user_by_name(s, "ann").uuid
        again = metering.consume(s.get_bind(), target.config["TZ"], user_uuid=ann, tokens=420,
                                 idempotency_key="k1")
        assert not again.created and again.event.tokens == 420
        db.session.remove()  # give its connection back before the pool goes
        db.engine.dispose()


def test_a_target_with_rows_is_refused_and_left_alone(source, target_url):
    assert copy(source, target_url).exit_code == 0
    before = dump(make_app(target_url))
    result = copy(source, target_url)
    assert result.exit_code == 1
    assert result.stderr == "Error: Target database is not empty: table 'alerts' has rows.\n"
    assert dump(make_app(target_url)) == before


def test_an_unmigrated_target_is_refused(source, tmp_path):
    result = copy(source, f"sqlite:///{tmp_path / 'bare.sqlite3'}")
    assert result.exit_code == 1
    assert "has no table" in result.stderr and "db upgrade" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("url", ["nonsense", "postgresql+nodriver://x/y"])
def test_a_bad_url_is_one_line_error(source, url):
    result = copy(source, url)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --to: not a usable database URL")
    assert len(result.stderr.splitlines()) == 1
