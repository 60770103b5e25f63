"""The WebSocket layer itself, byte by byte: subprotocols, frames split and joined, ping,
the close handshake, and hostile input (not WebSocket, bad upgrades, wrong subprotocol,
text, oversize and endless messages), each answered with a clear refusal or Close status
while a client on the side carries on."""

import socket
import ssl
import time

import pytest
from wsproto.events import CloseConnection

from appliance.mqtt.codec import encode
from appliance.mqtt.packets import Connect, Disconnect, PingReq, Publish, Subscribe, Subscription, Will
from tests.conftest import TIMEOUT
from tests.security.security_helpers import metric
from tests.security.tls_pki import Pki
from ws_helpers import WsRaw, http_exchange, masked_frame, upgrade_request, ws_listener, wss_listener

SMALL_MESSAGES = " max_message_size = 64KB"


@pytest.fixture
def broker(broker_factory):
    return broker_factory(ws_listener(extra=SMALL_MESSAGES), listeners=2)


@pytest.fixture
def bystander(broker, mqtt):
    """A TCP client subscribed to everything: it must keep working whatever the others send."""
    client = mqtt(broker.mqtt_ports["tcp"], "bystander")
    client.connect()
    client.subscribe("#", 1)
    yield client
    client.publish("still/alive", b"yes", 1)
    while client.expect_message().topic != "still/alive":  # what the others published came first
        pass


def connected(port, client_id="raw", **kwargs) -> WsRaw:
    raw = WsRaw(port, **kwargs)
    raw.send(Connect(client_id, 4))
    assert raw.expect("ConnAck").reason_code == 0
    return raw


# -- the upgrade -----------------------------------------------------------------------------

@pytest.mark.parametrize("offered, chosen", [(("mqtt",), "mqtt"), (("mqttv3.1",), "mqttv3.1"),
                                             (("chat", "mqttv3.1", "mqtt"), "mqtt"), ((), None)])
def test_subprotocol_negotiation(broker, offered, chosen):
    raw = connected(broker.mqtt_ports["ws"], subprotocols=offered)
    assert raw.accepted.subprotocol == chosen
    raw.close()


def test_wrong_subprotocol_is_refused_with_400(broker, bystander):
    status, body = http_exchange(broker.mqtt_ports["ws"], upgrade_request(extra="Sec-WebSocket-Protocol: chat\r\n"))
    assert status == 400
    assert b"subprotocol mqtt" in body


def test_plain_http_request_gets_426_naming_the_endpoint(broker, bystander):
    status, body = http_exchange(broker.mqtt_ports["ws"], b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 426
    assert b"MQTT over WebSocket" in body


@pytest.mark.parametrize("request_bytes, status", [
    (b"POST /mqtt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    (upgrade_request(path="/other"), 404),
    (upgrade_request(key="not-base64!"), 400),
    (upgrade_request().replace(b"Version: 13", b"Version: 8"), 426),
    (b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 400),  # MQTT CONNECT sent to the ws port
    (b"GET /mqtt HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
])
def test_bad_upgrades_are_refused_with_an_http_status(broker, bystander, request_bytes, status):
    assert http_exchange(broker.mqtt_ports["ws"], request_bytes)[0] == status


def test_refusals_are_counted_by_reason(broker):
    http_exchange(broker.mqtt_ports["ws"], upgrade_request(path="/nope"))
    http_exchange(broker.mqtt_ports["ws"], b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert metric(broker, "appliance_websocket_upgrades_refused_total", listener="ws", reason="path") == 1
    assert metric(broker, "appliance_websocket_upgrades_refused_total", listener="ws", reason="not_websocket") == 1
    assert metric(broker, "appliance_websocket_upgrades_refused_total", listener="ws", reason="origin") == 0


def test_an_upgrade_that_never_completes_is_cut_at_connect_timeout(broker_factory):
    broker = broker_factory(ws_listener() + "mqtt { connect_timeout = 1s }\n", listeners=2)
    with socket.create_connection(("127.0.0.1", broker.mqtt_ports["ws"]), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started < 5


def test_allowed_origins_refuse_other_browser_pages(broker_factory):
    broker = broker_factory(ws_listener(extra=' allowed_origins = ["https://dash.example:8443"]'), listeners=2)
    port = broker.mqtt_ports["ws"]
    status, body = http_exchange(port, upgrade_request(extra="Origin: https://evil.example\r\n"))
    assert (status, b"https://evil.example" in body) == (403, True)
    connected(port, "dashboard", origin="https://dash.example:8443").close()
    connected(port, "no-browser").close()  # no Origin: not a browser page


# -- frames ----------------------------------------------------------------------------------

def test_mqtt_packets_split_and_joined_across_frames(broker, bystander):
    raw = WsRaw(broker.mqtt_ports["ws"])
    connect = encode(Connect("splitter", 4), 4)
    subscribe = encode(Subscribe(1, [Subscription("split/#", 1)]), 4)
    publish = encode(Publish("split/x", b"p" * 3000, 1, False, False, 2), 4)
    raw.send_frames(connect[:3], message_finished=False)  # one packet over three fragments
    raw.send_frames(connect[3:7], message_finished=False)
    raw.send_frames(connect[7:] + subscribe[:1])  # and the next packet's first byte
    raw.send_frames(subscribe[1:] + publish[:1000])  # one frame: the rest and part of another
    raw.send_frames(publish[1000:])
    assert raw.expect("ConnAck").reason_code == 0
    assert raw.expect("SubAck").reason_codes == [1]
    seen = {type(raw.next_packet()).__name__ for _ in range(2)}
    assert seen == {"PubAck", "Publish"}
    raw.close()


def test_ping_is_answered_with_the_same_payload(broker):
    raw = connected(broker.mqtt_ports["ws"])
    assert raw.ping(b"are you there") == b"are you there"
    raw.send(PingReq())  # MQTT still flows after it
    raw.expect("PingResp")
    raw.close()


def test_a_text_frame_is_closed_with_1003(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    raw.sock.sendall(masked_frame(0x1, b"hello"))
    assert raw.expect_close().code == 1003


def test_an_oversize_message_is_closed_with_1009(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    raw.send(Publish("big", b"x" * 70_000, 0, False, False, None))  # over max_message_size = 64KB
    assert raw.expect_close().code == 1009


def test_a_frame_claiming_a_terabyte_is_closed_with_1009(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    header = bytes([0x82, 0x80 | 127]) + (1 << 40).to_bytes(8, "big") + b"\x00" * 4  # claims 1 TB, zero mask
    start = encode(Publish("t", b"", 0, False, False, None), 4)[:1] + b"\xff\xff\x1f"  # a 512 KB PUBLISH
    raw.sock.sendall(header + start + b"\x00" * 70_000)
    assert raw.expect_close().code == 1009


def test_fragments_that_never_end_are_closed_with_1009(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    raw.send_frames(encode(Publish("t", b"", 0, False, False, None), 4)[:1] + b"\xff\xff\x1f",
                    message_finished=False)  # a 512 KB PUBLISH begins...
    for _ in range(70):  # ... in 70 x 1 KB continuation frames, FIN never set: past 64 KB it ends
        raw.send_frames(b"\x00" * 1024, message_finished=False)
    assert raw.expect_close().code == 1009


def test_an_unmasked_client_frame_is_closed_with_1002(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    raw.sock.sendall(masked_frame(0x2, encode(PingReq(), 4), mask=False))
    assert raw.expect_close().code == 1002


def test_a_reserved_opcode_is_closed_with_1002(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    raw.sock.sendall(masked_frame(0x3, b"??"))
    assert raw.expect_close().code == 1002


def test_malformed_mqtt_inside_frames_closes_like_tcp(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    raw.send_frames(b"\xf0\x00")  # packet type 15 is AUTH, not valid in 3.1.1
    assert raw.expect_close().code == 1000  # the MQTT layer ended it; the WebSocket closes cleanly


# -- the close handshake -----------------------------------------------------------------------

def test_client_close_is_echoed_and_the_will_is_published(broker, bystander):
    raw = WsRaw(broker.mqtt_ports["ws"])
    raw.send(Connect("leaver", 4, will=Will("wills/leaver", b"left", 1)))
    raw.expect("ConnAck")
    raw.sock.sendall(raw.ws.send(CloseConnection(code=1001, reason="page closed")))
    assert raw.expect_close().code == 1001
    message = bystander.expect_message()
    assert (message.topic, message.payload) == ("wills/leaver", b"left")


def test_mqtt_disconnect_ends_with_close_1000(broker, bystander):
    raw = connected(broker.mqtt_ports["ws"])
    raw.send(Disconnect())
    assert raw.expect_close().code == 1000


def test_broker_shutdown_closes_websockets_with_a_status(broker_factory):
    broker = broker_factory(ws_listener(), listeners=2)
    raw = connected(broker.mqtt_ports["ws"])
    broker.stop()
    close = raw.expect_close()
    assert close.code == 1000


def test_wss_close_handshake_over_tls(broker_factory, tmp_path):
    pki = Pki(tmp_path)
    broker = broker_factory(wss_listener(pki), listeners=2)
    context = ssl.create_default_context(cafile=pki.ca)
    raw = connected(broker.mqtt_ports["wss"], tls_context=context)
    assert raw.ping(b"tls") == b"tls"
    raw.sock.sendall(masked_frame(0x1, b"text over tls"))
    assert raw.expect_close().code == 1003


def test_a_subscriber_that_reads_late_gets_every_frame_whole_and_in_order(broker, mqtt):
    """The broker's frames back up in the kernel (partial sends): none may be cut or reordered."""
    reader = connected(broker.mqtt_ports["ws"], "late-reader")
    reader.send(Subscribe(1, [Subscription("flood", 1)]))  # QoS 1: nothing dropped for being slow
    reader.expect("SubAck")
    publisher = mqtt(broker.mqtt_ports["tcp"], "flooder")
    publisher.connect()
    for i in range(400):  # 13 MB: more than loopback's socket buffers hold, so sends come up short
        publisher.publish("flood", i.to_bytes(4, "big") * 8192, 1)
    for i in range(400):
        packet = reader.expect("Publish")
        assert packet.payload == i.to_bytes(4, "big") * 8192
    reader.close()
