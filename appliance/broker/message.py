"""An application message as the broker routes it, independent of any one connection."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    publisher_id: str  # client id of the publisher ("" for broker-made messages)
    publisher_username: str | None
    timestamp_ms: int  # wall-clock time the broker received it, epoch milliseconds
    # v5 properties forwarded to subscribers (never Topic Alias or Subscription Identifier).
    properties: dict = field(default_factory=dict)
    expires_at: float | None = None  # time.monotonic() deadline from Message Expiry Interval
    # Encoded PUBLISH parts shared by every subscriber that gets the same bytes:
    # (is v5, qos, retain) -> (head, tail), see `appliance.mqtt.codec.publish_parts`.
    wire: dict | None = None
