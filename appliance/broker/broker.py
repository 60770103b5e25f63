"""The routing core: sessions, the subscription tree, retained messages and wills.

Everything here runs on the greenlet that calls it and never blocks. The broker talks to
sessions only (`session.deliver`, `session.resend`); a session talks to the connection
it is attached to through its `Link`. The broker never touches a connection's state: at
a takeover it tells the old link `take_over()`, nothing more.

Timers (session expiry, will delay, the retry of unacknowledged messages) are entries of
the shared `Timers` heap, not greenlets; the broker keeps the handles of its own.
"""

from __future__ import annotations

import logging
import time

from ..config.model import LimitsConfig, MqttConfig
from . import hooks as reasons
from .hooks import BrokerHooks, ClientInfo
from .journal import Journal
from .message import Message
from .retained import RetainedStore
from .session import NEVER_EXPIRES, LastWill, Link, Session, SubscriptionOptions
from .stats import BrokerStats
from .timers import Timer, Timers
from .topics import TopicTree, parse_shared

log = logging.getLogger(__name__)


class Broker:
    """Routes messages between sessions; owns every session, subscription and will timer."""

    def __init__(self, config: MqttConfig, limits: LimitsConfig, stats: BrokerStats, timers: Timers) -> None:
        self.config = config
        self.limits = limits
        self.stats = stats  # read by the metrics collectors; the broker bumps its own counters
        self._timers = timers
        self._retained_sizes: dict[str, int] = {}  # topic -> payload bytes, for max_retained_bytes
        self._retained_bytes = 0
        self._retained_recounted = 0.0
        self.sessions: dict[str, Session] = {}
        self._connected: set[Session] = set()  # sessions with a link (CONNACK success sent)
        self._expiring: dict[Session, Timer] = {}  # offline sessions that end at a deadline
        self._wills_due: dict[Session, tuple[Timer, LastWill]] = {}  # delayed wills
        self.subscriptions = TopicTree()
        self.retained = RetainedStore()
        self._hooks: list[BrokerHooks] = []
        # The hooks that want each optional event (BrokerHooks.wants), asked once per change:
        # an event nobody wants costs a dict miss, and the per-message ones not even that.
        self._wanted: dict[str, tuple] = {}
        self.on_delivered = None  # (client, message, qos, retain) -> None, or None: nobody wants it
        self.on_acked = None  # the same, for on_message_acked
        self._on_dropped = None  # (publisher, message, reason) -> None, or None
        self._retry: Timer | None = None
        self._journal: Journal | None = None  # persistence; None: everything in memory

    def set_journal(self, journal: Journal) -> None:
        """Record durable state in `journal` from now on (after `restore_*` at start-up)."""
        self._journal = journal
        for session in self.sessions.values():
            session.journal = journal

    def restore_retained(self, message: Message) -> None:
        self._retain(message)

    def restore_session(self, session: Session, expires_in: float | None, will: LastWill | None,
                        will_in: float) -> None:
        """A session read back from the persistence store, offline: it expires in `expires_in`
        seconds (None: never) and its will, if any, is due in `will_in` seconds."""
        self.sessions[session.client_id] = session
        for topic_filter, options in session.subscriptions.items():
            group, plain_filter = parse_shared(topic_filter)
            self.subscriptions.add(plain_filter, session.client_id, options, group)
        if will is not None:
            self._wills_due[session] = (self._timers.call_later(max(will_in, 0.0), self._will_delay_over, session),
                                        will)
        if expires_in is not None:
            self._expiring[session] = self._timers.call_later(max(expires_in, 0.0), self._expire_session, session)

    # -- lifecycle -------------------------------------------------------------------

    def add_hooks(self, hooks: BrokerHooks) -> None:
        self._hooks.append(hooks)
        self.hooks_changed()

    def hooks_changed(self) -> None:
        """Ask the hooks again which optional events they want (after add_hooks, or when a
        hook's answer changed, e.g. webhook rules reloaded)."""
        self._wanted = {}
        for event in _OPTIONAL_EVENTS:
            wanting = tuple(getattr(hook, event) for hook in self._hooks if hook.wants(event))
            if wanting:
                self._wanted[event] = wanting
        self.on_delivered = self._caller("on_message_delivered")
        self.on_acked = self._caller("on_message_acked")
        self._on_dropped = self._caller("on_message_dropped")

    def _caller(self, event: str):
        wanting = self._wanted.get(event)
        if wanting is None:
            return None
        return lambda *args: self.notify(event, *args)

    def reconfigure(self, config: MqttConfig, limits: LimitsConfig) -> None:
        """A reload: new sessions get the new queue bounds, retained limits apply to the next
        retained message and retry_interval from the next sweep; what exists stays."""
        self.config, self.limits = config, limits

    def links(self) -> list:
        """The connections of the connected sessions (a reload re-checks their ACLs)."""
        return [session.link for session in self._connected if session.link is not None]

    def start(self) -> None:
        self._retry = self._timers.call_later(self.config.retry_interval, self._retry_unacknowledged)

    def shut_down(self) -> None:
        """The process is ending, and every session with it: publish the wills that are
        now due (delayed ones included, as MQTT 5 says and mosquitto does) before the
        listeners disconnect anyone, so connected subscribers still get them."""
        if self._retry is not None:
            self._retry.cancel()
        if self._journal is not None:
            # The sessions outlive the process: a delayed will keeps waiting (in the store),
            # and a connected session's will follows at detach() as for any closed connection.
            for timer in (*self._expiring.values(), *(timer for timer, _ in self._wills_due.values())):
                timer.cancel()
            self._expiring.clear()
            self._wills_due.clear()
            return
        for session, (timer, will) in list(self._wills_due.items()):
            timer.cancel()
            del self._wills_due[session]
            self._publish_will(will)
        for session in list(self._connected):
            will = session.take_will()
            if will is not None:
                self._publish_will(will)
        for timer in self._expiring.values():
            timer.cancel()
        self._expiring.clear()

    # -- numbers for metrics ---------------------------------------------------------

    def connection_count(self) -> int:
        return len(self._connected)

    def session_count(self) -> int:
        return len(self.sessions)

    def subscription_count(self) -> int:
        return self.subscriptions.count

    def topic_count(self) -> int:
        return self.subscriptions.topic_count()

    def retained_count(self) -> int:
        return len(self.retained)

    def inflight_count(self) -> int:
        return sum(len(s.inflight) for s in self.sessions.values())

    # -- hooks -----------------------------------------------------------------------

    def notify_connack(self, info: ClientInfo, reason_code: int) -> None:
        for hook in self._hooks:
            try:
                hook.on_client_connack(info, reason_code)
            except Exception:
                log.exception("hook %r failed in on_client_connack", hook)

    def notify_disconnected(self, info: ClientInfo, reason: str) -> None:
        for hook in self._hooks:
            try:
                hook.on_client_disconnected(info, reason)
            except Exception:
                log.exception("hook %r failed in on_client_disconnected", hook)

    def notify(self, event: str, *args) -> None:
        """Call the hooks that want the optional `event` (a BrokerHooks method name)."""
        for method in self._wanted.get(event, ()):
            try:
                method(*args)
            except Exception:
                log.exception("hook %r failed in %s", method.__self__, event)

    # -- connections -----------------------------------------------------------------

    def refusal(self, client_id: str, owner: str | None, identified: bool) -> str | None:
        """Why a CONNECT for `client_id` by `owner` (its username) may not have a session, or
        None. With `identified` (an auth block vouches for usernames) a session belongs to
        the identity that made it: another one may not resume it, end it or take over its
        connection. A new session beyond limits.max_sessions is refused too."""
        session = self.sessions.get(client_id)
        if session is not None:
            if identified and session.owner != owner:
                self.stats.sessions_refused["other_owner"] += 1
                return "other_owner"
            return None
        if self.limits.max_sessions and len(self.sessions) >= self.limits.max_sessions:
            self.stats.limits_hit["max_sessions"] += 1
            self.stats.sessions_refused["max_sessions"] += 1
            return "max_sessions"
        return None

    def attach(self, link: Link, client_id: str, clean_start: bool, expiry_interval: int,
               will: LastWill | None, owner: str | None = None) -> tuple[Session, bool]:
        """Bind `link` to the session of `client_id`, taking over any connection that holds
        it; returns the session and whether an existing one was resumed. A session that
        was to end with its connection (Clean Session 1, v5 expiry 0) is never resumed,
        even when the new connection takes it over while the old one is still open."""
        session = self.sessions.get(client_id)
        if session is not None:
            old = session.link
            if old is not None:
                self._connected.discard(session)
                session.link = None
                old_will = session.take_will()
                # A new connection within the Will Delay Interval cancels a delayed will
                # (MQTT 5 section 3.1.3.2.2); one without a delay is due now.
                if old_will is not None and not old_will.delay:
                    self._publish_will(old_will)
                old.take_over()
            self._cancel_timers(session)
            if clean_start or session.expiry_interval == 0:
                self._end_session(session, reasons.DISCARDED)
                session = None
        resumed = session is not None
        if session is None:
            session = Session(client_id, self.stats, self.config.max_mqueue_len, self.limits.max_queued_bytes,
                              owner=owner)
            self.sessions[client_id] = session
        session.expiry_interval = expiry_interval
        session.will = will
        session.link = link
        session.info = link.info
        self._connected.add(session)
        journal = self._journal
        if journal is not None and (expiry_interval or session.journal is not None):
            session.journal = journal
            journal.session_attached(session, session.owner)
        self.stats.connections_accepted += 1
        return session, resumed

    def detach(self, session: Session, link: Link, reason: str = reasons.NORMAL) -> None:
        """The connection `link` of `session` is gone: publish its will (unless it said
        goodbye properly), and end the session now or when it expires. Nothing happens if
        the session was taken over meanwhile."""
        if session.link is not link:
            return
        session.link = None
        self._connected.discard(session)
        expiry = session.expiry_interval
        will = session.take_will()
        delay = 0
        if will is not None:  # a normal DISCONNECT has already discarded it
            delay = will.delay
            if delay and expiry:
                delay = min(delay, expiry) if expiry != NEVER_EXPIRES else delay
                self._wills_due[session] = (self._timers.call_later(delay, self._will_delay_over, session), will)
            else:
                self._publish_will(will)
                will = None
        if expiry and session.journal is not None:
            session.journal.session_detached(session, will, delay)
        if expiry == 0:
            self._end_session(session, reason)
        elif expiry != NEVER_EXPIRES:
            self._expiring[session] = self._timers.call_later(expiry, self._expire_session, session)

    def kick(self, client_id: str, reason: str, reason_code: int) -> bool:
        """End the session of `client_id` and its connection, if any (an operator's
        command): the connection closes with `reason_code` (v5 clients are told), its will
        is published as for any connection the server closes, and the session does not
        outlive it. False if there is no such session."""
        session = self.sessions.get(client_id)
        if session is None:
            return False
        session.expiry_interval = 0  # so detach() ends the session with the connection
        if session.link is not None:
            session.link.close(reason, reason_code)
        else:
            self._cancel_timers(session)
            self._end_session(session, reasons.KICKED)
        return True

    def _cancel_timers(self, session: Session) -> None:
        timer = self._expiring.pop(session, None)
        if timer is not None:
            timer.cancel()
        due = self._wills_due.pop(session, None)
        if due is not None:
            due[0].cancel()

    def _will_delay_over(self, session: Session) -> None:
        _, will = self._wills_due.pop(session)
        if session.journal is not None and self.sessions.get(session.client_id) is session:
            session.journal.session_detached(session, None, 0)
        self._publish_will(will)

    def _publish_will(self, last_will: LastWill) -> None:
        will, info = last_will.will, last_will.publisher
        properties = {k: v for k, v in will.properties.items() if k != "will_delay_interval"}
        expiry = properties.get("message_expiry_interval")
        self.publish(Message(
            will.topic, will.payload, will.qos, will.retain, info.client_id, info.username,
            int(time.time() * 1000), properties, time.monotonic() + expiry if expiry is not None else None,
        ), info)

    def _expire_session(self, session: Session) -> None:
        self._expiring.pop(session, None)
        if self.sessions.get(session.client_id) is session and session.link is None:
            log.debug("session %s expired", session.client_id)
            self.stats.sessions_expired += 1
            self._end_session(session, reasons.EXPIRED)

    def _end_session(self, session: Session, reason: str) -> None:
        # A will still waiting for its delay is due now: its session ends (detach set the
        # delay no later than the expiry, so this is only the case of equal deadlines).
        due = self._wills_due.pop(session, None)
        if due is not None:
            due[0].cancel()
            self._publish_will(due[1])
        if session.journal is not None:
            session.journal.session_ended(session)
            session.journal = None
        for topic_filter in session.subscriptions:
            group, plain_filter = parse_shared(topic_filter)
            self.subscriptions.remove(plain_filter, session.client_id, group)
        session.subscriptions.clear()
        dropped = session.drop_queued()
        if dropped:
            self.stats.messages_dropped["session_ended"] += dropped
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        if session.info is not None:
            self.notify("on_session_terminated", session.info, reason)

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(self, session: Session, topic_filter: str, group: str | None, plain_filter: str,
                  options: SubscriptionOptions) -> bool:
        """Add or replace a subscription; returns whether it already existed."""
        existed = topic_filter in session.subscriptions
        session.subscriptions[topic_filter] = options
        self.subscriptions.add(plain_filter, session.client_id, options, group)
        if session.journal is not None:
            session.journal.subscribed(session, topic_filter, options)
        return existed

    def unsubscribe(self, session: Session, topic_filter: str) -> bool:
        if session.subscriptions.pop(topic_filter, None) is None:
            return False
        if session.journal is not None:
            session.journal.unsubscribed(session, topic_filter)
        group, plain_filter = parse_shared(topic_filter)
        self.subscriptions.remove(plain_filter, session.client_id, group)
        return True

    def retained_matching(self, topic_filter: str, pause=None):
        """The retained messages matching `topic_filter`, one at a time (an iterator);
        `pause` is called every few thousand topic levels the walk looks at."""
        return self.retained.iter_matching(topic_filter, pause)

    # -- routing ---------------------------------------------------------------------

    def publish(self, message: Message, publisher: ClientInfo | None) -> int:
        """Route one message to every matching session; returns how many it reached."""
        for hook in self._hooks:
            try:
                hook.on_message_publish(publisher, message)
            except Exception:
                log.exception("hook %r failed in on_message_publish", hook)
        if message.retain:
            self._retain(message)
        subscribers, groups = self.subscriptions.match(message.topic)
        sessions = self.sessions
        delivered = 0
        if len(subscribers) == 1 and not groups:  # the common case: no overlap to merge
            client_id, options = subscribers[0]
            if not (options.no_local and client_id == message.publisher_id):
                qos = message.qos if message.qos < options.qos else options.qos
                ids = (options.identifier,) if options.identifier else ()
                sessions[client_id].deliver(message, qos, message.retain and options.retain_as_published, ids)
                delivered = 1
        else:
            delivered = self._deliver_merged(message, subscribers) + self._deliver_shared(message, groups)
        if not delivered:
            self.stats.messages_dropped["no_subscribers"] += 1
            if self._on_dropped is not None:
                self._on_dropped(publisher, message, reasons.NO_SUBSCRIBERS)
        return delivered

    def _retain(self, message: Message) -> None:
        """Store a retained message within limits.max_retained_messages / max_retained_bytes;
        over them, the message is still routed but not kept."""
        limits = self.limits
        if not (limits.max_retained_messages or limits.max_retained_bytes):
            self.retained.store(message)
            if self._journal is not None:
                self._journal.retained(message)
            return
        topic = message.topic
        size = len(message.payload)
        old_size = self._retained_sizes.get(topic, 0)
        if size and not old_size and limits.max_retained_messages \
                and len(self.retained) >= limits.max_retained_messages:
            self.stats.limits_hit["max_retained_messages"] += 1
            return
        if size > old_size and limits.max_retained_bytes \
                and self._retained_bytes - old_size + size > limits.max_retained_bytes:
            if not self._recount_retained() or self._retained_bytes - old_size + size > limits.max_retained_bytes:
                self.stats.limits_hit["max_retained_bytes"] += 1
                return
            old_size = self._retained_sizes.get(topic, 0)
        self.retained.store(message)
        if self._journal is not None:
            self._journal.retained(message)
        self._retained_bytes += size - old_size
        if size:
            self._retained_sizes[topic] = size
        else:
            self._retained_sizes.pop(topic, None)

    def _recount_retained(self) -> bool:
        """The store drops expired messages on its own: forget them here too, at most once a
        second (it walks every retained topic). Returns whether it recounted."""
        now = time.monotonic()
        if now - self._retained_recounted < 1.0:
            return False
        self._retained_recounted = now
        self._retained_sizes = {t: n for t, n in self._retained_sizes.items() if self.retained.matching(t)}
        self._retained_bytes = sum(self._retained_sizes.values())
        return True

    def _deliver_merged(self, message: Message, subscribers: list) -> int:
        """Overlapping subscriptions of one client get one copy, at the highest QoS granted,
        with every matching Subscription Identifier (MQTT 5.0 section 3.3.4)."""
        merged: dict[str, list] = {}
        for client_id, options in subscribers:
            if options.no_local and client_id == message.publisher_id:
                continue
            entry = merged.get(client_id)
            if entry is None:
                entry = merged[client_id] = [0, False, []]
            if options.qos > entry[0]:
                entry[0] = options.qos
            entry[1] = entry[1] or options.retain_as_published
            if options.identifier:
                entry[2].append(options.identifier)
        for client_id, (granted, retain_as_published, ids) in merged.items():
            qos = message.qos if message.qos < granted else granted
            self.sessions[client_id].deliver(message, qos, message.retain and retain_as_published, tuple(ids))
        return len(merged)

    def _deliver_shared(self, message: Message, groups: list) -> int:
        """Each share group gets one copy, round-robin over its connected members."""
        delivered = 0
        topic = message.topic
        sessions = self.sessions
        for members in groups:
            # Connected members whose ACL lets them read the topic; else the offline ones
            # (their ACL is checked when they are back); a member the ACL forbids is skipped,
            # so the group's copy is not lost to it.
            candidates = [cid for cid in members
                          if (link := sessions[cid].link) is not None and link.may_receive(topic)]
            if not candidates:
                candidates = [cid for cid in members if sessions[cid].link is None]
                if not candidates:
                    self.stats.acl_denied["receive"] += 1
                    continue
            client_id = candidates[members.cursor % len(candidates)]
            members.cursor += 1
            options = members[client_id]
            qos = message.qos if message.qos < options.qos else options.qos
            ids = (options.identifier,) if options.identifier else ()
            self.sessions[client_id].deliver(message, qos, False, ids)
            delivered += 1
        return delivered

    def _retry_unacknowledged(self) -> None:
        """MQTT 3.1.1 clients get unacknowledged messages again after `retry_interval`
        (MQTT 5 forbids resending on a live connection)."""
        interval = self.config.retry_interval
        for session in list(self._connected):
            if session.inflight and session.link.protocol_version < 5:
                session.resend(older_than=interval, now=self._timers.now)
        self._retry = self._timers.call_later(interval, self._retry_unacknowledged)


# BrokerHooks methods the broker calls only on the hooks that say they want them.
_OPTIONAL_EVENTS = (
    "on_client_connect", "on_client_connected", "on_client_subscribe", "on_client_unsubscribe",
    "on_session_subscribed", "on_session_unsubscribed", "on_session_terminated",
    "on_message_delivered", "on_message_acked", "on_message_dropped",
)
