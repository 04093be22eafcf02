"""A small OpenAI-compatible server for the gateway's tests: real HTTP, scripted replies.

It answers like vLLM or llama.cpp would: word by word, one token per
streamed chunk, with usage on whole replies and, when asked and `usage_on_stream`
is set, in a last usage-only chunk (as vLLM does; llama-cpp-python's server
sends none). Prompt tokens are the words of the messages plus TEMPLATE_TOKENS,
as a chat template adds tokens the client never sent. A few model names
script failures: `broken` answers 400, `slow` waits past any short timeout
before answering, `cut` breaks off a stream after three tokens.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEMPLATE_TOKENS = 20
WORDS_PER_REPLY = 50  # what a reply says when nothing caps it
MAX_WORDS = 1000


def prompt_words(body: dict) -> int:
    """The prompt tokens of a request as this server counts them."""
    if "messages" in body:
        text = " ".join(str(m.get("content", "")) for m in body["messages"])
        return len(text.split()) + TEMPLATE_TOKENS
    given = body.get("input", body.get("prompt", ""))
    items = given if isinstance(given, list) else [given]
    return sum(len(i) if isinstance(i, list) else len(str(i).split()) for i in items)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FakeUpstream"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "test"} for m in ("tiny", "other")]})
        else:
            self._json(404, {"error": {"message": "no such route"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append((self.path, dict(self.headers), body))
        model = body.get("model")
        if model == "broken":
            return self._json(400, {"error": {"message": "bad model settings", "type": "x"}})
        if model == "slow":
            time.sleep(self.server.slow_seconds)
        if self.path.endswith("/embeddings"):
            return self._json(200, {"object": "list", "data": [{"embedding": [0.1, 0.2]}],
                                    "usage": {"prompt_tokens": prompt_words(body),
                                              "total_tokens": prompt_words(body)}})
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        words = WORDS_PER_REPLY if cap is None else min(cap, MAX_WORDS)
        if body.get("stream"):
            return self._stream(body, words)
        usage = {"prompt_tokens": prompt_words(body), "completion_tokens": words,
                 "total_tokens": prompt_words(body) + words}
        text = " ".join(["word"] * words)
        choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                   "finish_reason": "length" if words == cap else "stop"}
                  if "messages" in body else {"index": 0, "text": text, "finish_reason": "stop"})
        reply = {"id": "x", "object": "chat.completion", "model": model, "choices": [choice]}
        if not self.server.no_usage:
            reply["usage"] = usage
        self._json(200, reply)

    def _json(self, status: int, data: dict):
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, body: dict, words: int):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chat = "messages" in body
        try:
            for i in range(words):
                if body.get("model") == "cut" and i == 3:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                piece = {"delta": {"content": "word "}} if chat else {"text": "word "}
                self._event({"id": "x", "choices": [{"index": 0, **piece}]})
                time.sleep(self.server.token_seconds)
            self._event({"id": "x", "choices": [{"index": 0, "delta": {},
                                                 "finish_reason": "stop"}]})
            if self.server.usage_on_stream and (body.get("stream_options") or {}).get(
                    "include_usage"):
                self._event({"id": "x", "choices": [], "usage": {
                    "prompt_tokens": prompt_words(body), "completion_tokens": words,
                    "total_tokens": prompt_words(body) + words}})
            self._write(b"data: [DONE]\n\n")
            self._write(b"")
            self.server.streams_finished += 1
        except (BrokenPipeError, ConnectionResetError):
            self.server.streams_aborted += 1  # the gateway went away: stop generating

    def _event(self, data: dict):
        self._write(f"data: {json.dumps(data)}\n\n".encode())

    def _write(self, data: bytes):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class FakeUpstream(ThreadingHTTPServer):
    """Serve on a free loopback port in a thread until `close()`."""

    daemon_threads = True
    request_queue_size = 1024  # hundreds of streams connect at once

    def __init__(self, *, usage_on_stream: bool = True, token_seconds: float = 0.0,
                 no_usage: bool = False, slow_seconds: float = 5.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.usage_on_stream, self.token_seconds = usage_on_stream, token_seconds
        self.no_usage, self.slow_seconds = no_usage, slow_seconds
        self.requests: list[tuple[str, dict, dict]] = []
        self.streams_finished = self.streams_aborted = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.shutdown()
        self.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
