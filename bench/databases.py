"""The benchmark's databases: two SQLite histories (the big one cached) and PostgreSQL.

Both SQLite databases hold the same accounts and a crowd of 10,000 users
without limits; the small one has 1,000 past events (10 crowd users x 100
days), the big one 10,000,000 (10,000 users x 100 days). Seeding the big one
takes about a minute, so it is kept in .bench-cache/ (gitignored) under a name
made of the migration head, the seed parameters and the day it was seeded
(the history ends yesterday), and copied from there on later runs.
"""

import json
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import seed

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench-cache"
CROWD = 10_000
SMALL = {"events": 1_000, "users": 10}
BIG = {"events": 10_000_000, "users": 10_000}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/chatquota_bench"


@dataclass
class Databases:
    """What run.py serves: paths, who is in each database, what was reused."""

    small: seed.Seeded
    big: seed.Seeded
    normal: Path
    postgres: seed.Seeded | None
    storage: dict
    notes: list[str] = field(default_factory=list)


def migration_head() -> str:
    """Return the newest migration's revision (the one no other revises)."""
    revisions, parents = set(), set()
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        text = path.read_text()
        revisions.update(re.findall(r"^revision = ['\"](\w+)['\"]", text, re.M))
        parents.update(re.findall(r"^down_revision = ['\"](\w+)['\"]", text, re.M))
    return "+".join(sorted(revisions - parents))


def _seed_sqlite(path: Path, history: dict) -> seed.Seeded:
    seeded = seed.seed_accounts(f"sqlite:///{path}", str(path), crowd=CROWD)
    seed.add_history(str(path), history["events"], history["users"])
    return seeded


def storage(path: Path) -> dict:
    """Return the bytes of each table and index (SQLite's dbstat) and the event count."""
    conn = sqlite3.connect(path)
    try:
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        tables = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master "
                                   "WHERE type IN ('table', 'index')"))
        events = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    finally:
        conn.close()
    return {"events": events, "file": path.stat().st_size,
            "objects": [(name, tables.get(name, name), size) for name, size in sizes.items()]}


def big(work: Path, notes: list[str], name: str = "big.sqlite3") -> tuple[seed.Seeded, dict]:
    """Return a copy of the 10M-event database in `work` (seeded, or from the cache) and its sizes."""
    day = datetime.now(UTC).strftime("%Y%m%d")
    key = (f"big-{migration_head()}-crowd{CROWD}-events{BIG['events']}-users{BIG['users']}"
           f"-days{seed.HISTORY_DAYS}-{day}")
    cached, meta = CACHE / f"{key}.sqlite3", CACHE / f"{key}.json"
    target = work / name
    if cached.exists() and meta.exists():
        shutil.copyfile(cached, target)
        saved = json.loads(meta.read_text())
        notes.append(f"The 10M-event database was reused from `.bench-cache/{cached.name}` "
                     "(seeded earlier today with the same migration head and parameters).")
        return seed.Seeded(str(target), {k: tuple(v) for k, v in saved["users"].items()}), \
            saved["storage"]
    started = time.monotonic()
    CACHE.mkdir(exist_ok=True)
    for old in CACHE.glob("big-*"):
        old.unlink()
    seeded = _seed_sqlite(cached, BIG)
    sizes = storage(cached)
    meta.write_text(json.dumps({"users": seeded.users, "storage": sizes}))
    shutil.copyfile(cached, target)
    notes.append(f"The 10M-event database was seeded in {time.monotonic() - started:.0f} s "
                 f"and cached as `.bench-cache/{cached.name}` for later runs today.")
    return seed.Seeded(str(target), seeded.users), sizes


def postgres(notes: list[str]) -> seed.Seeded | None:
    """Empty and seed the `chatquota_bench` database, or return None when unreachable."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS chatquota_bench WITH (FORCE)")
            conn.execute("CREATE DATABASE chatquota_bench")
    except psycopg.OperationalError as error:
        notes.append(f"PostgreSQL skipped: 127.0.0.1:5432 unreachable ({str(error).strip()}).")
        return None
    return seed.seed_accounts(PG_URL)


def prepare(work: Path) -> Databases:
    """Seed (or reuse) every database the runs need."""
    notes: list[str] = []
    small = _seed_sqlite(work / "small.sqlite3", SMALL)
    normal = work / "normal.sqlite3"
    seed.copy_database(small.path, str(normal))
    large, sizes = big(work, notes)
    return Databases(small, large, normal, postgres(notes), sizes, notes)
