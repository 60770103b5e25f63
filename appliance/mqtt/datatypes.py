"""MQTT data representations (MQTT 5.0 section 1.5): variable byte integers, UTF-8 strings,
binary data. Readers take ``(data, pos, end)`` and return ``(value, new_pos)``; they never read
past ``end`` and raise `MalformedPacket` when a value would."""

from __future__ import annotations

from .errors import MalformedPacket

MAX_VARINT = 268_435_455  # the largest value four variable-byte-integer bytes hold
MAX_TWO_BYTE = 0xFFFF


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= end:
            raise MalformedPacket("truncated variable byte integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise MalformedPacket("variable byte integer longer than four bytes")


def encode_varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    if value > MAX_VARINT:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_two_byte(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 2 > end:
        raise MalformedPacket("truncated two byte integer")
    return (data[pos] << 8) | data[pos + 1], pos + 2


def read_four_byte(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 4 > end:
        raise MalformedPacket("truncated four byte integer")
    return int.from_bytes(data[pos:pos + 4], "big"), pos + 4


def read_binary(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    if pos + 2 > end:
        raise MalformedPacket("truncated length prefix")
    start = pos + 2
    stop = start + ((data[pos] << 8) | data[pos + 1])
    if stop > end:
        raise MalformedPacket("length prefix overruns the packet")
    return data[start:stop], stop


def read_utf8(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, pos = read_binary(data, pos, end)
    return decode_utf8(raw), pos


def decode_utf8(raw: bytes) -> str:
    """Well-formed UTF-8 without U+0000; Python's strict codec already refuses surrogates."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedPacket(f"invalid UTF-8 string: {error.reason}") from None
    if "\x00" in text:
        raise MalformedPacket("UTF-8 string contains U+0000")
    return text


def encode_binary(value: bytes) -> bytes:
    if len(value) > MAX_TWO_BYTE:
        raise ValueError(f"{len(value)} bytes do not fit a two byte length prefix")
    return len(value).to_bytes(2, "big") + value


def encode_utf8(value: str) -> bytes:
    return encode_binary(value.encode("utf-8"))
