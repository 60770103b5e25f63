"""Clients for the WebSocket tests: paho-mqtt over websockets, and a byte-level WebSocket
client on wsproto's client side (a real peer implementation, not ours) for what paho
cannot do on purpose: split MQTT packets across frames, ping, send text or endless
fragments, close with a status."""

from __future__ import annotations

import os
import socket
import ssl
import struct

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, Ping, Pong,
                            RejectConnection, RejectData, Request)

from appliance.mqtt.codec import MqttDecoder, encode
from tests.conftest import TIMEOUT, MqttClient


def ws_listener(kind: str = "ws", path: str = "/mqtt", extra: str = "") -> str:
    return f'listeners.{kind} {{\n bind = "127.0.0.1:0{path}"\n{extra}\n}}\n'


def wss_listener(pki, extra: str = "", path: str = "/mqtt") -> str:
    return ws_listener("wss", path, f' certfile = "{pki.server_cert}"\n keyfile = "{pki.server_key}"\n'
                                    f' cacertfile = "{pki.ca}"\n{extra}')


class WsMqttClient(MqttClient):
    """conftest's MqttClient (every call waits for the broker's answer), over WebSocket."""

    def __init__(self, port: int, client_id: str = "", protocol=paho.MQTTv311, path: str = "/mqtt",
                 tls_ca: str | None = None, cert: tuple[str, str] | None = None, username: str | None = None,
                 password: str | None = None, **kwargs) -> None:
        super().__init__(port, client_id, protocol, **kwargs)
        old = self.client
        options = {"client_id": client_id, "protocol": protocol, "transport": "websockets",
                   "reconnect_on_failure": False}
        if protocol != paho.MQTTv5:
            options["clean_session"] = self.clean
        self.client = paho.Client(CallbackAPIVersion.VERSION2, **options)
        for name in ("on_connect", "on_message", "on_subscribe", "on_unsubscribe", "on_publish", "on_disconnect"):
            setattr(self.client, name, getattr(old, name))
        self.client.ws_set_options(path=path)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=tls_ca, certfile=cert[0] if cert else None,
                                keyfile=cert[1] if cert else None)

    def close(self) -> None:
        """Drop the TCP connection without DISCONNECT or Close frame, as a crashed client would."""
        wrapper = self.client.socket()
        if wrapper:
            try:
                wrapper._socket.shutdown(socket.SHUT_RDWR)  # paho's websocket wrapper hides the socket
            except OSError:
                pass
        self.client.loop_stop()
        if wrapper:
            wrapper._socket.close()


class WsRaw:
    """A WebSocket client over a plain (or TLS) socket, speaking MQTT bytes through the
    project's codec."""

    def __init__(self, port: int, path: str = "/mqtt", subprotocols=("mqtt",), origin: str | None = None,
                 tls_context: ssl.SSLContext | None = None, version: int = 4) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.version = version
        self.decoder = MqttDecoder(1 << 28, protocol_version=version)
        self.packets: list = []
        self.events: list = []
        headers = [(b"Origin", origin.encode())] if origin else []
        self.sock.sendall(self.ws.send(Request(host="127.0.0.1", target=path, subprotocols=list(subprotocols),
                                               extra_headers=headers)))
        self.accepted = self._next_event()
        assert isinstance(self.accepted, AcceptConnection), f"upgrade refused: {self.accepted}"

    def _next_event(self):
        while not self.events:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the broker")
            self.ws.receive_data(data)
            self.events.extend(self.ws.events())
        return self.events.pop(0)

    def send_frames(self, data: bytes, message_finished: bool = True) -> None:
        self.sock.sendall(self.ws.send(Message(data=data, message_finished=message_finished)))

    def send(self, packet) -> None:
        self.send_frames(encode(packet, self.version))

    def ping(self, payload: bytes) -> bytes:
        self.sock.sendall(self.ws.send(Ping(payload=payload)))
        event = self._next_event()
        assert isinstance(event, Pong), event
        return bytes(event.payload)

    def next_packet(self):
        while not self.packets:
            event = self._next_event()
            assert isinstance(event, BytesMessage), f"expected MQTT bytes, got {event}"
            self.packets.extend(self.decoder.feed(bytes(event.data)))
        return self.packets.pop(0)

    def expect(self, kind: str):
        packet = self.next_packet()
        assert type(packet).__name__ == kind, f"expected {kind}, got {packet}"
        return packet

    def expect_close(self) -> CloseConnection:
        """Skip MQTT bytes until the broker's Close frame; then the TCP connection ends."""
        while True:
            event = self._next_event()
            if isinstance(event, CloseConnection):
                try:
                    while self.sock.recv(65536):  # the broker closes the socket after its Close
                        pass
                except OSError:
                    pass
                return event

    def close(self) -> None:
        self.sock.close()


def http_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes as an HTTP request; the status and body of what came back before close."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def upgrade_request(path: str = "/mqtt", extra: str = "", key: str | None = None) -> bytes:
    key = key or __import__("base64").b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def masked_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    """One client frame built by hand, for frames wsproto's client will not send."""
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


__all__ = ["WsMqttClient", "WsRaw", "http_exchange", "upgrade_request", "masked_frame", "ws_listener",
           "wss_listener", "RejectConnection", "RejectData"]
