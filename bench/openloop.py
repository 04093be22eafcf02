"""Open-loop load: requests sent at a fixed rate, latency from each one's scheduled time.

A closed-loop client such as wrk sends a connection's next request only after
the last response, so a stalled server also stalls the client and the
requests that would have waited are never measured (coordinated omission).
Here request i is due at start + i / rate whatever happened before it, and
its latency runs from that due time to the end of its response: time spent
waiting for a free connection, or for a late client, counts.

The client is asyncio over raw HTTP/1.1 keep-alive connections: a pool that
opens another connection whenever every open one is busy (up to
MAX_CONNECTIONS), cheap enough to send 1,000 requests/s from one core beside
the server.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_CONNECTIONS = 256
TIMEOUT_S = 10.0
# gunicorn closes a keep-alive connection idle for 2 s (its default); drop ours sooner.
IDLE_S = 1.0
SECONDS, WARMUP_S = 5.0, 1.0


class StatusError(Exception):
    """A response that is not 2xx."""


@dataclass
class Outcome:
    """One open-loop run at one rate."""

    name: str
    rate: int
    seconds: float  # from the first due time to the last response
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict = field(default_factory=lambda: {"status": 0, "timeout": 0, "connection": 0})

    @property
    def achieved(self) -> float:
        """Completed calls per second, the time to drain the last ones included."""
        return len(self.latencies_ms) / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


class Pool:
    """Keep-alive HTTP/1.1 connections to one host: reuse an idle one or open another."""

    def __init__(self, base: str, headers: dict):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in
                               {"Host": parts.netloc, **headers}.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def request(self, method: str, path: str, body: dict) -> tuple[int, bytes]:
        """Send one request on a free connection; return (status, body)."""
        data = json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\n{self.headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        async with self.slots:
            reader, writer = await self._connection()
            try:
                writer.write(head.encode() + data)
                status, payload, keep = await _response(reader)
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer, asyncio.get_running_loop().time()))
            else:
                writer.close()
        return status, payload

    async def _connection(self):
        now = asyncio.get_running_loop().time()
        while self.idle:
            reader, writer, used = self.idle.pop()
            if now - used < IDLE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        for _reader, writer, _used in self.idle:
            writer.close()
        self.idle.clear()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head[9:12])
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body, "connection: close" not in head


Call = Callable[[Pool], Awaitable[None]]


def post(path: str, body: dict) -> Call:
    """One POST of `body` to `path`, expected 2xx."""

    async def call(pool: Pool) -> None:
        status, _ = await pool.request("POST", path, body)
        if not 200 <= status < 300:
            raise StatusError(status)

    return call


def reserve_commit(collection: str, user_uuid: str) -> Call:
    """A pair: reserve 50 tokens, then commit 40 of them on the reservation."""

    async def call(pool: Pool) -> None:
        status, payload = await pool.request("POST", collection,
                                             {"user_uuid": user_uuid, "tokens": 50})
        if status != 201:
            raise StatusError(status)
        uuid = json.loads(payload)["uuid"]
        status, _ = await pool.request("POST", f"{collection}{uuid}/commit/", {"tokens": 40})
        if status != 200:
            raise StatusError(status)

    return call


async def _timed(call: Call, pool: Pool, due: float, outcome: Outcome) -> None:
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(call(pool), TIMEOUT_S - max(0.0, loop.time() - due))
    except StatusError:
        outcome.errors["status"] += 1
    except (asyncio.TimeoutError, TimeoutError):
        outcome.errors["timeout"] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        outcome.errors["connection"] += 1
    else:
        outcome.latencies_ms.append((loop.time() - due) * 1000)


async def _run(pool: Pool, name: str, call: Call, rate: int, seconds: float) -> Outcome:
    loop = asyncio.get_running_loop()
    outcome = Outcome(name, rate, seconds)
    start = loop.time() + 0.01
    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        tasks.append(asyncio.create_task(_timed(call, pool, due, outcome)))
    await asyncio.gather(*tasks)
    outcome.seconds = loop.time() - start
    return outcome


async def _series(base: str, headers: dict, name: str, call: Call, rates: list[int],
                  seconds: float, warmup: float) -> list[Outcome]:
    pool = Pool(base, headers)
    try:
        await _run(pool, name, call, rates[0], warmup)
        return [await _run(pool, name, call, rate, seconds) for rate in rates]
    finally:
        pool.close()


def series(base: str, key: str, name: str, call: Call, rates: list[int],
           seconds: float = SECONDS, warmup: float = WARMUP_S) -> list[Outcome]:
    """Warm up at the first rate (discarded), then run `call` at each rate in turn."""
    headers = {"Authorization": f"Token {key}"}
    return asyncio.run(_series(base, headers, name, call, rates, seconds, warmup))
