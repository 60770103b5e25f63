"""The WebSocket load generator's framing, against wsproto's server side: what the broker's
frames carry comes out byte for byte however the reads cut them; what it sends, wsproto reads.

    .venv/bin/python -m pytest bench/ws/test_wsframes.py
"""
import random
import socket

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong

from bench import wire
from bench.ws.loadgen import WsSubscriber, client_frame


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def subscriber(sock):
    return WsSubscriber(sock, wire.PublishLayout("bench/00001/p/000", 0, 64), 1, False)


def test_frames_cut_anywhere_give_back_the_mqtt_bytes(pair):
    ours, broker = pair
    server = Connection(ConnectionType.SERVER)
    rng = random.Random(7)
    payloads = [rng.randbytes(n) for n in (0, 1, 125, 126, 65535, 65536, 70000)]
    stream = b"".join(server.send(Message(data=p)) for p in payloads)
    conn = subscriber(ours)
    got = bytearray()
    pos = 0
    while pos < len(stream):
        cut = rng.randint(1, 3000)
        broker.sendall(stream[pos:pos + cut])
        pos += cut
        assert conn.read()
        got += conn.buf[:conn.end]
        conn.compact(conn.end)
    assert bytes(got) == b"".join(payloads)


def test_ping_is_answered_and_close_ends_the_run(pair):
    ours, broker = pair
    server = Connection(ConnectionType.SERVER)
    conn = subscriber(ours)
    broker.sendall(server.send(Ping(payload=b"hi")))
    assert conn.read()
    server.receive_data(broker.recv(100))
    assert [type(e) for e in server.events()] == [Pong]
    broker.sendall(server.send(CloseConnection(code=1009)))
    assert not conn.read()
    assert conn.close_code == 1009


def test_what_we_send_is_read_by_wsproto_as_binary_messages(pair):
    ours, broker = pair
    server = Connection(ConnectionType.SERVER)
    conn = subscriber(ours)
    conn.out += wire.puback(7) * 1000
    assert conn.flush()
    server.receive_data(broker.recv(65536))
    data = b"".join(bytes(e.data) for e in server.events() if isinstance(e, BytesMessage))
    assert data == wire.puback(7) * 1000
    assert client_frame(b"x")[1] & 0x80  # masked, as a client must
