"""How a message payload is written into the JSON body: `body.encoding` = plain, base64 or base62."""

from __future__ import annotations

import base64
import codecs

ENCODINGS = ("plain", "base64", "base62")

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def encode_base62(payload: bytes) -> str:
    """NanoMQ 0.25's base62: the bytes as one big-endian integer in `0-9A-Za-z`, each
    leading zero byte kept as a leading '0' (so no payload is lost)."""
    stripped = payload.lstrip(b"\0")
    number = int.from_bytes(stripped, "big")
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "0" * (len(payload) - len(stripped)) + "".join(reversed(digits))


def encode_base64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


class PlainEncoder:
    """UTF-8 text; each invalid sequence becomes U+FFFD (so the body stays valid JSON) and
    is counted in `metrics.utf8_replacements`. NUL stays, escaped by the JSON encoder."""

    def __init__(self, metrics) -> None:
        self._metrics = metrics
        self._errors = f"webhook-count-{id(self)}"
        codecs.register_error(self._errors, self._replace)

    def _replace(self, exc: UnicodeDecodeError) -> tuple[str, int]:
        self._metrics.utf8_replacements += 1
        return "\ufffd", exc.end

    def __call__(self, payload: bytes) -> str:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("utf-8", self._errors)


def payload_encoder(encoding: str, metrics):
    """The function `bytes -> str` for one `body.encoding` value (case-insensitive)."""
    name = encoding.lower()
    if name == "plain":
        return PlainEncoder(metrics)
    if name == "base64":
        return encode_base64
    if name == "base62":
        return encode_base62
    raise ValueError(f"webhook body.encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
