"""The broker's durable state as rows of the shared store: the `Journal` the broker calls.

Every call records one row change, keyed by the row it touches; the store's writer takes
them at its next group commit (`take()`). Changes to one row collapse while they wait: a
session's row is written once however often it changed. Deletes go first in a commit, then
inserts, then updates, and a batch that failed is given back whole and goes first in the
next one, so the file always moves from one state the broker had to a later one. Queued
and in-flight deliveries, by far the most frequent changes, are written in batches by
`QueueJournal` (queue.py), a change source of its own.
"""

from __future__ import annotations

import time

from ..broker.message import Message
from ..broker.session import NEVER_EXPIRES, Delivery, LastWill, Session, SubscriptionOptions
from ..store import GivenBack
from .codec import MESSAGE_COLUMNS, dump_will, message_values
from .queue import TABLES as QUEUE_TABLES
from .queue import QueueJournal

TABLES = (
    f"CREATE TABLE IF NOT EXISTS persist_retained (topic TEXT PRIMARY KEY, payload BLOB, qos INTEGER, "
    f"retain INTEGER, publisher_id TEXT, publisher_username TEXT, timestamp_ms INTEGER, properties TEXT, "
    f"expires REAL)",
    "CREATE TABLE IF NOT EXISTS persist_sessions (client_id TEXT PRIMARY KEY, username TEXT, "
    "expiry INTEGER, connected INTEGER, disconnected_at REAL, will TEXT, will_due REAL)",
    "CREATE TABLE IF NOT EXISTS persist_subscriptions (client_id TEXT, topic_filter TEXT, qos INTEGER, "
    "no_local INTEGER, retain_as_published INTEGER, identifier INTEGER, PRIMARY KEY (client_id, topic_filter))",
    "CREATE TABLE IF NOT EXISTS persist_incoming (client_id TEXT, packet_id INTEGER, "
    "PRIMARY KEY (client_id, packet_id))",
    "CREATE TABLE IF NOT EXISTS persist_meta (name TEXT PRIMARY KEY, value)",
    *QUEUE_TABLES,
)

PUT_RETAINED = f"INSERT OR REPLACE INTO persist_retained ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
DELETE_RETAINED = "DELETE FROM persist_retained WHERE topic = ?"
PUT_SESSION = "INSERT OR REPLACE INTO persist_sessions VALUES (?, ?, ?, ?, ?, ?, ?)"
DELETE_SESSION = "DELETE FROM persist_sessions WHERE client_id = ?"
PUT_SUBSCRIPTION = "INSERT OR REPLACE INTO persist_subscriptions VALUES (?, ?, ?, ?, ?, ?)"
DELETE_SUBSCRIPTION = "DELETE FROM persist_subscriptions WHERE client_id = ? AND topic_filter = ?"
PUT_INCOMING = "INSERT OR REPLACE INTO persist_incoming VALUES (?, ?)"
DELETE_INCOMING = "DELETE FROM persist_incoming WHERE client_id = ? AND packet_id = ?"
PUT_META = "INSERT OR REPLACE INTO persist_meta VALUES (?, ?)"

_DELETE, _PUT, _UPDATE = 0, 1, 2  # the order of the kinds of change within one commit


class StoreJournal:
    """A `Journal` (appliance.broker.journal) and a `ChangeSource` of the store."""

    def __init__(self, store, queue: QueueJournal, owners: dict | None = None) -> None:
        self._store = store
        # The queue's own methods, called for every QoS 1/2 delivery to a persistent session:
        # bound here rather than wrapped, so they cost no extra call.
        self.queued, self.sent, self.done = queue.queued, queue.sent, queue.done
        # row key -> (kind, statement, params, never written): one pending change per row
        self._changes: dict[tuple, tuple] = {}
        self._given_back = GivenBack()
        self.restore = self._given_back.restore
        self._owners: dict[str, str | None] = owners if owners is not None else {}  # client id -> username

    # -- ChangeSource ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._changes) + self._given_back.rows

    def take(self) -> list[tuple[str, list]]:
        groups: dict[str, tuple[int, list]] = {}
        for kind, statement, params, _ in self._changes.values():
            group = groups.get(statement)
            if group is None:
                group = groups[statement] = (kind, [])
            group[1].append(params)
        taken = self._given_back.take() + [(statement, rows) for statement, (_, rows)
                                           in sorted(groups.items(), key=lambda item: item[1][0])]
        self._changes = {}
        return taken

    def _put(self, key: tuple, statement: str, params: tuple, new: bool = False) -> None:
        changes = self._changes
        old = changes.get(key)
        if old is not None and old[3]:
            new = True  # the row still has never been written
        changes[key] = (_PUT, statement, params, new)
        self._store.changed()

    def _delete(self, key: tuple, statement: str, params: tuple) -> None:
        changes = self._changes
        old = changes.get(key)
        if old is not None and old[3]:
            del changes[key]  # never written: nothing to delete
            return
        changes[key] = (_DELETE, statement, params, False)
        self._store.changed()

    # -- the Journal -------------------------------------------------------------------------

    def retained(self, message: Message) -> None:
        topic = message.topic
        if message.payload:
            self._put(("r", topic), PUT_RETAINED, message_values(message))
        else:
            self._delete(("r", topic), DELETE_RETAINED, (topic,))

    def heartbeat(self) -> None:
        """The time the broker was last known alive: a crash's downtime counts from here."""
        self._put(("m", "alive"), PUT_META, ("alive", time.time()))

    def session_attached(self, session: Session, username: str | None) -> None:
        self._owners[session.client_id] = username
        self._session_row(session, True, dump_will(session.will), None)

    def session_detached(self, session: Session, will: LastWill | None, will_delay: float) -> None:
        now = time.time()
        self._session_row(session, False, dump_will(will), now + will_delay if will is not None else None, now)

    def _session_row(self, session: Session, connected: bool, will: str | None, will_due: float | None,
                     disconnected_at: float | None = None) -> None:
        client_id = session.client_id
        expiry = session.expiry_interval
        self._put(("s", client_id), PUT_SESSION,
                  (client_id, self._owners.get(client_id), expiry if expiry != NEVER_EXPIRES else None,
                   int(connected), disconnected_at, will, will_due))

    def session_ended(self, session: Session) -> None:
        client_id = session.client_id
        self._owners.pop(client_id, None)
        self._delete(("s", client_id), DELETE_SESSION, (client_id,))
        for topic_filter in session.subscriptions:
            self.unsubscribed(session, topic_filter)
        for delivery in session.inflight.values():
            self.done(session, delivery)
        for delivery in session.pending or ():
            self.done(session, delivery)
        for packet_id in session.awaiting_release:
            self.incoming_released(session, packet_id)

    def subscribed(self, session: Session, topic_filter: str, options: SubscriptionOptions) -> None:
        client_id = session.client_id
        self._put(("f", client_id, topic_filter), PUT_SUBSCRIPTION,
                  (client_id, topic_filter, options.qos, int(options.no_local), int(options.retain_as_published),
                   options.identifier))

    def unsubscribed(self, session: Session, topic_filter: str) -> None:
        client_id = session.client_id
        self._delete(("f", client_id, topic_filter), DELETE_SUBSCRIPTION, (client_id, topic_filter))

    def incoming(self, session: Session, packet_id: int) -> None:
        client_id = session.client_id
        self._put(("i", client_id, packet_id), PUT_INCOMING, (client_id, packet_id), new=True)

    def incoming_released(self, session: Session, packet_id: int) -> None:
        client_id = session.client_id
        self._delete(("i", client_id, packet_id), DELETE_INCOMING, (client_id, packet_id))
