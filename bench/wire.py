"""The few MQTT 3.1.1 packets the load generator needs, encoded once, and a packet splitter.

Deliberately independent of appliance.mqtt: the benchmark must not measure the broker with
the broker's own codec.
"""
import struct

# Every payload starts with (publisher index, sequence number, send time in ns); the rest is
# padding.  Loss, duplicates and latency are all read from these 20 bytes.
STAMP = struct.Struct(">IQQ")
STAMP_WITH_PID = struct.Struct(">HIQQ")

DISCONNECT = b"\xe0\x00"


def varint(n):
    """MQTT remaining length encoding."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect(client_id, keepalive=60):
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack(">H", keepalive) + _string(client_id)
    return b"\x10" + varint(len(body)) + body


def subscribe(packet_id, topic_filter, qos):
    body = struct.pack(">H", packet_id) + _string(topic_filter) + bytes([qos])
    return b"\x82" + varint(len(body)) + body


def puback(packet_id):
    return b"\x40\x02" + struct.pack(">H", packet_id)


class PublishLayout:
    """Byte layout of one PUBLISH with a fixed topic and payload size (all records alike).

    A batch of n such packets is one bytearray; filling it costs one pack_into per message.
    """

    def __init__(self, topic, qos, payload_size):
        if payload_size < STAMP.size:
            raise ValueError(f"payload size must be at least {STAMP.size} bytes")
        self.qos = qos
        t = _string(topic)
        pid_len = 2 if qos else 0
        remaining = len(t) + pid_len + payload_size
        head = bytes([0x30 | (qos << 1)]) + varint(remaining)
        self.header_byte = head[0]
        self.length_byte = head[1]
        self.size = len(head) + remaining
        self.pid_offset = len(head) + len(t)            # valid when qos > 0
        self.stamp_offset = self.pid_offset + pid_len
        self.template = head + t + bytes(pid_len + payload_size)
        # One record of an incoming stream of these packets, for struct.iter_unpack.
        self.record = struct.Struct(f">{self.stamp_offset}xIQQ{self.size - self.stamp_offset - STAMP.size}x")

    def batch(self, n):
        return bytearray(self.template * n)


def split_packet(buf, pos, end):
    """The packet at buf[pos:end]: (type, flags, body_start, next_pos), or None if incomplete."""
    if end - pos < 2:
        return None
    first = buf[pos]
    length = 0
    shift = 0
    i = pos + 1
    while True:
        if i >= end:
            return None
        b = buf[i]
        length |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
        if shift > 21:
            raise ValueError("malformed remaining length")
    if end - i < length:
        return None
    return first >> 4, first & 0x0F, i, i + length


def publish_stamp(buf, flags, body_start, body_end):
    """(packet_id or None, publisher, seq, send_ns) from the body of an incoming PUBLISH."""
    (tlen,) = struct.unpack_from(">H", buf, body_start)
    p = body_start + 2 + tlen
    pid = None
    if flags & 0x06:
        (pid,) = struct.unpack_from(">H", buf, p)
        p += 2
    if body_end - p < STAMP.size:
        return pid, None, None, None
    pub, seq, ts = STAMP.unpack_from(buf, p)
    return pid, pub, seq, ts
