"""`make bench`: seed, serve with gunicorn, load with wrk, report.

Every server runs with the same gunicorn settings (bench/gunicorn.conf.py) on
a free loopback port; the databases live in a temporary directory that is
removed at the end (set BENCH_KEEP=1 to keep it).
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import report, seed
from .load import Result, measure
from .server import WORKERS, gunicorn

API = "/api/chat-quota"


def app_env(db_path: Path, **extra: str) -> dict:
    """Return the environment of a chatquota server on `db_path`."""
    return {"CHATQUOTA_DATABASE_URL": f"sqlite:///{db_path}", "CHATQUOTA_SECRET_KEY": "bench",
            "CHATQUOTA_TIMEZONE": "UTC", **extra}


def _post(s: seed.Seeded, user: str, **body) -> tuple[str, str]:
    return s.key("service"), json.dumps({"user_uuid": s.uuid(user), **body})


def endpoint_runs(base: str, s: seed.Seeded, notes: list[str]) -> list[tuple[Result, str]]:
    """Load usage, check, consume and reserve+commit on one server."""
    runs = [
        (measure("usage", f"{base}{API}/usage/", "get.lua", s.key("reader")), "usage"),
        (measure("check", f"{base}{API}/check/", "post.lua", *_post(s, "reader", tokens=100)),
         "check"),
        (measure("consume", f"{base}{API}/consume/", "post.lua",
                 *_post(s, "spender", tokens=100)), "consume"),
    ]
    if s.has_reservations:
        pair = measure("reserve+commit (requests)", f"{base}{API}/reservations/",
                       "reserve_commit.lua", s.key("service"), s.uuid("spender"))
        runs.append((pair, "reserve"))
        notes.append(f"reserve+commit: each pair is two requests; {pair.rps / 2:,.0f} pairs/s.")
    else:
        notes.append("reserve+commit: skipped, this build has no "
                     f"`POST {API}/reservations/` route yet.")
    return runs


def history_runs(base: str, s: seed.Seeded, label: str) -> tuple[Result, Result]:
    """Load usage and consume for the user with the long history."""
    usage = measure(f"usage, {label}", f"{base}{API}/usage/", "get.lua", s.key("history"))
    consume = measure(f"consume, {label}", f"{base}{API}/consume/", "post.lua",
                      *_post(s, "history", tokens=100))
    return usage, consume


def seed_databases(work: Path) -> tuple[seed.Seeded, Path]:
    """Seed the main database (1k-event history) and a copy with 10M events."""
    started = time.monotonic()
    s = seed.seed_accounts(str(work / "main.sqlite3"))
    big = work / "big.sqlite3"
    seed.copy_database(s.path, str(big))
    seed.add_history(s.path, s.uuid("history"), 1_000)
    seed.add_history(str(big), s.uuid("history"), 10_000_000)
    events, _total = seed.history_total(str(big), s.uuid("history"))
    print(f"seeded in {time.monotonic() - started:.0f}s ({events:,} events)", file=sys.stderr)
    return s, big


def run(work: Path) -> tuple[str, int]:
    """Run every measurement; return the Markdown and the number of errors."""
    s, big = seed_databases(work)
    main, notes = Path(s.path), []
    with gunicorn("bench.baseline:app", "/", work) as base:
        baseline = measure("baseline (bare Flask)", base + "/", "get.lua")
    with gunicorn("wsgi:app", "/health/", work, app_env(main)) as base:
        runs = endpoint_runs(base, s, notes)
        small = history_runs(base, s, "1k events")
    with gunicorn("wsgi:app", "/health/", work, app_env(big)) as base:
        large = history_runs(base, s, "10M events")
    normal = app_env(main, CHATQUOTA_SQLITE_SYNCHRONOUS="NORMAL")
    with gunicorn("wsgi:app", "/health/", work, normal) as base:
        runs.append((measure("consume, synchronous=NORMAL", f"{base}{API}/consume/",
                             "post.lua", *_post(s, "spender", tokens=100)), "normal"))
    notes.append("`consume, synchronous=NORMAL` is for comparison only: the default stays "
                 "FULL (an fsync per commit); NORMAL in WAL mode can lose the last commits "
                 "on power loss, never corrupt the database.")
    pairs = [("usage", small[0], large[0]), ("consume", small[1], large[1])]
    everything = [baseline, *(r for r, _ in runs), *small, *large]
    errors = sum(r.error_count for r in everything)
    return report.render(baseline, runs, pairs, notes, WORKERS), errors


def main() -> int:
    """Run the benchmark, print the table, and write it where it belongs."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="chatquota-bench-"))
    try:
        markdown, errors = run(work)
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown)
    for path in report.publish(markdown):
        print(f"wrote {path}", file=sys.stderr)
    print(f"bench took {time.monotonic() - started:.0f}s", file=sys.stderr)
    if errors:
        print(f"{errors} requests failed: see the errors column", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
