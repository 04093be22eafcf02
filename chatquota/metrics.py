"""Prometheus metrics: what the rest of the code records, and the text a scrape reads.

Call `admitted`, `refused`, `lock_wait` and `request_done` from anywhere; this
module does not import Flask. Under gunicorn every worker writes its values
to files in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py sets it) and a scrape
adds up every worker's (prometheus_client's multiprocess mode); without it
(`flask run`, tests) the values are this process's.
"""

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "chatquota_http_requests", "HTTP requests answered, by Flask endpoint, method and status.",
    ["endpoint", "method", "status"], registry=None)
LATENCY = Histogram(
    "chatquota_http_request_duration_seconds", "Time to answer an HTTP request, by Flask endpoint "
    "and method.", ["endpoint", "method"], registry=None)
ADMISSIONS = Counter(
    "chatquota_admissions", "Requests admitted by metering, by operation (check, consume, reserve).",
    ["operation"], registry=None)
REFUSALS = Counter(
    "chatquota_refusals", "Requests refused with 429, by the first period that refused.",
    ["period"], registry=None)
LOCK_WAIT = Histogram(
    "chatquota_db_lock_wait_seconds", "Time a write waited for the database writer lock.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None)

OWN_METRICS = (REQUESTS, LATENCY, ADMISSIONS, REFUSALS, LOCK_WAIT)


def request_done(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and how long it took."""
    count, latency = _request_series(endpoint, method, status)
    count.inc()
    latency.observe(seconds)


# Looking a labelled series up costs more than writing to it: each is looked
# up once (Flask endpoints, methods and statuses are few).
@lru_cache(maxsize=1024)
def _request_series(endpoint: str, method: str, status: int):
    return REQUESTS.labels(endpoint, method, str(status)), LATENCY.labels(endpoint, method)


def admitted(operation: str) -> None:
    """Count one admitted request: `check`, `consume` or `reserve`."""
    _admissions(operation).inc()


@lru_cache(maxsize=16)
def _admissions(operation: str):
    return ADMISSIONS.labels(operation)


def refused(period: str) -> None:
    """Count one refusal by `period` (the first that refused: daily, weekly, monthly)."""
    REFUSALS.labels(period).inc()


def lock_wait(seconds: float) -> None:
    """Record how long a write waited for the database writer lock."""
    LOCK_WAIT.observe(seconds)


class _LiveHolds:
    """The reservations holding tokens, read from the database when scraped."""

    def __init__(self, read: Callable[[], tuple[int, int]]):
        self.read = read

    def collect(self):
        """Yield the number of live holds and the tokens they hold."""
        count, tokens = self.read()
        yield GaugeMetricFamily("chatquota_reservations_active",
                                "Reservations holding tokens now (active and not expired).", count)
        yield GaugeMetricFamily("chatquota_reserved_tokens",
                                "Tokens held by active, unexpired reservations now.", tokens)


def exposition(live_holds: Callable[[], tuple[int, int]]) -> bytes:
    """Return the scrape text: every worker's values (or this process's) and the live holds."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        for metric in OWN_METRICS:
            registry.register(metric)
    registry.register(_LiveHolds(live_holds))
    return generate_latest(registry)


def clear_multiprocess_dir() -> None:
    """Remove the values a previous run left in PROMETHEUS_MULTIPROC_DIR (gunicorn's start)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for file in Path(folder).glob("*.db"):
            file.unlink()


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live-only values (gunicorn's child_exit hook)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mark_process_dead(pid)
