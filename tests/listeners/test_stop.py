"""A listener owns its connections: stop(timeout) stops accepting, disconnects each one
and waits for it, within the timeout. An Appliance in this process over real sockets."""

import time

import gevent
import gevent.socket
import pytest

from appliance.app import Appliance
from appliance.config import load_config_text
from appliance.mqtt.codec import MqttDecoder, encode
from appliance.mqtt.packets import Connect, PingReq, Publish, Subscribe, Subscription


@pytest.fixture
def appliance():
    config = load_config_text('listeners.tcp { bind = "127.0.0.1:0" }\nhttp_server.enable = false\n',
                              env={}).config
    app = Appliance(config)
    app.start()
    yield app
    app.stop()


def _connect(port: int, client_id: str):
    sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(encode(Connect(client_id, 5), 5))
    decoder = MqttDecoder(1 << 20, protocol_version=5)
    packets = []
    while not packets:
        packets = decoder.feed(sock.recv(65536))
    assert type(packets[0]).__name__ == "ConnAck" and packets[0].reason_code == 0
    return sock, decoder


def _read_to_eof(sock, decoder) -> list:
    packets = []
    while True:
        data = sock.recv(65536)
        if not data:
            return packets
        packets.extend(decoder.feed(data))


def test_stop_disconnects_every_connection_and_waits_for_them(appliance):
    listener = appliance.listeners[0]
    port = listener.address[1]
    clients = [_connect(port, f"c{i}") for i in range(5)]
    readers = [gevent.spawn(_read_to_eof, sock, decoder) for sock, decoder in clients]
    started = time.monotonic()
    stopper = gevent.spawn(listener.stop, 1.0)
    for reader, (sock, _) in zip(readers, clients):
        packets = reader.get(timeout=5)
        assert [(type(p).__name__, p.reason_code) for p in packets] == [("Disconnect", 0x8B)]
        sock.close()  # as a client does on DISCONNECT: the broker's side then ends at once
    stopper.get(timeout=5)
    assert time.monotonic() - started < 1.0
    assert listener.open_connections == 0
    with pytest.raises(OSError):
        gevent.socket.create_connection(("127.0.0.1", port), timeout=1)


def test_stop_cuts_off_a_peer_that_does_not_read_within_the_timeout(appliance):
    listener = appliance.listeners[0]
    port = listener.address[1]
    sock, decoder = _connect(port, "stuck")
    sock.sendall(encode(Subscribe(1, [Subscription("big", 0)]), 5))
    publisher, pub_decoder = _connect(port, "pub")
    publisher.sendall(b"".join(encode(Publish("big", b"x" * 60000, 0, False, False, None, {}), 5)
                               for _ in range(100)) + encode(PingReq(), 5))
    packets = []
    while not packets:  # the PINGRESP: every PUBLISH before it was routed to the stuck socket
        packets = pub_decoder.feed(publisher.recv(65536))
    assert type(packets[0]).__name__ == "PingResp"
    started = time.monotonic()
    listener.stop(0.5)
    assert time.monotonic() - started < 0.5 + 1.0
    assert listener.open_connections == 0
