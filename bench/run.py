"""`make bench`: seed, serve with the production gunicorn settings, load, report.

Every server, the bare-Flask baseline's included, runs the project's
gunicorn.conf.py on a free loopback port (bench/gunicorn.conf.py) and stays
up for the whole run; wrk loads them in interleaved rounds (bench/rounds.py),
then an open-loop client sends check, consume and reserve+commit at fixed
rates (bench/openloop.py). The databases live in a temporary directory that is
removed at the end (BENCH_KEEP=1 keeps it); the 10M-event one is cached in
.bench-cache/ (bench/databases.py).
"""

import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from . import databases, gateway, openloop, report, rounds, stalls
from .load import CONNECTIONS, DURATION_S, THREADS, WARMUP_S
from .rounds import Spec
from .seed import CROWD_MEASURED, Seeded
from .server import API, BASELINE_APP, WORKER_CLASS, WORKERS, app_env, gunicorn, scratch
from .server import THREADS as SERVER_THREADS

RATES = [100, 300, 500]
BASELINE = Spec("baseline", "baseline", "/", "get.lua")

# Other sections of the report, each `section(work) -> (Markdown, errors)`, run
# after the measurements above with no server of theirs left up; add them here.
SECTIONS: list[Callable[[Path], tuple[str, int]]] = [gateway.section, stalls.section]


def _sqlite(path) -> str:
    return f"sqlite:///{path}"


def _post(s: Seeded, user: str, **body) -> tuple[str, str]:
    return s.key("service"), json.dumps({"user_uuid": s.uuid(user), **body})


def endpoint_specs(backend: str, s: Seeded) -> list[Spec]:
    """usage (reader's own), check (for reader), consume and reserve+commit (for spender)."""
    return [
        Spec(f"{backend}/usage", backend, f"{API}/usage/", "get.lua", (s.key("reader"),)),
        Spec(f"{backend}/check", backend, f"{API}/check/", "post.lua",
             _post(s, "reader", tokens=100)),
        Spec(f"{backend}/consume", backend, f"{API}/consume/", "post.lua",
             _post(s, "spender", tokens=100)),
        Spec(f"{backend}/reserve+commit", backend, f"{API}/reservations/", "reserve_commit.lua",
             (s.key("service"), s.uuid("spender")), pairs=True),
    ]


def history_specs(label: str, server: str, s: Seeded) -> list[Spec]:
    """usage and consume of the measured crowd user."""
    return [
        Spec(f"{label}/usage", server, f"{API}/usage/", "get.lua", (s.key(CROWD_MEASURED),)),
        Spec(f"{label}/consume", server, f"{API}/consume/", "post.lua",
             _post(s, CROWD_MEASURED, tokens=100)),
    ]


def open_loop(base: str, s: Seeded) -> list[openloop.Outcome]:
    """check, consume and reserve+commit pairs at each fixed rate."""
    calls = [
        ("check", openloop.post(f"{API}/check/", {"user_uuid": s.uuid("reader"), "tokens": 100})),
        ("consume", openloop.post(f"{API}/consume/",
                                  {"user_uuid": s.uuid("spender"), "tokens": 100})),
        ("reserve+commit", openloop.reserve_commit(f"{API}/reservations/", s.uuid("spender"))),
    ]
    outcomes = []
    for name, call in calls:
        print(f"open loop: {name} at {RATES} /s", file=sys.stderr, flush=True)
        outcomes += openloop.series(base, s.key("service"), name, call, RATES)
    return outcomes


def _servers(stack: ExitStack, work: Path, dbs: databases.Databases) -> dict[str, str]:
    small = app_env(_sqlite(dbs.small.path))
    envs = {
        "baseline": (BASELINE_APP, "/", small),
        "sqlite": ("wsgi:app", "/health/", small),
        "normal": ("wsgi:app", "/health/", app_env(_sqlite(dbs.normal),
                                                   CHATQUOTA_SQLITE_SYNCHRONOUS="NORMAL")),
        "big": ("wsgi:app", "/health/", app_env(_sqlite(dbs.big.path))),
    }
    if dbs.postgres:
        envs["postgresql"] = ("wsgi:app", "/health/", app_env(databases.PG_URL))
    return {name: stack.enter_context(gunicorn(app, ready, work, env))
            for name, (app, ready, env) in envs.items()}


def measure(work: Path, dbs: databases.Databases) -> tuple[dict, list]:
    """Run the wrk rounds and the open-loop series with every server up."""
    specs = [*endpoint_specs("sqlite", dbs.small),
             Spec("normal/consume", "normal", f"{API}/consume/", "post.lua",
                  _post(dbs.small, "spender", tokens=100)),
             *history_specs("small", "sqlite", dbs.small),
             *history_specs("big", "big", dbs.big)]
    if dbs.postgres:
        specs += endpoint_specs("postgresql", dbs.postgres)
    with ExitStack() as stack:
        servers = _servers(stack, work, dbs)
        started = time.monotonic()
        series = rounds.run(BASELINE, specs, servers)
        print(f"rounds took {time.monotonic() - started:.0f}s", file=sys.stderr)
        loops = [("SQLite", o) for o in open_loop(servers["sqlite"], dbs.small)]
        if dbs.postgres:
            loops += [("PostgreSQL", o) for o in open_loop(servers["postgresql"], dbs.postgres)]
    return series, loops


def _rows(series: dict) -> list[tuple[str, str, rounds.Series]]:
    rows = [("-", "baseline (bare Flask)", series["baseline"])]
    for backend, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        rows += [(label, key.split("/")[1], s) for key, s in series.items()
                 if key.startswith(f"{backend}/")]
        if backend == "sqlite":
            rows.append(("SQLite", "consume, synchronous=NORMAL", series["normal/consume"]))
    return rows


def headline(series: dict, load_start: str) -> list[str]:
    """The machine, the settings and the throughput table (what the README quotes)."""
    return [
        f"Measured {report.stamp()} on {report.machine()}. Load average at the start: "
        f"{load_start}; at the end: {report.load_average()}.",
        "",
        f"Every server, the baseline's too, runs the project's `gunicorn.conf.py` "
        f"({WORKERS} {WORKER_CLASS} workers x {SERVER_THREADS} threads, its start-up hooks) on "
        f"127.0.0.1, started once and kept up. wrk: {THREADS} threads, {CONNECTIONS} "
        f"connections, {DURATION_S} s per run after a {WARMUP_S} s warm-up, in {rounds.ROUNDS} "
        "interleaved rounds (the baseline, then every run). Figures: the median over rounds, "
        "the min-max over rounds, the median p50/p99; *vs baseline* is the median of each "
        "round's ratio to that round's baseline requests/s. reserve+commit is counted in "
        "pairs/s (two requests each; its latencies are per request) against the baseline's "
        "requests/s. SQLite in WAL mode with the default `synchronous=FULL` unless a row "
        "says otherwise. The baseline is a bare Flask app with one trivial JSON route "
        "(`bench/baseline.py`).",
        "",
        *report.throughput_table(_rows(series)),
    ]


def details(series: dict, loops: list, dbs: databases.Databases) -> list[str]:
    """The open loop, history size and storage tables, and the notes."""
    notes = [*dbs.notes, "`consume, synchronous=NORMAL` is a comparison only: the default "
             "stays FULL (an fsync per commit); NORMAL in WAL mode can lose the last commits "
             "on power loss, never corrupt the database."]
    return [
        "", "### Open loop (fixed arrival rate)", "",
        f"`bench/openloop.py` sends each call at a fixed rate ({', '.join(map(str, RATES))}/s, "
        f"{openloop.SECONDS:g} s each after a {openloop.WARMUP_S:g} s warm-up; reserve+commit: "
        "pairs/s, a reserve POST then a commit POST) over keep-alive connections, opening "
        "more when all are busy; latency runs from each call's scheduled send time to its "
        "last response, so queueing counts (no coordinated omission). Achieved: completed "
        "calls per second, draining included. Errors: non-2xx, timeouts "
        f"({openloop.TIMEOUT_S:g} s), connection errors.",
        "", *report.open_loop_table(loops),
        "", "### History size", "",
        f"`usage` and `consume` of crowd user `{CROWD_MEASURED}` on two SQLite databases "
        f"with the same accounts and a crowd of {databases.CROWD:,} users: 1,000 stored events "
        "(10 crowd users x 100 days) against 10,000,000 (10,000 users x 100 days); same "
        "rounds as above, slowdown = median over rounds of 1k req/s / 10M req/s.",
        "", *report.history_table([(name, series[f"small/{name}"], series[f"big/{name}"])
                                   for name in ("usage", "consume")]),
        "", "### Storage", "",
        "The 10M-event SQLite database as seeded, from SQLite's `dbstat` table: bytes per "
        "stored event for the events table and each of its indexes. PostgreSQL: not measured.",
        "", *report.storage_table(dbs.storage),
        "", *[f"- {note}" for note in notes],
    ]


def errors_of(series: dict, loops: list) -> int:
    """The failed requests that fail the run: wrk's, and the open loop's but its overload timeouts.

    Above the rate the targets ask to serve cleanly, a server past its capacity
    queues calls until they time out: the table shows those, they fail nothing.
    A wrong status or a refused connection fails the run at any rate.
    """
    failed = sum(s.errors for s in series.values())
    for _backend, outcome in loops:
        overload = outcome.rate > report.OPEN_LOOP_CLEAN_RATE
        failed += outcome.error_count - (outcome.errors["timeout"] if overload else 0)
    return failed


def run(work: Path) -> tuple[str, str, int]:
    """Seed, measure, append the other sections; return (full, headline, errors)."""
    load_start, started = report.load_average(), time.monotonic()
    dbs = databases.prepare(work)
    print(f"databases ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    series, loops = measure(work, dbs)
    print(f"measured in {time.monotonic() - started:.0f}s", file=sys.stderr)
    errors = errors_of(series, loops)
    extra = []
    for section in SECTIONS:
        markdown, failed = section(work)
        print(f"{section.__module__} done at {time.monotonic() - started:.0f}s", file=sys.stderr)
        extra.append(markdown)
        errors += failed
    head = headline(series, load_start)
    full = "\n".join(head + details(series, loops, dbs)) + "\n"
    short = "\n".join(head + ["", "Open-loop latencies, history size and storage: "
                                  "[bench/results.md](bench/results.md), also in "
                                  "[docs/benchmarks.md](docs/benchmarks.md)."]) + "\n"
    return "\n".join([full, *extra]), short, errors


def main() -> int:
    """Run the benchmark, print the results, and write them where they belong."""
    started = time.monotonic()
    with scratch("chatquota-bench-") as work:
        full, headline, errors = run(work)
    print(full)
    for path in report.publish(full, headline):
        print(f"wrote {path}", file=sys.stderr)
    print(f"bench took {time.monotonic() - started:.0f}s", file=sys.stderr)
    if errors:
        print(f"{errors} requests failed: see the errors columns", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
