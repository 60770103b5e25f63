"""The one place the HTTP API touches the broker core.

Everything `/api/v4` needs from the broker goes through `BrokerView`: it reads clients,
sessions and subscriptions into plain records and carries out a kick or a publish. When the
core changes shape, this module is the only one to re-point. The handlers run on gevent
greenlets of the same hub as the broker, so a read here sees a consistent broker as long as
it does not yield, and nothing here does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..broker.hooks import KICKED
from ..broker.message import Message
from ..broker.topics import parse_shared
from ..mqtt import reason_codes as rc


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One session as the API shows it; the connection fields are None while it is offline."""

    client_id: str
    connected: bool
    username: str | None
    protocol_version: int | None  # 3, 4 or 5
    keepalive: int | None  # seconds, as the client asked
    peer: tuple | None  # (host, port)
    clean_start: bool | None  # None where the core does not know it (MQTT 5 connections)
    expiry_interval: int  # seconds the session outlives the connection
    subscriptions: int
    inflight: int  # QoS 1/2 messages sent and not acknowledged
    queued: int  # QoS 1/2 messages waiting for the in-flight window or the client
    will_topic: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    client_id: str
    topic_filter: str  # as subscribed, `$share/<group>/` included
    plain_filter: str  # without the share prefix
    share_group: str | None
    qos: int


class BrokerView:
    """Reads and commands the API needs, on today's `appliance.broker.Broker`."""

    def __init__(self, broker) -> None:
        self._broker = broker

    def connection_count(self) -> int:
        return self._broker.connection_count()

    def clients(self) -> Iterator[ClientRecord]:
        """Every session, connected or not, in no particular order."""
        for session in list(self._broker.sessions.values()):
            yield _client_record(session)

    def client(self, client_id: str) -> ClientRecord | None:
        session = self._broker.sessions.get(client_id)
        return None if session is None else _client_record(session)

    def subscriptions(self, client_id: str | None = None) -> Iterator[SubscriptionRecord]:
        """Every subscription held (of one client when `client_id` is given)."""
        sessions = self._broker.sessions
        if client_id is not None:
            chosen = [sessions[client_id]] if client_id in sessions else []
        else:
            chosen = list(sessions.values())
        for session in chosen:
            for topic_filter, options in list(session.subscriptions.items()):
                group, plain = parse_shared(topic_filter)
                yield SubscriptionRecord(session.client_id, topic_filter, plain, group, options.qos)

    def kick(self, client_id: str) -> bool:
        """End the client's session and its connection, if any (a v5 client is told why:
        DISCONNECT 0x98 Administrative action); its will, if any, is published as for any
        connection the server closes. False if there is no such session."""
        return self._broker.kick(client_id, KICKED, rc.ADMINISTRATIVE_ACTION)

    def publish(self, message: Message) -> int:
        """Route through the broker like any PUBLISH (hooks, retain, subscribers); returns how
        many sessions it reached."""
        return self._broker.publish(message, None)


def _client_record(session) -> ClientRecord:
    client = session.link
    info = client.info if client is not None else None
    version = info.protocol_version if info is not None else None
    clean_start = None
    if version is not None and version < 5:  # 3.1.1: Clean Session is exactly "expires at once"
        clean_start = session.expiry_interval == 0
    will = session.will.will if session.will is not None else None
    return ClientRecord(
        client_id=session.client_id,
        connected=client is not None,
        username=info.username if info is not None else None,
        protocol_version=version,
        keepalive=info.keepalive if info is not None else None,
        peer=tuple(info.peer[:2]) if info is not None and info.peer else None,
        clean_start=clean_start,
        expiry_interval=session.expiry_interval,
        subscriptions=len(session.subscriptions),
        inflight=len(session.inflight),
        queued=len(session.pending) if session.pending else 0,
        will_topic=will.topic if will is not None else None,
    )
