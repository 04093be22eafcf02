"""Server-sent events from the upstream to the client, one event at a time, metered.

Each event is passed on as soon as it is complete (nothing is buffered
beyond one event). The gateway asked the upstream for usage
(`stream_options.include_usage`); a client that did not ask does not see
it: the usage-only chunk is dropped and `usage` fields are removed. Where
the upstream sends no usage (llama-cpp-python's server), content chunks are
counted: one token per choice per chunk, which is what llama.cpp sends.
When the client goes away, the WSGI server closes this generator: the
upstream connection is closed (so the upstream stops generating) and what
was relayed is charged.
"""

import json
import time
from collections.abc import Iterable, Iterator

import httpx

from .calls import Call
from .estimate import reported_usage

DONE = b"data: [DONE]\n\n"
_DELTA_FIELDS = ("content", "tool_calls", "function_call", "reasoning_content", "reasoning",
                 "refusal")


class Meter:
    """What a streamed reply has cost so far: the usage it reported, or its counted chunks."""

    def __init__(self):
        self.usage: tuple[int, int] | None = None
        self.counted = 0

    def read(self, chunk: dict) -> None:
        """Take one chunk's usage, if any, and count the choices that carry output."""
        usage = reported_usage(chunk)
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if choice.get("text") or (isinstance(delta, dict)
                                      and any(delta.get(f) for f in _DELTA_FIELDS)):
                self.counted += 1


def events(lines: Iterable[str]) -> Iterator[list[str]]:
    """Group SSE lines into events (a blank line ends one)."""
    event: list[str] = []
    for line in lines:
        if line:
            event.append(line)
        elif event:
            yield event
            event = []
    if event:
        yield event


def passed_on(event: list[str], meter: Meter, show_usage: bool) -> bytes | None:
    """Meter one event; return it as the client gets it, or None to drop it."""
    data = "\n".join(line[5:].lstrip(" ") for line in event if line.startswith("data:"))
    if data and data != "[DONE]":
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if isinstance(chunk, dict):
            meter.read(chunk)
            if not show_usage and "usage" in chunk:
                if chunk["usage"] and not chunk.get("choices"):
                    return None  # the usage-only chunk the client did not ask for
                del chunk["usage"]
                others = [line for line in event if not line.startswith("data:")]
                event = [*others, "data: " + json.dumps(chunk, separators=(",", ":"))]
    return ("\n".join(event) + "\n\n").encode()


class Stream:
    """The response body of a streamed call: the upstream's events, metered, then settled.

    A class rather than a bare generator because the WSGI server may close
    the body before iterating it (a client gone before the first byte), and
    closing a generator that never started runs none of its code: `close`
    settles the call and frees its thread slot whatever happened.
    """

    def __init__(self, upstream: httpx.Response, call: Call, show_usage: bool, seconds: float,
                 on_close):
        self._upstream, self._call, self._show_usage = upstream, call, show_usage
        self._deadline = time.monotonic() + seconds
        self._on_close, self._closed = on_close, False
        self._meter = Meter()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for event in events(self._upstream.iter_lines()):
                out = passed_on(event, self._meter, self._show_usage)
                if out == DONE:  # charged before the client hears the reply is complete
                    self._call.settle(self._meter.usage, self._meter.counted)
                if out is not None:
                    yield out
                if time.monotonic() > self._deadline:  # the hold would expire: stop first
                    break
        except httpx.HTTPError as error:  # the upstream broke off: say so, charge what came
            message = {"error": {"message": f"The upstream stopped: {error}", "type": "api_error",
                                 "param": None, "code": "upstream_error"}}
            yield f"data: {json.dumps(message)}\n\n".encode()
        finally:
            self.close()  # settled as soon as the reply is over, not when the server closes it

    def close(self) -> None:
        """Close the upstream (it stops generating), charge what was relayed, free the slot."""
        if self._closed:
            return
        self._closed = True
        try:
            self._upstream.close()
            self._call.settle(self._meter.usage, self._meter.counted)
        finally:
            self._on_close()
