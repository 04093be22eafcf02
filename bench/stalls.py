"""Does maintenance stall metering? consume latency before and during prune-events and backup.

Takes the database with ten million events over 100 days (10,000 users) that
the rest of the benchmark uses (bench/databases.py, cached for the day), serves
it with gunicorn, and sends `consume` at a fixed rate (open loop: each
request has a scheduled send time and its latency counts from then, so a
stalled server shows as the whole stall, not as fewer requests). While the
load runs, the real command line prunes the oldest day, then the next ten
days, then backs the database up, each in a subprocess against the same
file. The report gives consume p50/p99/max per window and p99 during each
chore against p99 before (target: at most 2x).

`python -m bench.stalls` (or `make bench-maintenance`) prints the Markdown;
`section(work)` returns it and the number of failed requests, for bench.run.
"""

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from chatquota import clock

from . import databases, seed
from .server import API, app_env, gunicorn, standalone

ROOT = Path(__file__).resolve().parent.parent
RATE = 50  # consume requests per second
TIMEOUT_S = 60
WARMUP_S = 10
BASELINE_S = 30
AFTER_S = 15
EVENTS, CROWD, DAYS = databases.BIG["events"], databases.CROWD, seed.HISTORY_DAYS
TARGET_RATIO = 2.0

# The `chatquota` command, run from this checkout (not whatever the venv's
# script was installed from).
COMMAND = [sys.executable, "-c",
           "import sys; from chatquota.cli import main; sys.argv[0] = 'chatquota'; main()"]


# Open-loop load ----------------------------------------------------------
# Kept self-contained so that a shared paced client can replace it: all the
# rest needs is `OpenLoop(send, rate)` as a context manager and `.between()`.

@dataclass(frozen=True)
class Sample:
    """One request: when it was due (monotonic s), how long it took from then, and if it failed."""

    due: float
    latency: float
    error: str | None


class OpenLoop:
    """Call `send()` `rate` times a second from a pool of threads until the block ends."""

    def __init__(self, send, rate: float, threads: int = 256):
        self.send, self.interval = send, 1 / rate
        self.samples: list[Sample] = []
        self.scheduled: list[float] = []  # due times of the requests handed to the pool
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=threads)
        self._scheduler = threading.Thread(target=self._schedule, daemon=True)

    def __enter__(self):
        self._scheduler.start()
        return self

    def __exit__(self, *_exc):
        self._stop.set()
        self._scheduler.join()
        self._pool.shutdown(wait=True)

    def _schedule(self) -> None:
        start, n = time.monotonic(), 0
        while not self._stop.is_set():
            due = start + n * self.interval
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._lock:
                self.scheduled.append(due)
            self._pool.submit(self._one, due)
            n += 1

    def _one(self, due: float) -> None:
        try:
            self.send()
            error = None
        except Exception as exc:  # noqa: BLE001 -- every failure is counted, none stops the load
            error = str(exc) if isinstance(exc, HTTPFailure) else type(exc).__name__
        sample = Sample(due, time.monotonic() - due, error)
        with self._lock:
            self.samples.append(sample)

    def between(self, start: float, end: float) -> list[Sample]:
        """The requests due in [start, end), once every one of them has finished."""
        while True:
            with self._lock:
                due = sum(1 for d in self.scheduled if start <= d < end)
                done = [s for s in self.samples if start <= s.due < end]
            if len(done) >= due and time.monotonic() >= end:
                return done
            time.sleep(0.05)


class HTTPFailure(Exception):
    """A response other than 2xx."""


def consumer(base: str, key: str, user_uuid: str):
    """Return a function that POSTs one consume and raises unless it succeeds (2xx)."""
    url = urlsplit(base)
    body = json.dumps({"user_uuid": user_uuid, "tokens": 7})
    headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}

    def send() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT_S)
        try:
            conn.request("POST", f"{API}/consume/", body, headers)
            response = conn.getresponse()
            response.read()
            if not 200 <= response.status < 300:
                raise HTTPFailure(f"HTTP {response.status}")
        finally:
            conn.close()

    return send


# The measured windows ------------------------------------------------------

@dataclass(frozen=True)
class Window:
    name: str
    seconds: float
    samples: list[Sample]
    chore: str = ""

    def _quantile(self, q: float) -> float:
        times = sorted(s.latency for s in self.samples)  # failures count with their latency
        return times[min(len(times) - 1, int(q * len(times)))] * 1000 if times else float("nan")

    @property
    def p50(self) -> float:
        return self._quantile(0.50)

    @property
    def p99(self) -> float:
        return self._quantile(0.99)

    @property
    def max(self) -> float:
        return self._quantile(1.0)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if s.error)


def chore(env: dict, *args: str) -> tuple[float, str]:
    """Run one `chatquota` command to completion; return its duration and its stderr."""
    started = time.monotonic()
    done = subprocess.run([*COMMAND, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=3600)
    if done.returncode:
        raise RuntimeError(f"chatquota {' '.join(args)} failed: {done.stderr.strip()}")
    return time.monotonic() - started, done.stderr.strip()


def measured(load: OpenLoop, name: str, env: dict, *args: str, note=lambda out: "") -> Window:
    start = time.monotonic()
    seconds, out = chore(env, *args)
    print(f"{name}: {seconds:.1f}s, {out}", file=sys.stderr)
    return Window(name, seconds, load.between(start, time.monotonic()), note(out))


def idle(load: OpenLoop, name: str, seconds: float) -> Window:
    start = time.monotonic()
    time.sleep(seconds)
    return Window(name, seconds, load.between(start, start + seconds))


def _flush(path: Path) -> None:
    """Write the seeded file out now: the kernel would otherwise flush its gigabytes
    (written with synchronous=OFF) some 30 s later, in the middle of the baseline."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _deleted(out: str) -> str:
    count = int(re.search(r"Deleted (\d+)", out).group(1))
    return f"{count:,} events deleted"


def run_windows(work: Path) -> tuple[list[Window], list[str]]:
    notes: list[str] = []
    s, _sizes = databases.big(work, notes, "stalls.sqlite3")
    db = Path(s.path)
    size = db.stat().st_size
    _flush(db)
    notes += [f"Database: {EVENTS:,} events of {CROWD:,} users over {DAYS} days, "
             f"{size / 2**30:.2f} GiB; "
             f"`consume` at {RATE}/s (open loop, latency from each request's scheduled "
             f"send time, {TIMEOUT_S}s timeout), synchronous=FULL."]
    env = {**os.environ, **app_env(f"sqlite:///{db}")}
    today = clock.now().astimezone(UTC).date()
    first = today - timedelta(days=DAYS)  # the history's oldest day
    windows = []
    with gunicorn("wsgi:app", "/health/", work, app_env(f"sqlite:///{db}")) as base:
        send = consumer(base, s.key("service"), s.uuid(seed.CROWD_MEASURED))
        with OpenLoop(send, RATE) as load:
            time.sleep(WARMUP_S)
            windows.append(idle(load, "before", BASELINE_S))
            windows.append(measured(load, "prune-events, oldest day", env, "prune-events",
                                    "--before", str(first + timedelta(days=1)),
                                    note=_deleted))
            windows.append(measured(load, "prune-events, next ten days", env, "prune-events",
                                    "--before", str(first + timedelta(days=11)),
                                    note=_deleted))
            backup = work / "backup.sqlite3"
            windows.append(measured(
                load, "backup", env, "backup", str(backup),
                note=lambda _out: f"{backup.stat().st_size / 2**20:,.0f} MiB copied"))
            windows.append(idle(load, "after", AFTER_S))
    return windows, notes


def render(windows: list[Window], notes: list[str]) -> str:
    before = windows[0].p99
    lines = ["## Maintenance while metering", "",
             "| window | chore took | handled | requests | errors | p50 ms | p99 ms | max ms "
             "| p99 / before | <= 2x |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for w in windows:
        ratio = w.p99 / before
        chore_row = w.name not in ("before", "after")
        verdict = ("met" if ratio <= TARGET_RATIO else "MISSED") if chore_row else ""
        lines.append(f"| {w.name} | {w.seconds:.1f} s | {w.chore} | {len(w.samples)} "
                     f"| {w.errors} | {w.p50:.1f} | {w.p99:.1f} | {w.max:.1f} "
                     f"| {ratio:.2f} | {verdict} |")
    kinds: dict[str, int] = {}
    for w in windows:
        for sample in w.samples:
            if sample.error:
                kinds[sample.error] = kinds.get(sample.error, 0) + 1
    if kinds:
        notes = [*notes, "Errors: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
                 + "."]
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


def section(work: Path) -> tuple[str, int]:
    """Measure consume before and during prune-events and backup; return Markdown and errors."""
    windows, notes = run_windows(work)
    return render(windows, notes), sum(w.errors for w in windows)


if __name__ == "__main__":
    sys.exit(standalone(section, "maintenance"))
