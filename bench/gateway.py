"""The gateway's share of `make bench`: added latency, and how many streams it holds.

The upstream is the test suite's fake OpenAI-compatible server
(tests/upstream.py: real HTTP, one word per streamed chunk, usage reported),
run in processes of its own so that its CPU is not the gateway's: one
answering at once, one sending a token every STREAM_TOKEN_SECONDS for the
held streams. chatquota runs under gunicorn (bench.server) on a seeded
database; the `spender` (no limits) calls with its own key. The same client
code (httpx, asyncio) calls the upstream directly and through chatquota, and
the table reports the difference per percentile.

Alone: `python -m bench.gateway` (or `make bench-gateway`) prints the section.
"""

import asyncio
import math
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from . import seed
from .server import API, THREADS, WORKER_CLASS, WORKERS, app_env, gunicorn, standalone

ROOT = Path(__file__).resolve().parent.parent
HELD_MODEL = "held-tiny"  # served by the slow upstream (the upstreams file routes it)
PROMPT = [{"role": "user", "content": "Say hello to the benchmark"}]
REPLY_TOKENS = 16  # per latency call
SEQUENTIAL = 200  # calls, one after another
CONCURRENCY, CONCURRENT = 8, 800  # calls, 8 at a time
WARMUP = 40
STREAM_TOKEN_SECONDS = 0.25  # the held streams' upstream: 4 tokens a second
HELD_TOKENS = 120  # 30 s per held stream
HELD_LEVELS = (256, 448)  # 448: 4 workers x (128 - 16 reserved) gateway threads
BUSY_RETRIES = 10  # a stream refused `503 gateway_busy` tries again a second later
PROBES = 100  # usage and check calls each, idle and with the streams open
TIMEOUT = httpx.Timeout(60.0, connect=30.0)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of `values` (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else float("nan")


@dataclass
class Sample:
    """Timings of one kind of call, in milliseconds, and its failures."""

    times: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)  # time to first token (streams)
    failures: list[str] = field(default_factory=list)


# --- the upstream, in a process of its own -------------------------------------------------

def serve_upstream(token_seconds: float) -> None:
    """Serve the fake upstream, print its URL, and stop when stdin closes."""
    sys.path.insert(0, str(ROOT))
    from tests.upstream import FakeUpstream

    server = FakeUpstream(token_seconds=token_seconds)
    server.requests = _Forgetful()  # it keeps every request for the tests; not here
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
    # algorithm and delayed ACKs add 40 ms to every reply. Real servers set it.
    server.RequestHandlerClass.disable_nagle_algorithm = True
    print(server.url, flush=True)
    sys.stdin.read()
    server.close()


class _Forgetful(list):
    def append(self, item):
        pass


@contextmanager
def upstream(token_seconds: float):
    """Run the fake upstream in another process; yield its base URL (ending in /v1)."""
    process = subprocess.Popen([sys.executable, "-m", "bench.gateway", "--upstream",
                                str(token_seconds)], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the fake upstream did not start")
        yield url
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the client --------------------------------------------------------------------------

def _body(stream: bool, tokens: int = REPLY_TOKENS, model: str = "tiny") -> dict:
    return {"model": model, "messages": PROMPT, "max_tokens": tokens, "stream": stream}


async def chat(client: httpx.AsyncClient, url: str, headers: dict, sample: Sample) -> None:
    """One whole chat completion; its time from send to the last byte."""
    started = time.perf_counter()
    try:
        response = await client.post(url, json=_body(False), headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        reply = response.json()
        if (response.status_code != 200
                or reply["choices"][0]["message"]["content"].count("word") != REPLY_TOKENS):
            sample.failures.append(f"{response.status_code} {response.text[:120]}")
            return
        sample.times.append(elapsed)
    except (httpx.HTTPError, ValueError, KeyError) as error:
        sample.failures.append(repr(error))


async def stream_chat(client: httpx.AsyncClient, url: str, headers: dict, sample: Sample) -> None:
    """One streamed chat completion: time to the first token and to `[DONE]`."""
    started = time.perf_counter()
    first, words, done = None, 0, False
    try:
        async with client.stream("POST", url, json=_body(True), headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                sample.failures.append(f"{response.status_code} {response.text[:120]}")
                return
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    done = True
                elif '"content"' in line and "word" in line:
                    words += 1
                    if first is None:
                        first = (time.perf_counter() - started) * 1000
        if not done or words != REPLY_TOKENS:
            sample.failures.append(f"incomplete stream: {words} words, done={done}")
            return
        sample.firsts.append(first)
        sample.times.append((time.perf_counter() - started) * 1000)
    except httpx.HTTPError as error:
        sample.failures.append(repr(error))


async def run_calls(call, url: str, headers: dict, count: int, concurrency: int) -> Sample:
    """Make `count` calls, `concurrency` at a time, on one connection each."""
    sample = Sample()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:
        for _ in range(concurrency):  # open the connections before measuring
            await call(client, url, headers, Sample())
        remaining = iter(range(count))

        async def worker():
            for _ in remaining:
                await call(client, url, headers, sample)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sample


# --- measurements ------------------------------------------------------------------------

async def latencies(direct: str, gateway: str, key: str) -> list[tuple[str, Sample, Sample]]:
    """The same calls against the upstream and through chatquota, alternating by kind."""
    auth = {"Authorization": f"Bearer {key}"}
    rows = []
    for name, call, count, concurrency in (
            ("chat, sequential", chat, SEQUENTIAL, 1),
            (f"chat, {CONCURRENCY} at a time", chat, CONCURRENT, CONCURRENCY),
            ("stream, sequential", stream_chat, SEQUENTIAL, 1),
            (f"stream, {CONCURRENCY} at a time", stream_chat, CONCURRENT, CONCURRENCY)):
        await run_calls(call, direct + "/chat/completions", {}, WARMUP, concurrency)
        await run_calls(call, gateway + "/chat/completions", auth, WARMUP, concurrency)
        rows.append((name,
                     await run_calls(call, direct + "/chat/completions", {}, count, concurrency),
                     await run_calls(call, gateway + "/chat/completions", auth, count,
                                     concurrency)))
    return rows


async def probes(base: str, s: seed.Seeded) -> tuple[Sample, Sample]:
    """`usage` (the reader's own) and `check` (the service for the reader), one at a time."""
    usage, check = Sample(), Sample()
    reader = {"Authorization": f"Token {s.key('reader')}"}
    service = {"Authorization": f"Token {s.key('service')}"}
    body = {"user_uuid": s.uuid("reader"), "tokens": 100}
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for _ in range(PROBES):
            for sample, send in (
                    (usage, lambda: client.get(f"{base}{API}/usage/", headers=reader)),
                    (check, lambda: client.post(f"{base}{API}/check/", json=body,
                                                headers=service))):
                started = time.perf_counter()
                try:
                    response = await send()
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code == 200:
                        sample.times.append(elapsed)
                    else:
                        sample.failures.append(f"{response.status_code} {response.text[:120]}")
                except httpx.HTTPError as error:
                    sample.failures.append(repr(error))
    return usage, check


@dataclass
class Held:
    """One level of held streams."""

    asked: int
    opened: int = 0
    completed: int = 0
    busy: int = 0  # 503 gateway_busy answers (each retried after a second)
    refused: int = 0  # streams still refused busy after BUSY_RETRIES retries
    open_seconds: float = 0.0
    held_through: bool = False  # every stream was still open when the probes ended
    usage: Sample = field(default_factory=Sample)
    check: Sample = field(default_factory=Sample)
    firsts: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def hold_streams(base: str, s: seed.Seeded, count: int) -> Held:
    """Open `count` slow streams, probe usage/check while they are all open, then finish them."""
    held = Held(count)
    auth = {"Authorization": f"Bearer {s.key('spender')}"}
    opened, release = asyncio.Queue(), asyncio.Event()
    url = base + "/v1/chat/completions"
    first_at: list[float] = []

    async def attempt(client: httpx.AsyncClient, mine: dict) -> bool:
        """One try at a stream; False when the gateway answered 503 gateway_busy."""
        started = time.perf_counter()
        words, done = 0, False
        async with client.stream("POST", url, json=_body(True, HELD_TOKENS, HELD_MODEL),
                                 headers=auth) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                if response.status_code == 503 and "gateway_busy" in text:
                    held.busy += 1
                    return False
                held.failures.append(f"{response.status_code} {text[:120]}")
                return True
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    done = True
                elif '"content"' in line and "word" in line:
                    words += 1
                    if words == 1:
                        now = time.perf_counter()
                        held.firsts.append((now - started) * 1000)
                        first_at.append(now)
                        held.opened += 1
                        mine["opened"] = True
                        opened.put_nowait(True)
                        await release.wait()  # hold it: stop reading, TCP buffers the rest
        if done and words == HELD_TOKENS:
            held.completed += 1
        else:
            held.failures.append(f"incomplete stream: {words} words, done={done}")
        return True

    async def one(client: httpx.AsyncClient):
        """A stream, retried as the 503's Retry-After says (as OpenAI's SDKs do)."""
        mine = {"opened": False}
        try:
            for _ in range(BUSY_RETRIES + 1):
                if await attempt(client, mine):
                    return
                await asyncio.sleep(1)
            held.refused += 1
        except httpx.HTTPError as error:
            held.failures.append(repr(error))
        finally:
            if not mine["opened"]:
                opened.put_nowait(False)  # never opened: do not wait for it

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:
        started = time.perf_counter()
        tasks = [asyncio.create_task(one(client)) for _ in range(count)]
        for _ in range(count):
            await opened.get()
        held.open_seconds = time.perf_counter() - started
        held.usage, held.check = await probes(base, s)
        probed = time.perf_counter()
        # A stream's upstream ends about HELD_TOKENS token times after its first token.
        held.held_through = bool(first_at) and (
            min(first_at) + (HELD_TOKENS - 1) * STREAM_TOKEN_SECONDS > probed)
        release.set()
        await asyncio.gather(*tasks)
    return held


# --- the Markdown ------------------------------------------------------------------------

def _ms(value: float) -> str:
    return f"{value:.1f}" if not math.isnan(value) else "-"


def _p50_p99(values: list[float]) -> str:
    return f"{_ms(percentile(values, 50))} / {_ms(percentile(values, 99))}"


def _added(gateway: list[float], direct: list[float], p: float) -> str:
    return f"+{_ms(percentile(gateway, p) - percentile(direct, p))}".replace("+-", "-")


def latency_table(rows) -> list[str]:
    lines = ["| calls (each) | direct p50 / p99 ms | through chatquota p50 / p99 ms "
             "| added p50 / p99 ms | failed |",
             "|---|---:|---:|---:|---:|"]
    for name, direct, gateway in rows:
        failed = len(direct.failures) + len(gateway.failures)
        measures = [("time to first token", "firsts"), ("whole stream", "times")] \
            if direct.firsts else [("whole reply", "times")]
        for what, attr in measures:
            d, g = getattr(direct, attr), getattr(gateway, attr)
            lines.append(
                f"| {name}: {what} ({len(g)}) | {_p50_p99(d)} | {_p50_p99(g)} "
                f"| {_added(g, d, 50)} / {_added(g, d, 99)} | {failed} |")
    return lines


def held_table(idle: tuple[Sample, Sample], levels: list[Held]) -> list[str]:
    lines = ["| streams asked | opened | completed | 503 busy (retried) | never admitted "
             "| failed | opening s "
             "| first token p50 / p99 ms | usage p50 / p99 ms | check p50 / p99 ms |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| 0 (idle) | | | | | {len(idle[0].failures) + len(idle[1].failures)} | | "
             f"| {_p50_p99(idle[0].times)} | {_p50_p99(idle[1].times)} |"]
    for h in levels:
        failed = len(h.failures) + len(h.usage.failures) + len(h.check.failures)
        lines.append(
            f"| {h.asked} | {h.opened} | {h.completed} | {h.busy} | {h.refused} | {failed} "
            f"| {h.open_seconds:.1f} | {_p50_p99(h.firsts)} "
            f"| {_p50_p99(h.usage.times)} | {_p50_p99(h.check.times)} |")
    return lines


def render(rows, idle, levels: list[Held], workers: str) -> str:
    lines = [
        "### Gateway",
        "",
        f"Upstream: the test suite's fake OpenAI-compatible server (`tests/upstream.py`, "
        f"Python's threading HTTP server, one word per streamed chunk, usage reported) in a "
        f"process of its own on the same machine, answering at once. chatquota: {workers}, "
        "SQLite (`synchronous=FULL`); the caller is a user without limits using its own key, "
        "so every call is admitted (a hold), forwarded and charged. The same client "
        f"(httpx, asyncio, in the benchmark's process) calls the upstream directly and "
        f"through chatquota; chat calls ask for {REPLY_TOKENS} tokens; times run from "
        "sending the request to the last byte (whole replies, streams) or to the first "
        "content chunk (time to first token). Added = through chatquota minus direct, "
        "per percentile.",
        "",
        *latency_table(rows),
        "",
        f"Held streams: streams through chatquota to an upstream sending a token every "
        f"{STREAM_TOKEN_SECONDS * 1000:.0f} ms ({HELD_TOKENS} tokens, "
        f"{HELD_TOKENS * STREAM_TOKEN_SECONDS:.0f} s each), all opened at once; once every "
        f"one has its first token (the client then stops reading, the rest waits in TCP "
        f"buffers) `GET {API}/usage/` and `POST {API}/check/` are called {PROBES} times each, "
        "one at a time, then every stream is read to its end and checked (all its words and "
        "`[DONE]`). `503 busy` counts `503 gateway_busy` answers (every gateway thread of "
        "the worker that accepted the connection was taken; workers accept unevenly), each "
        f"retried a second later as the reply's `Retry-After` says, up to {BUSY_RETRIES} "
        "times; `never admitted` is a stream still refused after that. First token: from "
        "sending the attempt that was admitted.",
        "",
        *held_table(idle, levels),
        "",
    ]
    for h in levels:
        if not h.held_through:
            lines.append(f"- {h.asked} streams: some streams may have ended before the probes "
                         "did (lengthen HELD_TOKENS).")
        for failure in sorted(set(h.failures))[:3]:
            lines.append(f"- {h.asked} streams, a failure: `{failure}`")
    return "\n".join(lines).rstrip() + "\n"


# --- the section -------------------------------------------------------------------------

def gateway_env(db_path: Path, direct: str, slow: str, work: Path) -> dict:
    """chatquota's environment: the database, and the upstreams (the held model to `slow`)."""
    upstreams = work / "upstreams.toml"
    upstreams.write_text(f'[[upstream]]\nname = "slow"\nurl = "{slow}"\n'
                         f'models = ["{HELD_MODEL}"]\n')
    return app_env(f"sqlite:///{db_path}", CHATQUOTA_UPSTREAM_URL=direct,
                   CHATQUOTA_UPSTREAMS_FILE=str(upstreams))


def section(work: Path) -> tuple[str, int]:
    """Measure the gateway; return the Markdown section and the number of failed requests."""
    db_path = work / "gateway.sqlite3"
    s = seed.seed_accounts(f"sqlite:///{db_path}", str(db_path))
    with upstream(0.0) as direct, upstream(STREAM_TOKEN_SECONDS) as slow, \
            gunicorn("wsgi:app", "/health/", work, gateway_env(db_path, direct, slow, work)) as base:
        rows = asyncio.run(latencies(direct, base + "/v1", s.key("spender")))
        idle = asyncio.run(probes(base, s))
        levels = []
        for count in HELD_LEVELS:
            levels.append(asyncio.run(hold_streams(base, s, count)))
            print(f"gateway: {count} streams held, {levels[-1].completed} completed",
                  file=sys.stderr)
    failed = sum(len(d.failures) + len(g.failures) for _n, d, g in rows)
    failed += len(idle[0].failures) + len(idle[1].failures)
    failed += sum(len(h.failures) + len(h.usage.failures) + len(h.check.failures)
                  for h in levels)
    workers = f"gunicorn, {WORKERS} {WORKER_CLASS} workers x {THREADS} threads, on 127.0.0.1"
    return render(rows, idle, levels, workers), failed


def main() -> int:
    if sys.argv[1:2] == ["--upstream"]:
        serve_upstream(float(sys.argv[2]))
        return 0
    return standalone(section, "gateway")


if __name__ == "__main__":
    sys.exit(main())
