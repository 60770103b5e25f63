"""Every call the bridges make into the broker core, in one place.

The broker's stable points are `broker.publish(message, publisher)`,
`BrokerHooks.on_message_publish(client, message)` and `broker.add_hooks(hooks)`; if the core
changes them, only this module changes.
"""

from __future__ import annotations

import time

from ..broker.hooks import BrokerHooks, ClientInfo
from ..broker.message import Message


class LocalBroker:
    """The local broker as the bridges see it: publish into it, hear what it routes."""

    def __init__(self, broker) -> None:
        self._broker = broker

    @staticmethod
    def identity(client_id: str, username: str | None, protocol_version: int, peer: tuple) -> ClientInfo:
        """The publisher a bridge's messages carry: `from_client_id` / `from_username` in
        webhook bodies, and (by identity, not by value) the bridge's loop marker."""
        return ClientInfo(client_id, username, protocol_version, 0, peer)

    def publish(self, publisher: ClientInfo, topic: str, payload: bytes, qos: int, retain: bool,
                properties: dict) -> None:
        """Route a message from the upstream like any client's: retained store, subscribers,
        webhook rules. No ACL applies (the broker checks ACLs on client connections only)."""
        expiry = properties.get("message_expiry_interval")
        message = Message(topic, payload, qos, retain, publisher.client_id, publisher.username,
                          int(time.time() * 1000), properties,
                          time.monotonic() + expiry if expiry is not None else None)
        self._broker.publish(message, publisher)

    def listen(self, on_message) -> None:
        """Call `on_message(publisher, topic, payload, qos, retain, properties)` for every
        message the broker routes; it runs on the publisher's greenlet and must only enqueue."""
        self._broker.add_hooks(_PublishHook(on_message))


class _PublishHook(BrokerHooks):
    def __init__(self, on_message) -> None:
        self._on_message = on_message

    def on_message_publish(self, client: ClientInfo | None, message: Message) -> None:
        self._on_message(client, message.topic, message.payload, message.qos, message.retain, message.properties)
