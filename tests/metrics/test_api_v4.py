"""NanoMQ's /api/v4/prometheus and /api/v4/metrics: its auth, its series names, its JSON."""

import gzip
import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

NANOMQ_SERIES = {
    "nanomq_connections_count": "gauge", "nanomq_connections_max": "gauge",
    "nanomq_sessions_count": "gauge", "nanomq_sessions_max": "gauge",
    "nanomq_topics_count": "gauge", "nanomq_topics_max": "gauge",
    "nanomq_subscribers_count": "gauge", "nanomq_subscribers_max": "gauge",
    "nanomq_messages_received": "counter", "nanomq_messages_sent": "counter", "nanomq_messages_dropped": "counter",
    "nanomq_memory_usage": "gauge", "nanomq_memory_usage_max": "gauge",
    "nanomq_cpu_usage": "gauge", "nanomq_cpu_usage_max": "gauge",
}


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def nanomq_values(text: str) -> dict:
    """{series: value}; NanoMQ's own exposition has one unlabelled sample per series, so read the lines."""
    values = {}
    for line in text.splitlines():
        name, _, number = line.partition(" ")
        if name.startswith("nanomq_"):
            values[name] = float(number)
    return values


@pytest.fixture
def admin(basic):
    return {"Authorization": basic("admin", "public")}


@pytest.mark.parametrize("path", ["/api/v4/prometheus", "/api/v4/metrics", "/api/v4/no-such-endpoint"])
def test_api_without_credentials_is_401_with_nanomq_code_104(server, path):
    response = server.get(path)
    assert response.status == 401
    assert json.loads(response.body) == {"code": 104}
    assert response.headers.get("WWW-Authenticate").startswith("Basic ")


@pytest.mark.parametrize("username, password", [("admin", "wrong"), ("nobody", "public"), ("nobody", "wrong"),
                                                ("admin", ""), ("", "")])
def test_wrong_credentials_get_one_answer_whoever_the_user(server, basic, username, password):
    response = server.get("/api/v4/prometheus", {"Authorization": basic(username, password)})
    assert response.status == 401
    assert json.loads(response.body) == {"code": 103}


@pytest.mark.parametrize("header", ["Bearer abc", "Basic !!!not-base64!!!", "Basic YWRtaW5wdWJsaWM=",  # no colon
                                    "Basic", "Digest username=admin"])
def test_malformed_authorization_is_401_not_an_error(server, header):
    assert server.get("/api/v4/prometheus", {"Authorization": header}).status == 401


def test_configured_credentials_are_the_ones_checked(start_server, basic):
    running = start_server(username="ops", password="s3cret:with colon")
    assert running.get("/api/v4/metrics", {"Authorization": basic("admin", "public")}).status == 401
    assert running.get("/api/v4/metrics", {"Authorization": basic("ops", "s3cret:with colon")}).status == 200


def test_no_auth_opens_the_api(start_server):
    running = start_server(auth_type="no_auth")
    assert running.get("/api/v4/prometheus").status == 200
    assert running.get("/api/v4/metrics").status == 200


def test_api_prometheus_is_the_metrics_text_plus_nanomq_series(server, admin):
    server.broker.connections = 2
    response = server.get("/api/v4/prometheus", admin)
    assert response.status == 200
    assert response.headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    found = families(response.text)
    assert set(families(server.get("/metrics").text)) <= set(found)
    assert {name: found[name].type for name in NANOMQ_SERIES} == NANOMQ_SERIES
    assert found["appliance_connections"].samples[0].value == 2


def test_nanomq_series_follow_the_broker(server, admin):
    broker = server.broker
    broker.connections, broker.sessions, broker.topics, broker.subscriptions = 3, 4, 5, 6
    broker.stats.messages_received[:] = [1, 2, 3]
    broker.stats.messages_sent[:] = [4, 5, 6]
    broker.stats.messages_dropped.update({"queue_full": 2, "expired": 1})
    values = nanomq_values(server.get("/api/v4/prometheus", admin).text)
    assert values["nanomq_connections_count"] == 3
    assert values["nanomq_sessions_count"] == 4
    assert values["nanomq_topics_count"] == 5
    assert values["nanomq_subscribers_count"] == 6
    assert values["nanomq_messages_received"] == 6
    assert values["nanomq_messages_sent"] == 15
    assert values["nanomq_messages_dropped"] == 3
    assert values["nanomq_memory_usage"] > 1_000_000
    assert 0 <= values["nanomq_cpu_usage"] <= 100


def test_nanomq_max_series_keep_the_running_maximum(server, admin):
    server.broker.connections, server.broker.subscriptions = 5, 9
    server.get("/api/v4/prometheus", admin)
    server.broker.connections, server.broker.subscriptions = 2, 1
    values = nanomq_values(server.get("/api/v4/prometheus", admin).text)
    assert (values["nanomq_connections_count"], values["nanomq_connections_max"]) == (2, 5)
    assert (values["nanomq_subscribers_count"], values["nanomq_subscribers_max"]) == (1, 9)
    assert values["nanomq_memory_usage_max"] >= values["nanomq_memory_usage"]


def test_api_prometheus_is_gzipped_when_asked(server, admin):
    response = server.get("/api/v4/prometheus", {**admin, "Accept-Encoding": "gzip"})
    assert response.headers.get("Content-Encoding") == "gzip"
    assert "nanomq_connections_count" in nanomq_values(gzip.decompress(response.body).decode())


def test_api_metrics_is_nanomq_json(server, admin):
    server.broker.connections = 7
    response = server.get("/api/v4/metrics", admin)
    assert response.status == 200
    assert response.headers.get("Content-Type") == "application/json"
    document = json.loads(response.body)
    assert document["code"] == 0
    assert document["metrics"] == []
    assert document["cpuinfo"].endswith("%") and float(document["cpuinfo"][:-1]) >= 0
    assert int(document["memory"]) > 1_000_000
    assert document["stats"]["connections_count"] == 7


def test_api_paths_accept_a_trailing_slash_like_nanomq(server, admin):
    assert server.get("/api/v4/metrics/", admin).status == 200


def test_unknown_api_path_is_404_with_code_102_after_authentication(server, admin):
    response = server.get("/api/v4/no-such-endpoint", admin)
    assert response.status == 404
    assert json.loads(response.body) == {"code": 102}


# -- the same API on the real broker (`python -m appliance`), credentials admin / test-secret ---

def test_broker_api_refuses_missing_and_wrong_credentials_alike(broker, fetch, basic):
    url = f"http://127.0.0.1:{broker.http_port}"
    for path in ("/api/v4/prometheus", "/api/v4/metrics"):
        missing = fetch(url + path)
        assert (missing.status, json.loads(missing.body)) == (401, {"code": 104})
        wrong_password = fetch(url + path, {"Authorization": basic("admin", "public")})
        wrong_user = fetch(url + path, {"Authorization": basic("root", "test-secret")})
        assert (wrong_password.status, wrong_password.body) == (wrong_user.status, wrong_user.body) == (
            401, b'{"code":103}')
        assert fetch(url + path, {"Authorization": basic("admin", "test-secret")}).status == 200


def test_broker_api_counts_real_connections_and_keeps_their_maximum(broker, mqtt, fetch, basic):
    admin = {"Authorization": basic("admin", "test-secret")}
    url = f"http://127.0.0.1:{broker.http_port}/api/v4"
    first, second = mqtt(broker.port, "first"), mqtt(broker.port, "second")
    first.connect()
    second.connect()
    second.subscribe("a/#")
    second.subscribe("b/#")
    values = nanomq_values(fetch(url + "/prometheus", admin).text)
    assert (values["nanomq_connections_count"], values["nanomq_subscribers_count"]) == (2, 2)

    second.disconnect()
    first.publish("a/1", b"x", qos=1)
    deadline = time.monotonic() + 10
    while (values := nanomq_values(fetch(url + "/prometheus", admin).text))["nanomq_connections_count"] != 1:
        assert time.monotonic() < deadline, f"connections stayed {values['nanomq_connections_count']}"
        time.sleep(0.05)
    assert values["nanomq_connections_max"] == 2
    assert values["nanomq_subscribers_max"] == 2
    assert values["nanomq_messages_received"] == 1
    assert json.loads(fetch(url + "/metrics", admin).body)["stats"]["connections_max"] == 2


def test_broker_logs_never_show_http_credentials(broker_factory, fetch, basic):
    broker = broker_factory("log { level = debug }\n")
    url = f"http://127.0.0.1:{broker.http_port}"
    right, wrong = basic("admin", "test-secret"), basic("admin", "not-the-password")
    assert fetch(url + "/api/v4/metrics", {"Authorization": right}).status == 200
    assert fetch(url + "/api/v4/metrics", {"Authorization": wrong}).status == 401
    assert fetch(url + "/metrics", {"Authorization": right}).status == 200

    broker.wait_for_log(r'"GET /api/v4/metrics HTTP/1.1" 401')  # the access log is on
    logs = broker.logs()
    for leak in ("test-secret", "not-the-password", right.split()[1], wrong.split()[1]):
        assert leak not in logs
