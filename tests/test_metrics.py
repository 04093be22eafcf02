"""Prometheus metrics at /metrics: what they count, who may scrape, and gunicorn's workers added up."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from chatquota import create_app, metrics
from chatquota.config import ConfigError, ip_networks

from .live import LiveServer, seed

CONSUME = "/api/chat-quota/consume/"


def samples(text: str) -> dict:
    """Parse a scrape into {(name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scrape: dict, name: str, **labels) -> float:
    """Return one sample of a parsed scrape (0 when absent)."""
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    """Scrape /metrics through the test client; return the parsed samples."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/plain"
    return samples(response.text)


def test_counters_move_with_requests_admissions_and_refusals(client, service, limited):
    before = scrape(client)
    assert client.post(CONSUME, json={"user_uuid": limited.uuid, "tokens": 60},
                       headers=service.headers).status_code == 201
    assert client.post(CONSUME, json={"user_uuid": limited.uuid, "tokens": 60},
                       headers=service.headers).status_code == 429
    assert client.post("/api/chat-quota/check/", json={"user_uuid": limited.uuid, "tokens": 1},
                       headers=service.headers).status_code == 200
    after = scrape(client)

    def moved(name, **labels):
        """Return how much a sample grew between the two scrapes."""
        return value(after, name, **labels) - value(before, name, **labels)

    consume = {"endpoint": "metering.consume", "method": "POST"}
    assert moved("chatquota_http_requests_total", status="201", **consume) == 1
    assert moved("chatquota_http_requests_total", status="429", **consume) == 1
    assert moved("chatquota_http_request_duration_seconds_count", **consume) == 2
    assert moved("chatquota_admissions_total", operation="consume") == 1
    assert moved("chatquota_admissions_total", operation="check") == 1
    assert moved("chatquota_refusals_total", period="daily") == 1


def test_live_holds_are_read_at_scrape_time(client, service, alice):
    reserve = {"user_uuid": alice.uuid, "tokens": 250}
    for _ in range(2):
        assert client.post("/api/chat-quota/reservations/", json=reserve,
                           headers=service.headers).status_code == 201
    now = scrape(client)
    assert value(now, "chatquota_reservations_active") == 2
    assert value(now, "chatquota_reserved_tokens") == 500


def test_lock_wait_is_a_histogram_the_write_path_feeds(client):
    before = value(scrape(client), "chatquota_db_lock_wait_seconds_count")
    metrics.lock_wait(0.003)
    after = scrape(client)
    assert value(after, "chatquota_db_lock_wait_seconds_count") == before + 1
    assert value(after, "chatquota_db_lock_wait_seconds_bucket", le="0.005") >= 1


@pytest.mark.parametrize("environ, headers", [
    ({"REMOTE_ADDR": "203.0.113.9"}, {}),
    ({}, {"X-Forwarded-For": "203.0.113.9"}),  # nginx on this machine, for a remote client
    ({}, {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}),
    ({}, {"X-Real-IP": "203.0.113.9"}),
    ({}, {"X-Forwarded-For": "not-an-address"}),
])
def test_addresses_outside_the_allow_list_get_403(client, environ, headers):
    response = client.get("/metrics", environ_base=environ, headers=headers)
    assert response.status_code == 403
    assert "CHATQUOTA_METRICS_ALLOW" in response.json["detail"]


def test_the_allow_list_takes_networks(app, client):
    app.config["METRICS_ALLOW"] = ip_networks("10.0.0.0/8, 192.0.2.7")
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert client.get("/metrics").status_code == 403  # 127.0.0.1 is no longer listed


def test_a_configured_token_is_required(app, client):
    app.config["METRICS_TOKEN"] = "s3cret-scrape-token"
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "s3cret-scrape-token"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert ok.status_code == 200


def test_a_bad_allow_list_stops_the_start(monkeypatch):
    monkeypatch.setenv("CHATQUOTA_METRICS_ALLOW", "127.0.0.1,localhost")
    with pytest.raises(ConfigError, match="CHATQUOTA_METRICS_ALLOW must be a comma-separated list"):
        create_app()


def test_gunicorn_workers_are_added_up_and_others_are_refused(app, database_url, tmp_path):
    """Under load on 3 workers, one scrape counts every worker's requests."""
    key, (user_uuid,) = seed(app, users=1, daily_limit=1000)
    headers = {"Authorization": f"Token {key}"}
    with LiveServer(database_url, workers=3, log_path=tmp_path / "gunicorn.log") as live:
        def one(i):
            """Consume 10 tokens; return the status."""
            body = {"user_uuid": user_uuid, "tokens": 10}
            return requests.post(live.url + CONSUME, json=body, headers=headers, timeout=30).status_code

        before = samples(requests.get(live.url + "/metrics", timeout=10).text)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(120)))
        after = samples(requests.get(live.url + "/metrics", timeout=10).text)
        refused = requests.get(live.url + "/metrics", headers={"X-Forwarded-For": "198.51.100.1"},
                               timeout=10)

    assert statuses.count(201) == 100 and statuses.count(429) == 20
    consume = {"endpoint": "metering.consume", "method": "POST"}
    for status, count in (("201", 100), ("429", 20)):
        assert value(after, "chatquota_http_requests_total", status=status, **consume) - value(
            before, "chatquota_http_requests_total", status=status, **consume) == count
    assert value(after, "chatquota_admissions_total", operation="consume") == 100
    assert value(after, "chatquota_refusals_total", period="daily") == 20
    assert value(after, "chatquota_http_request_duration_seconds_count", **consume) == 120
    assert refused.status_code == 403


def test_gunicorn_refuses_scrapes_from_outside_its_allow_list(database_url):
    with LiveServer(database_url, workers=1, CHATQUOTA_METRICS_ALLOW="10.0.0.0/8") as live:
        assert requests.get(live.url + "/metrics", timeout=10).status_code == 403
