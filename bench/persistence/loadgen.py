"""bench.loadgen with persistent sessions: every client connects with clean session = 0
(MQTT 3.1.1: a session that never expires), so a QoS 1 subscriber's queue and in-flight
messages are what a broker with persistence must make durable before it acknowledges.
Same arguments and JSON line as `python -m bench.loadgen`."""

from __future__ import annotations

import struct
import sys

from bench import loadgen, wire


def persistent_connect(client_id, keepalive=60):
    body = wire._string("MQTT") + bytes([4, 0x00]) + struct.pack(">H", keepalive) + wire._string(client_id)
    return b"\x10" + wire.varint(len(body)) + body


if __name__ == "__main__":
    wire.connect = persistent_connect
    sys.exit(loadgen.main())
