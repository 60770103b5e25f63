"""`helm test`: one MQTT 3.1.1 CONNECT, SUBSCRIBE and PUBLISH round trip over a raw socket.

Runs in the appliance image, which has no MQTT client library; exits non-zero with a reason.
"""
import os
import socket
import struct
import sys
import uuid

HOST = os.environ["MQTT_HOST"]
PORT = int(os.environ["MQTT_PORT"])
TOKEN = uuid.uuid4().hex[:12]
TOPIC = f"helm-test/{TOKEN}".encode()
PAYLOAD = f"round trip {TOKEN}".encode()


def packet(first_byte, body):
    length, remaining = len(body), b""
    while True:
        digit, length = length % 128, length // 128
        remaining += bytes([digit | (0x80 if length else 0)])
        if not length:
            return bytes([first_byte]) + remaining + body


def string(data):
    return struct.pack("!H", len(data)) + data


def read_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            sys.exit("FAIL: the broker closed the connection")
        data += chunk
    return data


def read_packet(sock):
    first_byte = read_exactly(sock, 1)[0]
    length = shift = 0
    while True:
        digit = read_exactly(sock, 1)[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if digit < 0x80:
            return first_byte, read_exactly(sock, length)


def expect(sock, wanted, what):
    got = read_packet(sock)
    if got != wanted:
        sys.exit(f"FAIL: {what}: expected {wanted!r}, got {got!r}")


with socket.create_connection((HOST, PORT), timeout=10) as sock:
    client_id = f"helm-test-{TOKEN}".encode()
    sock.sendall(packet(0x10, string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 30) + string(client_id)))
    expect(sock, (0x20, b"\x00\x00"), "CONNACK")
    sock.sendall(packet(0x82, struct.pack("!H", 1) + string(TOPIC) + b"\x00"))
    expect(sock, (0x90, b"\x00\x01\x00"), "SUBACK")
    sock.sendall(packet(0x30, string(TOPIC) + PAYLOAD))
    expect(sock, (0x30, string(TOPIC) + PAYLOAD), "the published message")
    sock.sendall(b"\xe0\x00")
print(f"OK: MQTT round trip on {HOST}:{PORT} ({TOPIC.decode()})")
