"""Authentication on every endpoint, the endpoint list, brokers and nodes, and wrong input
answered with NanoMQ's codes instead of a 500."""

import http.client
import json
import re
import socket

import pytest

from tests.api.conftest import basic

# (method, path, body) of every endpoint this module serves, plus the metrics ones.
ENDPOINTS = [
    ("GET", "/api/v4", None),
    ("GET", "/api/v4/brokers", None),
    ("GET", "/api/v4/nodes", None),
    ("GET", "/api/v4/clients", None),
    ("GET", "/api/v4/clients/someone", None),
    ("GET", "/api/v4/clients/username/someone", None),
    ("DELETE", "/api/v4/clients/someone", None),
    ("GET", "/api/v4/subscriptions", None),
    ("GET", "/api/v4/subscriptions/someone", None),
    ("GET", "/api/v4/topic-tree", None),
    ("POST", "/api/v4/mqtt/publish", {"topic": "t", "payload": "x"}),
    ("POST", "/api/v4/mqtt/publish_batch", [{"topic": "t", "payload": "x"}]),
    ("GET", "/api/v4/configuration", None),
    ("GET", "/api/v4/configuration/basic", None),
    ("GET", "/api/v4/reload", None),
    ("POST", "/api/v4/reload", None),
    ("GET", "/api/v4/metrics", None),
    ("GET", "/api/v4/prometheus", None),
]


def test_every_endpoint_refuses_missing_and_wrong_credentials(api, mqtt, broker):
    watcher = mqtt(broker.port, "watcher")
    watcher.connect()
    watcher.subscribe("t")
    for method, path, body in ENDPOINTS:
        missing = api.request(method, path, body, authorization=None)
        assert (missing.status, missing.json) == (401, {"code": 104}), (method, path)
        wrong = api.request(method, path, body, authorization=basic("admin", "public"))
        assert (wrong.status, wrong.json) == (401, {"code": 103}), (method, path)
    # Nothing refused had an effect: no message was published.
    watcher.expect_no_message()


def test_endpoint_list_is_nanomq_shaped_and_names_what_is_served(api):
    document = api.ok("GET", "/api/v4")
    entries = {(entry["method"], entry["path"]) for entry in document["data"]}
    assert ("GET", "/clients/") in entries and ("DELETE", "/clients/:clientid") in entries
    assert ("POST", "/mqtt/publish") in entries and ("GET", "/topic-tree/") in entries
    assert all(set(entry) == {"path", "name", "method", "descr"} for entry in document["data"])


def test_brokers_and_nodes(api, mqtt, broker):
    mqtt(broker.port, "one").connect()
    mqtt(broker.port, "two").connect()
    brokers = api.ok("GET", "/api/v4/brokers")["data"]
    assert len(brokers) == 1
    assert brokers[0]["node_status"] == "Running"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", brokers[0]["datetime"])
    assert re.fullmatch(r"\d+ Hours, \d+ minutes, \d+ seconds", brokers[0]["uptime"])
    assert brokers[0]["version"] and brokers[0]["sysdescr"]
    nodes = api.ok("GET", "/api/v4/nodes/")["data"]  # NanoMQ accepts a trailing slash
    assert nodes[0]["connections"] == 2
    assert nodes[0]["node_status"] == "Running"


def test_unknown_path_and_wrong_method_get_nanomq_code_102(api):
    unknown = api.get("/api/v4/no-such-thing")
    assert (unknown.status, unknown.json["code"]) == (404, 102)
    wrong_method = api.request("PUT", "/api/v4/clients")
    assert (wrong_method.status, wrong_method.json["code"]) == (405, 102)
    assert set(wrong_method.headers["Allow"].split(", ")) == {"GET", "DELETE"}
    metrics_post = api.post("/api/v4/metrics")
    assert (metrics_post.status, metrics_post.headers["Allow"]) == (405, "GET")


@pytest.mark.parametrize("raw, code", [
    (b"{not json", 109),
    (b"\xff\xfe\x00", 109),
    (b"[" * 100_000 + b"]" * 100_000, 109),  # nesting deeper than any parser stack
    (b"", 107),
    (b"null", 108),
    (b'"a string"', 108),
])
def test_malformed_publish_bodies_are_400_with_a_message(api, raw, code):
    reply = api.post("/api/v4/mqtt/publish", raw=raw, headers={"Content-Type": "application/json"})
    assert reply.status == 400, reply.body
    assert reply.json["code"] == code
    assert reply.json["message"]
    assert b"Traceback" not in reply.body


def test_oversize_body_is_413_without_being_read(api):
    reply = api.post("/api/v4/mqtt/publish", raw=b"x" * (4 * 1024 * 1024 + 1))
    assert (reply.status, reply.json["code"]) == (413, 108)


def test_chunked_body_over_the_bound_is_413(api):
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    chunks = (b"x" * 65536 for _ in range(80))  # 5 MB, no Content-Length
    connection.request("POST", "/api/v4/mqtt/publish", body=chunks,
                       headers={"Authorization": basic(), "Transfer-Encoding": "chunked"}, encode_chunked=True)
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["code"]) == (413, 108)
    connection.close()


def test_malformed_chunked_body_is_400_not_500(api):
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v4/mqtt/publish HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic().encode()
                     + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        reply = sock.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert b'"code":108' in reply and b"Traceback" not in reply


@pytest.mark.parametrize("query", ["_page=0", "_page=x", "_limit=0", "_limit=10001", "_limit=-1",
                                   "_page=1&page=2", "nosuchfilter=1", "_page=1&_page=2",
                                   "conn_state=asleep", "clean_start=maybe", "proto_ver=9", "%zz=%ff"])
def test_bad_query_parameters_are_400_code_108(api, query):
    reply = api.get("/api/v4/clients?" + query)
    assert (reply.status, reply.json["code"]) == (400, 108), reply.body
    assert reply.json["message"]


def test_reload_of_the_unchanged_file_changes_nothing(api):
    reply = api.post("/api/v4/reload")  # hot reload itself: tests/reload
    assert (reply.status, reply.json["code"]) == (200, 0)
    assert reply.json["data"] == {"result": "success", "changed": [], "not_applied": []}


def test_get_reload_shows_nanomq_hot_updatable_settings(broker_factory, api_for):
    broker = broker_factory("mqtt { property_size = 16, max_mqueue_len = 500, max_packet_size = 64KB }\n")
    data = api_for(broker).ok("GET", "/api/v4/reload")["data"]
    assert data["property_size"] == 16
    assert data["msq_len"] == 500
    assert data["max_packet_size"] == 64  # KB, as NanoMQ reports it
    assert data["allow_anonymous"] is True


def test_subscribe_endpoints_nanomq_does_not_support_say_so(api):
    reply = api.post("/api/v4/mqtt/subscribe", {"topic": "a", "clientid": "c"})
    assert (reply.status, reply.json["code"]) == (501, 111)
