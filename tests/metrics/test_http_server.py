"""/metrics, /healthz and /readyz over a real socket, and the server's lifecycle and logs."""

import gzip
import logging
import re
import socket

from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS_ACCEPT = (  # what Prometheus 2.x sends
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def samples(text: str) -> dict:
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_is_prometheus_text_without_authentication(server):
    server.broker.connections = 4
    response = server.get("/metrics")
    assert response.status == 200
    assert response.headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    assert samples(response.text)["appliance_connections"] == 4


def test_metrics_values_move_between_scrapes(server):
    server.broker.stats.connections_accepted = 1
    assert samples(server.get("/metrics").text)["appliance_connections_accepted_total"] == 1
    server.broker.stats.connections_accepted = 2
    assert samples(server.get("/metrics").text)["appliance_connections_accepted_total"] == 2


def test_metrics_is_gzipped_when_the_scraper_asks(server):
    response = server.get("/metrics", {"Accept-Encoding": "gzip"})
    assert response.headers.get("Content-Encoding") == "gzip"
    assert "appliance_connections" in samples(gzip.decompress(response.body).decode())


def test_metrics_speaks_openmetrics_to_prometheus(server):
    response = server.get("/metrics", {"Accept": PROMETHEUS_ACCEPT})
    assert response.headers.get("Content-Type").startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")


def test_metrics_carries_no_nanomq_series(server):
    assert "nanomq_" not in server.get("/metrics").text


def test_healthz_answers_from_the_status(server):
    assert server.get("/healthz").status == 200
    server.status.is_healthy = False
    assert server.get("/healthz").status == 503


def test_readyz_answers_from_the_status(server):
    assert server.get("/readyz").status == 200
    server.status.is_ready = False
    assert server.get("/readyz").status == 503
    assert server.get("/healthz").status == 200


def test_unknown_path_is_404(server):
    assert server.get("/nothing-here").status == 404


def test_listening_log_line_names_the_port_actually_bound(start_server, caplog):
    caplog.set_level(logging.INFO, logger="appliance.metrics")
    running = start_server()
    host, port = running.server.address
    assert port != 0
    assert f"HTTP server listening on 127.0.0.1:{port}" in caplog.messages


def test_binds_the_configured_address_only(start_server):
    running = start_server(bind="127.0.0.1")
    assert running.server.address[0] == "127.0.0.1"


def test_stop_closes_the_port(start_server):
    running = start_server()
    port = running.server.address[1]
    running.server.stop()
    probe = socket.socket()
    try:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        probe.close()


def test_credentials_never_reach_the_logs_even_when_a_request_fails(server, basic, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    secret = basic("admin", "public")
    assert server.get("/api/v4/prometheus", {"Authorization": secret}).status == 200
    assert server.get("/api/v4/prometheus", {"Authorization": basic("admin", "guess")}).status == 401
    server.broker.broken = True
    assert server.get("/api/v4/prometheus", {"Authorization": secret}).status == 500
    assert server.get("/metrics", {"Authorization": secret}).status == 500

    logged = caplog.text + "".join(capfd.readouterr())
    assert re.search(r"GET /api/v4/prometheus .*401", logged)  # the access log ran
    assert "broker read failed" in logged  # and so did the error log
    for leak in (secret, secret.split()[1], "public", "guess"):
        assert leak not in logged


# -- on the real broker (`python -m appliance`) -------------------------------------------

def test_stalled_http_clients_block_neither_mqtt_nor_other_scrapes(broker, mqtt, fetch):
    stalled = []
    try:
        for _ in range(20):  # each sends half a request and then nothing
            connection = socket.create_connection(("127.0.0.1", broker.http_port), timeout=10)
            connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            stalled.append(connection)
        subscriber = mqtt(broker.port, "subscriber")
        subscriber.connect()
        subscriber.subscribe("t", qos=1)
        publisher = mqtt(broker.port, "publisher")
        publisher.connect()
        publisher.publish("t", b"still flowing", qos=1)
        assert subscriber.expect_message().payload == b"still flowing"
        scrape = fetch(f"http://127.0.0.1:{broker.http_port}/metrics")
        assert scrape.status == 200
        assert samples(scrape.text)["appliance_connections"] == 2
    finally:
        for connection in stalled:
            connection.close()


def test_broker_probes_answer_without_authentication(broker, fetch):
    url = f"http://127.0.0.1:{broker.http_port}"
    assert fetch(url + "/healthz").status == 200
    assert fetch(url + "/readyz").status == 200
