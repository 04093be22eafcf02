"""The gateway under real gunicorn workers, driven by the official `openai` client.

A scripted OpenAI-compatible upstream (tests/upstream.py) stands behind it;
tests/test_llm.py does the same against a real llama.cpp server.
"""

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import requests
from sqlalchemy import func, select

from chatquota.extensions import db
from chatquota.models import UsageDay, UsageEvent
from chatquota.services import limits

from .live import LiveServer, seed
from .upstream import FakeUpstream

API = "/api/chat-quota"


def usage_of(app, user_uuid) -> int:
    """A user's tokens today, straight from the database."""
    with app.app_context():
        from chatquota.services.accounts import get_user

        user = get_user(db.session, user_uuid)
        return db.session.scalar(select(func.coalesce(func.sum(UsageDay.tokens), 0))
                                 .where(UsageDay.user_id == user.id))


def test_the_openai_client_chats_streams_and_is_refused_at_the_limit(app, database_url):
    upstream = FakeUpstream()
    key, (user,) = seed(app, users=1, daily_limit=400)
    try:
        with LiveServer(database_url, workers=2, CHATQUOTA_UPSTREAM_URL=upstream.url) as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key=key,
                                   default_headers={"X-Chatquota-User": user}, max_retries=2)
            reply = client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "Say hello"}], max_tokens=5)
            assert reply.choices[0].message.content == "word word word word word"
            assert reply.usage.total_tokens == usage_of(app, user) == 22 + 5

            pieces = [chunk.choices[0].delta.content
                      for chunk in client.chat.completions.create(
                          model="tiny", messages=[{"role": "user", "content": "Say hello"}],
                          max_tokens=4, stream=True)
                      if chunk.choices and chunk.choices[0].delta.content]
            assert "".join(pieces) == "word " * 4
            assert usage_of(app, user) == 27 + 26

            asked = len(upstream.requests)
            with app.app_context():
                limits.set_quota(db.session, None, user, {"daily_limit": 60})
            started = time.monotonic()
            with pytest.raises(openai.RateLimitError) as refused:
                client.chat.completions.create(
                    model="tiny", messages=[{"role": "user", "content": "Say hello"}])
            assert time.monotonic() - started < 5, "the client must not retry a quota refusal"
            assert "Daily token limit exceeded; resets at" in refused.value.message
            assert refused.value.response.headers["x-should-retry"] == "false"
            assert len(upstream.requests) == asked and usage_of(app, user) == 53
    finally:
        upstream.close()


@pytest.mark.parametrize("usage_on_stream", [True, False], ids=["usage", "counted"])
def test_concurrent_streams_for_one_user_never_take_usage_past_the_limit(
        app, database_url, usage_on_stream):
    limit, clients = 2000, 24
    upstream = FakeUpstream(usage_on_stream=usage_on_stream, token_seconds=0.005)
    key, (user,) = seed(app, users=1, daily_limit=limit)
    statuses, streamed = [], []

    def chat(i):
        """Stream one question after another until the quota says no."""
        for turn in range(50):
            body = {"model": "tiny", "stream": True, "max_tokens": 60,
                    "messages": [{"role": "user", "content": f"question {i} turn {turn}"}]}
            with requests.post(server.url + "/v1/chat/completions", json=body, stream=True,
                               headers={"Authorization": f"Bearer {key}",
                                        "X-Chatquota-User": user}, timeout=60) as response:
                statuses.append(response.status_code)
                if response.status_code != 200:
                    return
                streamed.append(sum(1 for line in response.iter_lines() if b'"content"' in line))

    try:
        with LiveServer(database_url, workers=4, CHATQUOTA_UPSTREAM_URL=upstream.url) as server:
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(chat, range(clients)))
    finally:
        upstream.close()
    used = usage_of(app, user)
    with app.app_context():
        events = db.session.scalar(select(func.count()).select_from(UsageEvent))
    assert set(statuses) <= {200, 429} and statuses.count(429) == clients
    assert used <= limit
    assert events == statuses.count(200) == len(streamed)
    print(f"\n{clients} clients streaming for one user until refused, limit {limit}: "
          f"{statuses.count(200)} streams ({sum(streamed)} content chunks, the last ones "
          f"shortened to fit), {statuses.count(429)} refused, usage {used}/{limit}")


def test_hundreds_of_open_streams_leave_usage_and_check_answering(app, database_url):
    streams, seconds_per_token = 256, 0.25
    upstream = FakeUpstream(token_seconds=seconds_per_token)
    key, users = seed(app, users=8, daily_limit=10**9)
    headers = {"Authorization": f"Bearer {key}"}
    opened, done, failures, busy_retries = threading.Semaphore(0), threading.Event(), [], []

    def stream(i):
        body = {"model": "tiny", "stream": True, "max_tokens": 400,  # 100 s unless closed
                "messages": [{"role": "user", "content": "tell me a long story"}]}
        try:
            # gunicorn's workers take connections unevenly: one whose gateway
            # threads are all streaming answers 503 gateway_busy, and a client
            # tries again (as OpenAI's clients do), landing on another worker.
            for _attempt in range(10):
                with httpx.Client(timeout=60) as http, http.stream(
                        "POST", server.url + "/v1/chat/completions", json=body,
                        headers={**headers, "X-Chatquota-User": users[i % len(users)]}) as response:
                    if response.status_code == 503:
                        busy_retries.append(i)
                        time.sleep(0.5)
                        continue
                    if response.status_code != 200:
                        failures.append(response.status_code)
                        break
                    lines = response.iter_lines()
                    next(line for line in lines if line.startswith("data:"))
                    opened.release()
                    done.wait(60)  # hold the stream open (the client stops reading; TCP buffers)
                    return
            else:
                failures.append("busy after 10 attempts")
        except Exception as error:  # noqa: BLE001 (reported below)
            failures.append(repr(error))
        opened.release()  # a failure: let the wait below end and report it

    def probe(path, method="get", **kwargs):
        started = time.monotonic()
        response = getattr(requests, method)(server.url + path, timeout=30,
                                             headers={"Authorization": f"Token {key}"}, **kwargs)
        return response.status_code, (time.monotonic() - started) * 1000

    try:
        with LiveServer(database_url, workers=4, CHATQUOTA_UPSTREAM_URL=upstream.url) as server:
            idle = [probe(f"{API}/usage/?user_uuid={users[0]}") for _ in range(30)]
            with ThreadPoolExecutor(streams) as pool:
                for i in range(streams):
                    pool.submit(stream, i)
                for _ in range(streams):
                    assert opened.acquire(timeout=60), "a stream did not open within 60 s"
                assert failures == []
                busy = [probe(f"{API}/usage/?user_uuid={users[0]}") for _ in range(30)]
                busy += [probe(f"{API}/check/", "post", json={"user_uuid": users[0],
                                                              "tokens": 10}) for _ in range(30)]
                still_open = upstream.streams_finished == 0
                done.set()
    finally:
        upstream.close()
    assert still_open, "the streams ended before the probes did: lengthen them"
    assert {status for status, _ms in idle + busy} == {200}
    ms = sorted(ms for _status, ms in busy)
    print(f"\nwith {streams} streams open on 4 workers: usage/check p50 "
          f"{statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms (idle p50 "
          f"{statistics.median(sorted(m for _s, m in idle)):.1f} ms); "
          f"{len(busy_retries)} answers 503 gateway_busy, tried again")
