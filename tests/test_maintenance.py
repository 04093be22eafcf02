"""`prune-events` and `backup`: operator chores that must not lose anything."""

import fcntl
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from chatquota import create_app
from chatquota.extensions import connection, db
from chatquota.models import AuditEntry, UsageDay, UsageEvent
from chatquota.services import limits, maintenance
from chatquota.services.usage import quota_report

from .databases import sqlite_only
from .usage_helpers import spend


@pytest.fixture
def history(app, fixed_clock, alice, bob):
    """Events in October, on Nov 28 and today (Nov 30), and some audited changes."""
    for when, who, tokens in [((2026, 10, 15, 8), alice, 100), ((2026, 11, 28, 8), alice, 20),
                              ((2026, 11, 28, 9), bob, 3), ((2026, 11, 30, 9), alice, 5),
                              ((2026, 11, 30, 10), bob, 1)]:
        fixed_clock.set(*when)
        spend(app, who.uuid, tokens)
    with app.app_context():
        limits.set_defaults(db.session, None, {"monthly": 1000})
        limits.set_quota(db.session, None, bob.uuid, {"daily_limit": 50})
    fixed_clock.set(2026, 11, 30, 12)


def snapshot(app, client, staff, *accounts):
    """Everything pruning must leave alone: reports, day totals, history, audit log."""
    with app.app_context():
        reports = [quota_report(connection(), db.session.merge(a.user), app.config["TZ"]).fields()
                   for a in accounts]
        days = db.session.execute(select(UsageDay.user_id, UsageDay.day, UsageDay.tokens)
                                  .order_by(UsageDay.user_id, UsageDay.day)).all()
        audit = [(e.id, e.created_at, e.actor, e.action, e.field, e.old_value, e.new_value)
                 for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    chart = client.get("/api/chat-quota/history/?days=60", headers=staff.headers).json
    return reports, days, audit, chart


def event_tokens(app) -> list[int]:
    with app.app_context():
        return db.session.scalars(select(UsageEvent.tokens).order_by(UsageEvent.created_at)).all()


def test_prune_keeps_usage_history_and_audit_exactly(app, client, runner, history, staff,
                                                     alice, bob):
    before = snapshot(app, client, staff, alice, bob)
    result = runner.invoke(args=["prune-events", "--before", "2026-11-30"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == "Deleted 3 usage events recorded before 2026-11-30.\n"
    assert event_tokens(app) == [5, 1]
    assert snapshot(app, client, staff, alice, bob) == before
    assert before[0][0]["monthly_usage"] == 25 and before[0][0]["daily_usage"] == 5


def test_prune_twice_deletes_nothing_more(app, runner, history):
    assert runner.invoke(args=["prune-events", "--before", "2026-11-01"]).exit_code == 0
    again = runner.invoke(args=["prune-events", "--before", "2026-11-01"])
    assert again.stderr == "Deleted 0 usage events recorded before 2026-11-01.\n"
    assert event_tokens(app) == [20, 3, 5, 1]


def test_prune_works_in_batches(app, session, history, monkeypatch):
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 2)
    assert maintenance.prune_events(session, date(2026, 12, 1), ZoneInfo("UTC")) == 5
    assert event_tokens(app) == []


@sqlite_only
def test_prune_leaves_the_writer_lock_free_between_batches(app, session, history, monkeypatch):
    """Between batches metering can take the writer lock (flock, then BEGIN IMMEDIATE) at once."""
    monkeypatch.setattr(maintenance, "PRUNE_BATCH", 2)
    rests, lock = [], app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///") + "-lock"

    def rest(seconds):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if prune still held it
        finally:
            os.close(fd)
        other = sqlite3.connect(lock.removesuffix("-lock"), timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # nor does it hold SQLite's write lock
            other.execute("ROLLBACK")
        finally:
            other.close()
        rests.append(seconds)

    monkeypatch.setattr(maintenance.time, "sleep", rest)
    assert maintenance.prune_events(session, date(2026, 12, 1), ZoneInfo("UTC")) == 5
    assert len(rests) == 2 and all(s >= maintenance.PRUNE_MIN_PAUSE for s in rests)
    assert event_tokens(app) == []


def test_prune_cuts_at_local_midnight(app, session, fixed_clock, alice):
    fixed_clock.set(2026, 11, 29, 22, 30)  # 23:30 in Berlin, Nov 29
    spend(app, alice.uuid, 1)
    fixed_clock.set(2026, 11, 29, 23, 30)  # 00:30 in Berlin, Nov 30
    spend(app, alice.uuid, 2)
    assert maintenance.prune_events(session, date(2026, 11, 30), ZoneInfo("Europe/Berlin")) == 1
    assert event_tokens(app) == [2]


@pytest.mark.parametrize("value, code, message", [
    ("2026-12-01", 1, "Error: --before must not be after today.\n"),
    ("30.11.2026", 2, "Invalid value for '--before'"),
    ("2026-02-30", 2, "Invalid value for '--before'"),
])
def test_prune_refuses_bad_dates(app, runner, history, value, code, message):
    result = runner.invoke(args=["prune-events", "--before", value])
    assert result.exit_code == code
    assert message in result.stderr
    assert len(event_tokens(app)) == 5


def test_prune_needs_a_date(runner):
    result = runner.invoke(args=["prune-events"])
    assert result.exit_code == 2 and "--before" in result.stderr


@sqlite_only
def test_backup_writes_a_complete_standalone_copy(app, runner, history, tmp_path):
    target = tmp_path / "copy.sqlite3"
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == f"Backup written to {target}.\n"
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("SELECT sum(tokens) FROM usage_events").fetchone() == (129,)
        assert copy.execute("SELECT count(*) FROM audit_log").fetchone()[0] > 0
    copy_app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{target}", "SECRET_KEY": "x"})
    with copy_app.app_context():
        october = select(UsageDay.tokens).where(UsageDay.day == date(2026, 10, 15))
        assert db.session.scalar(october) == 100
        db.engine.dispose()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")] == []


@sqlite_only
def test_backup_replaces_an_existing_file(runner, history, tmp_path):
    target = tmp_path / "old.sqlite3"
    target.write_text("not a database")
    assert runner.invoke(args=["backup", str(target)]).exit_code == 0
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT count(*) FROM usage_events").fetchone() == (5,)


@sqlite_only
def test_backup_refuses_bad_targets(app, runner, tmp_path):
    missing = runner.invoke(args=["backup", str(tmp_path / "nope" / "x.db")])
    assert missing.exit_code == 1
    assert missing.stderr == f"Error: No such directory: {tmp_path / 'nope'}.\n"
    live = runner.invoke(args=["backup", str(tmp_path / "test.sqlite3")])
    assert live.exit_code == 1
    assert live.stderr == "Error: PATH is the live database itself.\n"


def test_backup_on_postgresql_points_to_pg_dump(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://cq@127.0.0.1:1/cq",
                      "SECRET_KEY": "x"})
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.stderr == ("Error: backup works on SQLite only; "
                             "use pg_dump to back up PostgreSQL.\n")
    assert list(tmp_path.iterdir()) == []


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from chatquota import create_app
    from chatquota.extensions import db
    from chatquota.services import metering
    url, user_uuid, stop = sys.argv[1:]
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x"})
    with app.app_context():
        for i in range(20000):
            if Path(stop).exists():
                break
            metering.consume(db.engine, app.config["TZ"], user_uuid=user_uuid,
                             tokens=i % 7 + 1, enforce=False)
        db.engine.dispose()
""")


def count_events(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(db.func.count()).select_from(UsageEvent))
        db.session.rollback()
        return count


@sqlite_only
def test_backup_is_consistent_while_another_process_writes(app, runner, alice, tmp_path):
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, app.config["SQLALCHEMY_DATABASE_URI"],
                               alice.uuid, str(stop)])
    try:
        for _ in range(600):  # wait (at most ~60 s) until the writer is under way
            if count_events(app) >= 50 or writer.poll() is not None:
                break
            time.sleep(0.1)
        results = [runner.invoke(args=["backup", str(tmp_path / f"b{i}.sqlite3")])
                   for i in range(3)]
    finally:
        stop.touch()
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert [r.exit_code for r in results] == [0, 0, 0]
    for i in range(3):
        with sqlite3.connect(tmp_path / f"b{i}.sqlite3") as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            events = copy.execute("SELECT count(*), sum(tokens) FROM usage_events").fetchone()
            days = copy.execute("SELECT sum(tokens) FROM usage_days").fetchone()[0]
        assert events[0] >= 50
        assert events[1] == days  # event rows and day totals from the same instant
