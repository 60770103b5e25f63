"""MQTT over WebSocket with paho-mqtt (transport="websockets"), MQTT 3.1.1 and 5, over ws
and wss, against the broker subprocess: what a dashboard or app on the site sees."""

import time

import paho.mqtt.client as paho
import pytest

from tests.conftest import TIMEOUT
from tests.security.security_helpers import auth_block, metric
from tests.security.tls_pki import Pki
from appliance.mqtt.packets import Connect, Will
from ws_helpers import WsMqttClient, WsRaw, ws_listener, wss_listener

VERSIONS = [pytest.param(paho.MQTTv311, id="v3.1.1"), pytest.param(paho.MQTTv5, id="v5")]


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture(params=["ws", "wss"])
def ws_broker(request, broker_factory, pki):
    """A broker with tcp and one WebSocket listener; yields (broker, make_ws_client)."""
    kind = request.param
    config = ws_listener() if kind == "ws" else wss_listener(pki)
    broker = broker_factory(config, listeners=2)
    made = []

    def client(client_id, protocol=paho.MQTTv311, **kwargs):
        if kind == "wss":
            kwargs.setdefault("tls_ca", pki.ca)
        made.append(WsMqttClient(broker.mqtt_ports[kind], client_id, protocol, **kwargs))
        return made[-1]

    yield broker, client
    for c in made:
        c.close()


@pytest.mark.parametrize("protocol", VERSIONS)
def test_publish_both_ways_at_every_qos(ws_broker, mqtt, protocol):
    broker, ws_client = ws_broker
    browser = ws_client("dash", protocol)
    assert browser.connect()[1] == 0
    device = mqtt(broker.mqtt_ports["tcp"], "device", protocol=protocol)
    assert device.connect()[1] == 0
    assert browser.subscribe("plant/#", 2) == [2]
    device.subscribe("ui/#", 2)
    for qos in (0, 1, 2):
        payload = f"reading at qos {qos}".encode() * 50
        device.publish("plant/line1", payload, qos)
        message = browser.expect_message()
        assert (message.topic, message.payload, message.qos) == ("plant/line1", payload, qos)
        browser.publish("ui/setpoint", b"%d" % qos, qos)
        message = device.expect_message()
        assert (message.topic, message.payload, message.qos) == ("ui/setpoint", b"%d" % qos, qos)


@pytest.mark.parametrize("protocol", VERSIONS)
def test_a_large_message_crosses_intact(ws_broker, mqtt, protocol):
    broker, ws_client = ws_broker
    sender, receiver = ws_client("big-sender", protocol), ws_client("big-receiver", protocol)
    sender.connect()
    receiver.connect()
    receiver.subscribe("blob", 1)
    payload = bytes(range(256)) * 2000  # 512 KB: many TCP segments, one WebSocket message
    sender.publish("blob", payload, 1)
    assert receiver.expect_message().payload == payload


@pytest.mark.parametrize("protocol", VERSIONS)
def test_retained_message_reaches_a_later_websocket_subscriber(ws_broker, mqtt, protocol):
    broker, ws_client = ws_broker
    publisher = ws_client("retainer", protocol)
    publisher.connect()
    publisher.publish("status/gate", b"open", 1, retain=True)
    late = ws_client("late", protocol)
    late.connect()
    late.subscribe("status/#", 1)
    message = late.expect_message()
    assert (message.topic, message.payload, message.retain) == ("status/gate", b"open", True)


@pytest.mark.parametrize("protocol", VERSIONS)
def test_will_of_a_dropped_websocket_client_is_published(ws_broker, mqtt, protocol):
    broker, ws_client = ws_broker
    watcher = mqtt(broker.mqtt_ports["tcp"], "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", 1)
    tablet = ws_client("tablet", protocol)
    tablet.connect(will={"topic": "wills/tablet", "payload": b"gone", "qos": 1})
    tablet.close()  # the TCP connection drops without DISCONNECT or Close frame
    message = watcher.expect_message()
    assert (message.topic, message.payload) == ("wills/tablet", b"gone")


def test_clean_disconnect_publishes_no_will(ws_broker, mqtt):
    broker, ws_client = ws_broker
    watcher = mqtt(broker.mqtt_ports["tcp"], "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", 1)
    tablet = ws_client("tablet")
    tablet.connect(will={"topic": "wills/tablet", "payload": b"gone", "qos": 1})
    tablet.disconnect()
    watcher.expect_no_message()


def test_keepalive_closes_a_silent_websocket_client(broker_factory, mqtt):
    broker = broker_factory(ws_listener(), listeners=2)
    watcher = mqtt(broker.mqtt_ports["tcp"], "watcher")
    watcher.connect()
    watcher.subscribe("wills/#", 1)
    sleepy = WsRaw(broker.mqtt_ports["ws"])
    sleepy.send(Connect("sleepy", 4, keepalive=1, will=Will("wills/sleepy", b"timed out", 1)))
    assert sleepy.expect("ConnAck").reason_code == 0
    # Silent past 1.5 x keepalive: the broker ends it (with a Close frame) and publishes the will.
    assert watcher.expect_message().payload == b"timed out"
    assert sleepy.expect_close().code == 1000


def test_password_auth_and_acl_apply_over_websocket(broker_factory, tmp_path):
    acl = 'rules = [{permit = allow, username = "ops", action = subscribe, topics = ["plant/#"]}]'
    broker = broker_factory(ws_listener() + auth_block(
        tmp_path, passwords="ops: s3cret\n", acl=acl, options="allow_anonymous = false\nno_match = deny"),
        listeners=2)
    port = broker.mqtt_ports["ws"]
    wrong = WsMqttClient(port, "intruder", username="ops", password="guess")
    assert wrong.connect()[1] != 0
    ops = WsMqttClient(port, "ops-1", username="ops", password="s3cret")
    assert ops.connect()[1] == 0
    assert ops.subscribe("plant/line1", 1) == [1]
    assert ops.subscribe("office/door", 1) == [0x80]
    ops.close()
    wrong.close()


def test_wss_certificate_cn_is_the_username(broker_factory, pki, tmp_path):
    acl = 'rules = [{permit = allow, topics = ["devices/${username}/#"]}]'
    broker = broker_factory(
        wss_listener(pki, " verify_peer = true\n fail_if_no_peer_cert = true\n peer_cert_as_username = cn")
        + auth_block(tmp_path, acl=acl, options="allow_anonymous = false\nno_match = deny"), listeners=2)
    device = WsMqttClient(broker.mqtt_ports["wss"], "d7", paho.MQTTv5, tls_ca=pki.ca,
                          cert=(pki.client_cert, pki.client_key), username="someone-else")
    assert device.connect()[1] == 0
    device.subscribe("devices/device-7/cmd", 1)  # allowed: the certificate's CN is the username
    device.publish("devices/device-7/cmd", b"on", 1)
    assert device.expect_message().payload == b"on"
    device.close()


def test_wss_takes_the_ssl_listeners_certificate_as_nanomq_does(broker_factory, pki):
    ssl_block = (f'listeners.ssl {{\n bind = "127.0.0.1:0"\n certfile = "{pki.server_cert}"\n'
                 f' keyfile = "{pki.server_key}"\n}}\n')
    broker = broker_factory(ssl_block + 'listeners.wss { bind = "127.0.0.1:0/mqtt" }\n', listeners=3)
    client = WsMqttClient(broker.mqtt_ports["wss"], "inherits", tls_ca=pki.ca)
    assert client.connect()[1] == 0
    client.close()


def test_named_websocket_listeners_serve_their_own_paths(broker_factory):
    broker = broker_factory('listeners.ws.dash { bind = "127.0.0.1:0/dash" }\n'
                            'listeners.ws.app { bind = "127.0.0.1:0/mqtt" }\n', listeners=3)
    for name, path in (("ws.dash", "/dash"), ("ws.app", "/mqtt")):
        client = WsMqttClient(broker.mqtt_ports[name], f"on-{path[1:]}", path=path)
        assert client.connect()[1] == 0
        client.roundtrip()
        client.close()


def test_websocket_metrics_count_upgrades_by_listener(ws_broker):
    broker, ws_client = ws_broker
    client = ws_client("counted")
    client.connect()
    client.roundtrip()
    name = next(n for n in broker.mqtt_ports if n.startswith("ws"))
    assert metric(broker, "appliance_websocket_upgrades_total", listener=name) == 1
    assert metric(broker, "appliance_websocket_connections", listener=name) == 1
    assert metric(broker, "appliance_connections") == 1  # the broker's own metrics count it too
    client.disconnect()  # DISCONNECT: the broker ends it with Close 1000
    deadline = time.monotonic() + TIMEOUT
    while metric(broker, "appliance_websocket_closes_total", listener=name, code="1000") < 1:
        assert time.monotonic() < deadline, "the close was never counted"
        time.sleep(0.05)
    assert metric(broker, "appliance_websocket_connections", listener=name) == 0
