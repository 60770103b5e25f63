"""What the receiver gets: bodies byte for byte as NanoMQ sends them, URL, headers."""

import json
import re

import pytest

# Captured from NanoMQ 0.23.2 and 0.25.5 (shared/spec/webhook.md).
CONNACK_CAPTURE = (b'{"proto_ver":4,"keepalive":60,"conn_ack":"success","username":"bob","clientid":"sub1",'
                   b'"action":"client_connack"}')
DISCONNECTED_CAPTURE = b'{"reason":"normal","username":"undefined","clientid":"pub2","action":"client_disconnected"}'
PUBLISH_CAPTURE = (b'{"ts":1795844269251,"topic":"a/b/c","retain":false,"qos":1,"action":"message_publish",'
                   b'"from_username":"alice","from_client_id":"pub1","payload":"hello"}')

ALL_EVENTS = [{"event": "on_client_connack"}, {"event": "on_client_disconnected"}, {"event": "on_message_publish"}]


def normalise_ts(body: bytes) -> bytes:
    return re.sub(rb'^\{"ts":\d+,', b'{"ts":0,', body)


def test_bodies_match_nanomq_captures_byte_for_byte(receiver, start_stage):
    stage = start_stage(receiver.url, ALL_EVENTS)
    stage.connack({"client_id": "sub1", "username": "bob", "keepalive": 60, "protocol_version": 4})
    stage.publish({"client_id": "pub1", "username": "alice"},
                  {"topic": "a/b/c", "payload": "hello", "qos": 1, "publisher_id": "pub1",
                   "publisher_username": "alice", "timestamp_ms": 1795844269999})
    stage.disconnected({"client_id": "pub2", "username": None}, "normal")
    bodies = sorted(normalise_ts(r.body) for r in receiver.wait_delivered(3))
    assert bodies == sorted([CONNACK_CAPTURE, DISCONNECTED_CAPTURE, normalise_ts(PUBLISH_CAPTURE)])


def test_publish_ts_is_the_message_time_in_milliseconds(receiver, start_stage):
    stage = start_stage(receiver.url)
    stage.publish(None, {"topic": "t", "payload": "x", "publisher_id": "p", "timestamp_ms": 1795844269251})
    (request,) = receiver.wait_delivered(1)
    assert request.body.startswith(b'{"ts":1795844269251,')


def test_refused_connack_names_the_reason_then_disconnected_follows(receiver, start_stage):
    stage = start_stage(receiver.url, ALL_EVENTS, pool_size=4)
    client = {"client_id": "intruder", "username": "mallory", "keepalive": 30, "protocol_version": 5}
    stage.connack(client, rc=0x86)
    stage.disconnected(client, "connack_refused")
    first, second = receiver.wait_delivered(2)
    assert first.body == (b'{"proto_ver":5,"keepalive":30,"conn_ack":"bad_username_or_password",'
                          b'"username":"mallory","clientid":"intruder","action":"client_connack"}')
    assert second.body == (b'{"reason":"connack_refused","username":"mallory","clientid":"intruder",'
                           b'"action":"client_disconnected"}')


@pytest.mark.parametrize("rc, expected", [(0x87, "not_authorized"), (0x85, "client_identifier_not_valid"),
                                          (0x84, "unsupported_protocol_version"), (0x8A, "banned"),
                                          (0x89, "server_busy"), (0xFE, "fail")])
def test_connack_refusal_reason_strings(receiver, start_stage, rc, expected):
    stage = start_stage(receiver.url, [{"event": "on_client_connack"}])
    stage.connack({"client_id": "c"}, rc=rc)
    (request,) = receiver.wait_delivered(1)
    assert json.loads(request.body)["conn_ack"] == expected


def test_will_message_is_posted_with_the_dead_clients_id(receiver, start_stage):
    stage = start_stage(receiver.url)
    dead = {"client_id": "sensor-7", "username": "dev"}
    stage.publish(dead, {"topic": "status/sensor-7", "payload": "offline", "qos": 1, "retain": True,
                         "publisher_id": "sensor-7", "publisher_username": "dev"})
    (request,) = receiver.wait_delivered(1)
    body = json.loads(request.body)
    assert (body["from_client_id"], body["from_username"], body["retain"]) == ("sensor-7", "dev", True)


@pytest.mark.parametrize("encoding, payload_b64, expected", [
    ("plain", "aGVsbG8=", '"payload":"hello"'),
    ("plain", "YmluAP/+AWVuZA==", '"payload":"bin\\u0000\ufffd\ufffd\\u0001end"'),
    ("plain", "", '"payload":""'),
    ("base64", "YmluAP/+AWVuZA==", '"payload":"YmluAP/+AWVuZA=="'),
    ("base64", "", '"payload":""'),
    ("base62", "aGVsbG8=", '"payload":"7tQLFHz"'),
    ("base62", "YWL//g==", '"payload":"1mZaJC"'),
    ("base62", "", '"payload":""'),
])
def test_payload_encodings_on_the_wire(receiver, start_stage, encoding, payload_b64, expected):
    stage = start_stage(receiver.url, encoding=encoding)
    stage.publish(None, {"topic": "t", "payload_b64": payload_b64, "publisher_id": "p"})
    (request,) = receiver.wait_delivered(1)
    assert request.body.decode("utf-8").endswith(expected + "}")
    json.loads(request.body)  # always valid JSON


def test_invalid_utf8_in_plain_payloads_is_counted(receiver, start_stage):
    stage = start_stage(receiver.url)
    stage.publish(None, {"topic": "t", "payload_b64": "YWL//g==", "publisher_id": "p"}, count=3)
    receiver.wait_delivered(3)
    assert stage.metrics()[("appliance_webhook_payload_utf8_replacements_total", ())] == 6


def test_url_path_query_and_configured_headers_are_sent_as_written(receiver, start_stage):
    stage = start_stage(receiver.url + "/hooks/mqtt?token=abc&x=1",
                        headers=[["X-Api-Key", "s3cret"], ["content-type", "application/vnd.test+json"]])
    stage.publish(None, {"topic": "t", "payload": "x", "publisher_id": "p"})
    (request,) = receiver.wait_delivered(1)
    assert (request.method, request.target, request.version) == ("POST", "/hooks/mqtt?token=abc&x=1", "HTTP/1.1")
    assert ("X-Api-Key", "s3cret") in request.headers
    assert [v for k, v in request.headers if k.lower() == "content-type"] == ["application/vnd.test+json"]
    assert request.header("Host") == f"127.0.0.1:{receiver.port}"
    assert request.header("Content-Length") == str(len(request.body))


def test_content_type_defaults_to_json_and_connections_are_reused(receiver, start_stage):
    stage = start_stage(receiver.url, pool_size=1)
    stage.publish(None, {"topic": "t", "payload": "x", "publisher_id": "p"}, count=20)
    requests = receiver.wait_delivered(20)
    assert {r.header("Content-Type") for r in requests} == {"application/json"}
    assert receiver.connections == 1  # keep-alive: each answer was read to the end
